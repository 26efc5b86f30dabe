// The WebSocket change feed (SPEC §3.3) end to end: a Ledger on a temp dir,
// Service + HttpServer (127.0.0.1:0) + FeedHub wired exactly like
// tools/shareledger_main.cc, and small blocking websocket clients. Every
// client operation is bounded in time, so a broken feed fails a test instead
// of hanging it. No test asserts on timing; the slow-subscriber test prints
// writer throughput.
#include "api/feed.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api/http_server.h"
#include "api/ids.h"
#include "api/service.h"
#include "api/signature.h"
#include "events/catalog.h"
#include "projections/ledger.h"
#include "test_client.h"

namespace sl::api {
namespace {

namespace beast = boost::beast;
namespace net = boost::asio;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using Json = nlohmann::json;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kHeartbeat = 200ms;
constexpr auto kReadTimeout = 5s;  // one frame; far above any expected delivery time
constexpr const char* kAdminToken = "feed-test-admin-token";
constexpr const char* kRegion = "cn-hangzhou";
constexpr const char* kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr std::string_view kEventPrefix = R"({"kind":"event","event":)";

// ---- the server --------------------------------------------------------------

// Ledger + Service + HttpServer + FeedHub, wired like tools/shareledger_main.cc.
// Close() stops it like SIGTERM does; Open() again reopens the same directory.
class FeedServer {
 public:
  explicit FeedServer(std::string dir, std::chrono::milliseconds heartbeat = kHeartbeat) : dir_(std::move(dir)) {
    feed_options.heartbeat = heartbeat;
    // The server's default SCHED_IDLE feed runs only on a spare core; these
    // tests check delivery, not scheduling, and share the box with other jobs
    // (CI compiles the sanitizer build beside them, which starved an idle feed
    // past the read timeout). bench/feed_bench measures the priorities.
    feed_options.idle = false;
    feed_options.nice = 0;
  }
  ~FeedServer() { Close(); }

  // OK: serving on port(). With `attach` false the hub serves but hears of no
  // commit until Attach() (the window between a hub's start and its hook).
  Status Open(bool attach = true) {
    auto opened = Ledger::open(dir_);
    if (!opened) return opened.error();
    ledger_ = std::move(*opened);
    service_ = std::make_unique<Service>(*ledger_, ServiceOptions{kAdminToken, 0ms});
    HttpServerOptions options;
    options.listen = "127.0.0.1:0";
    options.threads = 2;
    http_ = std::make_unique<HttpServer>(
        options,
        [this](Request&& req, const PeerInfo& peer, Responder respond) {
          service_->handle(std::move(req), peer, std::move(respond));
        },
        [this](beast::tcp_stream&& stream, Request&& req) { feed_->accept(std::move(stream), std::move(req)); });
    feed_ = std::make_unique<FeedHub>(*service_, feed_options);
    if (attach) feed_->attach(*ledger_);
    service_->set_scheduler([this](std::chrono::milliseconds delay, std::function<void()> fn) {
      auto timer = std::make_shared<net::steady_timer>(http_->io(), delay);
      timer->async_wait([timer, fn = std::move(fn)](const beast::error_code& ec) {
        if (!ec) fn();
      });
    });
    return http_->start();
  }

  // Same order as the server binary: HTTP first, then the ledger, then the
  // hub (which owns its sessions' io_context). `after_ledger_stop` runs
  // once the ledger refuses commands and before it is destroyed (to join
  // threads still submitting to it).
  void Close(const std::function<void()>& after_ledger_stop = {}) {
    if (!ledger_) return;
    http_->stop();
    ledger_->stop();
    if (after_ledger_stop) after_ledger_stop();
    feed_->detach();
    http_.reset();
    feed_.reset();
    service_.reset();
    ledger_.reset();
  }

  void Attach() { feed_->attach(*ledger_); }
  unsigned short port() const { return http_->port(); }
  Ledger& ledger() { return *ledger_; }
  Metrics& metrics() { return service_->metrics(); }
  std::uint64_t head() const { return ledger_->head().seq; }
  const std::string& dir() const { return dir_; }

  FeedOptions feed_options;  // for the next Open()

 private:
  std::string dir_;
  std::unique_ptr<Ledger> ledger_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<FeedHub> feed_;  // declared before http_: destroyed after it
  std::unique_ptr<HttpServer> http_;
};

// ---- accounts and commands ---------------------------------------------------

struct Account {
  std::string id, key, secret;
  CommandContext as() const { return CommandContext{{id, key}, new_request_id(), ""}; }
};

Account Register(Ledger& ledger, const std::string& site = "cn") {
  Account a{new_account_id(), new_access_key_id(), new_access_key_secret()};
  auto r = ledger.execute(RegisterAccount{a.id, site, a.key}, CommandContext{{}, "setup", a.secret});
  EXPECT_TRUE(r) << (r ? "" : r.error().code);
  return a;
}

std::string SystemImage() {
  for (const auto& seed : builtin_catalog(Limits{}.regions)) {
    if (seed.region == kRegion && seed.kind == "system") return seed.image_id;
  }
  return "";
}

struct Launched {
  std::string instance, image;
};

// An instance of `owner` from a system image, and a custom image made from it.
Launched LaunchAndCreateImage(Ledger& ledger, const Account& owner) {
  Launched l{new_instance_id(), new_image_id()};
  auto r = ledger.execute(RunInstances{owner.id, kRegion, SystemImage(), {l.instance}, {new_disk_id()}}, owner.as());
  EXPECT_TRUE(r) << (r ? "" : r.error().code);
  r = ledger.execute(CreateImage{owner.id, kRegion, l.instance, l.image, "feed-test"}, owner.as());
  EXPECT_TRUE(r) << (r ? "" : r.error().code);
  return l;
}

// Returns the seq of the last event the command appended.
std::uint64_t Share(Ledger& ledger, const Account& owner, const std::string& image,
                    std::vector<std::string> add, std::vector<std::string> remove = {}) {
  auto r = ledger.execute(ModifyImageSharePermission{owner.id, kRegion, image, std::move(add), std::move(remove), {}},
                          owner.as());
  EXPECT_TRUE(r) << (r ? "" : r.error().code);
  return r ? r->seq : 0;
}

// Appends one-event commands (SetEncryptShareRole toggles) from several
// threads, each on its own account with up to kWindow commands in flight, so
// the group committer sees realistic concurrency.
class Toggler {
 public:
  static constexpr int kWindow = 128;

  Toggler(Ledger& ledger, int threads) : slots_(threads) {
    for (auto& s : slots_) s.account = Register(ledger).id;
  }
  ~Toggler() { Stop(); }  // a failed assertion may leave background writers running

  // Appends exactly `n` events (spread over the threads) and waits until all are durable.
  void Append(Ledger& ledger, std::uint64_t n) {
    refused_ = false;
    std::vector<std::thread> threads;
    const std::uint64_t per = n / slots_.size(), extra = n % slots_.size();
    for (std::size_t t = 0; t < slots_.size(); ++t) {
      std::uint64_t mine = per + (t < extra ? 1 : 0);
      threads.emplace_back([this, &ledger, t, mine] {
        std::uint64_t left = mine;
        Run(ledger, t, [&] { return left-- > 0; });
      });
    }
    for (auto& th : threads) th.join();
  }

  // Appends in the background until Stop(), or until the ledger refuses (stopped).
  void Start(Ledger& ledger) {
    stop_ = false;
    refused_ = false;
    for (std::size_t t = 0; t < slots_.size(); ++t) {
      background_.emplace_back([this, &ledger, t] { Run(ledger, t, [this] { return !stop_.load(); }); });
    }
  }
  void Stop() {
    stop_ = true;
    for (auto& th : background_) th.join();
    background_.clear();
  }

  std::uint64_t appended() const { return appended_; }
  std::uint64_t failures() const { return failures_; }
  std::uint64_t unexpected() const { return unexpected_; }

 private:
  struct Slot {
    std::string account;
    bool durable_on = false;  // the role state the ledger holds
    int in_flight = 0;
  };

  template <class More>
  void Run(Ledger& ledger, std::size_t t, More more) {
    std::unique_lock lock(mu_);
    Slot& slot = slots_[t];
    bool want = slot.durable_on;
    bool refused = false;
    while (!refused && more()) {
      cv_.wait(lock, [&] { return slot.in_flight < kWindow; });
      slot.in_flight++;
      want = !want;
      lock.unlock();
      ledger.submit(SetEncryptShareRole{slot.account, want}, CommandContext{{}, "toggle", ""},
                    [this, t, want](Result<Commit> r) {
                      std::lock_guard g(mu_);
                      Slot& s = slots_[t];
                      s.in_flight--;
                      if (r && r->events.size() == 1) {
                        s.durable_on = want;
                        appended_++;
                      } else if (!r) {
                        failures_++;
                        refused_ = true;
                      } else {
                        unexpected_++;
                      }
                      cv_.notify_all();
                    });
      lock.lock();
      refused = refused_;
    }
    cv_.wait(lock, [&] { return slot.in_flight == 0; });
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Slot> slots_;  // guarded by mu_
  std::atomic<std::uint64_t> appended_{0}, failures_{0}, unexpected_{0};
  std::atomic<bool> stop_{false};
  bool refused_ = false;  // guarded by mu_; the ledger refused a command (stopped)
  std::vector<std::thread> background_;
};

// ---- clients -----------------------------------------------------------------

struct Auth {
  std::string bearer;                 // admin token
  std::string access_key_id, secret;  // or ACS3-signed for an account
  bool corrupt_signature = false;
  std::string target = "/v1/feed";  // a browser puts its credentials in the query

  static Auth Admin() { return Auth{kAdminToken, "", "", false}; }
  static Auth As(const Account& a) { return Auth{"", a.key, a.secret, false}; }
  static Auth None() { return Auth{}; }
};

std::string UtcNow() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string RandomHex(int n) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  std::string s;
  for (int i = 0; i < n; ++i) s += "0123456789abcdef"[rng() % 16];
  return s;
}

// Headers of an ACS3-HMAC-SHA256 signed `GET /v1/feed` sent to `host`.
HeaderList SignedFeedHeaders(const std::string& host, const Auth& auth) {
  HeaderList headers = {{"host", host},
                        {"x-acs-content-sha256", kEmptySha256},
                        {"x-acs-date", UtcNow()},
                        {"x-acs-signature-nonce", RandomHex(32)}};
  HttpRequestView view;
  view.method = "GET";
  view.path = "/v1/feed";
  view.raw_query = "";
  view.headers = lookup_in(headers);
  view.body = "";
  AuthInfo info;
  info.scheme = AuthScheme::kAcs3HmacSha256;
  info.access_key_id = auth.access_key_id;
  info.signed_headers = {"host", "x-acs-content-sha256", "x-acs-date", "x-acs-signature-nonce"};
  auto canonical = acs3_canonical_request(view, info);
  EXPECT_TRUE(canonical);
  std::string signature = hmac_sha256_hex(auth.secret, acs3_string_to_sign(canonical ? *canonical : ""));
  if (auth.corrupt_signature) signature[0] = signature[0] == '0' ? '1' : '0';
  headers.emplace_back("authorization", "ACS3-HMAC-SHA256 Credential=" + auth.access_key_id +
                                            ",SignedHeaders=host;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce"
                                            ",Signature=" + signature);
  return headers;
}

// A blocking websocket client of /v1/feed. Each operation runs on a private
// io_context for at most its timeout. A timed-out Read leaves its read pending
// and the next Read continues it, so "wait up to T for a frame" is safe.
class FeedClient {
 public:
  FeedClient(unsigned short port, const Auth& auth) : ws_(ioc_) {
    ec_ = Await([&](auto h) {
      beast::get_lowest_layer(ws_).async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), h);
    });
    if (ec_) return;
    const std::string host = "127.0.0.1:" + std::to_string(port);
    HeaderList extra;
    if (!auth.bearer.empty()) {
      extra.emplace_back("authorization", "Bearer " + auth.bearer);
    } else if (!auth.access_key_id.empty()) {
      for (auto& [name, value] : SignedFeedHeaders(host, auth)) {
        if (name != "host") extra.emplace_back(name, value);  // Beast sends Host from handshake()
      }
    }
    ws_.set_option(websocket::stream_base::decorator([extra](websocket::request_type& req) {
      for (const auto& [name, value] : extra) req.set(name, value);
    }));
    ws_.read_message_max(64 << 20);
    ec_ = Await([&](auto h) { ws_.async_handshake(host, auth.target, h); });
  }

  ~FeedClient() { Drop(); }

  beast::error_code error() const { return ec_; }

  beast::error_code Send(const std::string& text) {
    ws_.text(true);
    return Await([&](auto h) { ws_.async_write(net::buffer(text), h); });
  }
  beast::error_code Subscribe(const Json& request) { return Send(request.dump()); }

  // One frame into *out. would_block: none within `timeout` (the read stays
  // pending); websocket::error::closed: the server closed the websocket.
  beast::error_code Read(std::string& out, SteadyClock::duration timeout = kReadTimeout) {
    if (!reading_) {
      reading_ = true;
      read_done_ = false;
      ws_.async_read(buffer_, [this](beast::error_code ec, std::size_t) {
        read_ec_ = ec;
        read_done_ = true;
      });
    }
    ioc_.restart();
    const auto deadline = SteadyClock::now() + timeout;
    while (!read_done_ && ioc_.run_one_until(deadline)) {
    }
    if (!read_done_) return net::error::would_block;
    reading_ = false;
    if (read_ec_) return read_ec_;
    out.assign(static_cast<const char*>(buffer_.data().data()), buffer_.size());
    buffer_.consume(buffer_.size());
    return {};
  }

  // Closes the TCP connection without a closing handshake (a client going away).
  void Drop() {
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }

  // Sets SO_RCVBUF; call before reading so that a client that stops reading
  // pushes back on the server quickly.
  void SetReceiveBuffer(int bytes) {
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().set_option(net::socket_base::receive_buffer_size(bytes), ignored);
  }

 private:
  template <class Start>
  beast::error_code Await(Start start, SteadyClock::duration timeout = kReadTimeout) {
    return testing::RunUntilDone(ioc_, start, timeout);
  }

  net::io_context ioc_;
  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  beast::error_code ec_, read_ec_;
  bool reading_ = false, read_done_ = false;
};

// GET `target` with the admin token. {status, body}; status 0 on a transport
// error or timeout.
std::pair<int, std::string> HttpGet(unsigned short port, const std::string& target) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  namespace http = beast::http;
  Request req{http::verb::get, target, 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::authorization, std::string("Bearer ") + kAdminToken);
  beast::flat_buffer buffer;
  Response res;
  bool ok = false;
  stream.expires_after(5s);
  stream.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), [&](beast::error_code ec) {
    if (ec) return;
    http::async_write(stream, req, [&](beast::error_code ec, std::size_t) {
      if (ec) return;
      http::async_read(stream, buffer, res, [&](beast::error_code ec, std::size_t) { ok = !ec; });
    });
  });
  ioc.run_for(6s);
  if (!ok) return {0, ""};
  return {res.result_int(), res.body()};
}

// The envelope seq of an event frame, or 0 for any other frame. Cheap: the
// envelope's keys are sorted, so its own "seq" is the last one in the frame
// (only "time" and "type" follow it).
std::uint64_t EventSeq(std::string_view frame) {
  if (!frame.starts_with(kEventPrefix)) return 0;
  std::size_t at = frame.rfind("\"seq\":");
  if (at == std::string_view::npos) return 0;
  std::uint64_t seq = 0;
  for (std::size_t i = at + 6; i < frame.size() && frame[i] >= '0' && frame[i] <= '9'; ++i) {
    seq = seq * 10 + static_cast<std::uint64_t>(frame[i] - '0');
  }
  return seq;
}

// What a subscriber received.
struct Received {
  std::vector<std::uint64_t> seqs;  // event seqs, in arrival order
  std::vector<Json> events;         // envelopes, when kept
  int live = 0, heartbeats = 0;
  std::uint64_t last_heartbeat_position = 0;
  std::vector<Json> errors;
  beast::error_code ec;  // why reading stopped, if not because `done` said so

  // True when seqs are exactly first..last, in order, each once.
  bool Contiguous(std::uint64_t first, std::uint64_t last) const {
    if (last < first) return seqs.empty();
    if (seqs.size() != last - first + 1) return false;
    for (std::size_t i = 0; i < seqs.size(); ++i) {
      if (seqs[i] != first + i) return false;
    }
    return true;
  }
};

// Reads frames into `got` until `done(got)` is true, a read times out (ec =
// would_block) or the connection ends (ec set).
template <class Done>
void ReadUntil(FeedClient& client, Received& got, Done done, bool keep_events = false,
               SteadyClock::duration timeout = kReadTimeout) {
  std::string frame;
  while (!done(got)) {
    if (auto ec = client.Read(frame, timeout)) {
      got.ec = ec;
      return;
    }
    if (std::uint64_t seq = EventSeq(frame)) {
      got.seqs.push_back(seq);
      if (keep_events) got.events.push_back(Json::parse(frame)["event"]);
      continue;
    }
    Json j = Json::parse(frame, nullptr, false);
    std::string kind = j.is_object() ? j.value("kind", "") : "";
    if (kind == "live") {
      got.live++;
    } else if (kind == "heartbeat") {
      got.heartbeats++;
      got.last_heartbeat_position = j["position"].get<std::uint64_t>();
    } else if (kind == "error") {
      got.errors.push_back(j);
    } else {
      ADD_FAILURE() << "unexpected frame: " << frame.substr(0, 300);
    }
  }
}

// The value of an unlabelled series in GET /metrics; -1 when absent or unreachable.
std::int64_t Metric(unsigned short port, const std::string& name) {
  auto [status, body] = HttpGet(port, "/metrics");
  if (status != 200) return -1;
  const std::string key = "\n" + name + " ";
  std::size_t at = body.find(key);
  if (at == std::string::npos) return -1;
  return std::stoll(body.substr(at + key.size()));
}

// Polls `cond` every 20 ms for at most `timeout`; its last answer.
template <class Cond>
bool Eventually(Cond cond, SteadyClock::duration timeout = 10s) {
  const auto start = SteadyClock::now();
  while (!cond()) {
    if (SteadyClock::now() - start > timeout) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

auto UntilSeq(std::uint64_t seq) {
  return [seq](const Received& r) { return !r.seqs.empty() && r.seqs.back() >= seq; };
}

// Every stored envelope with seq in (after, head], parsed.
std::vector<Json> StoredEvents(Ledger& ledger, std::uint64_t after) {
  std::vector<Json> out;
  auto s = ledger.store().scan_events(after + 1, [&](std::uint64_t, std::string_view bytes) {
    out.push_back(Json::parse(bytes));
    return true;
  });
  EXPECT_TRUE(s);
  return out;
}

bool Mentions(const Json& envelope, const std::string& id) {
  return envelope.dump().find("\"" + id + "\"") != std::string::npos;
}

// ---- fixture -----------------------------------------------------------------

class FeedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/feed_test.XXXXXX";
    ASSERT_NE(mkdtemp(templ), nullptr);
    dir_ = templ;
    server_ = std::make_unique<FeedServer>(dir_ + "/db");
    auto s = server_->Open();
    ASSERT_TRUE(s) << s.error().code << ": " << s.error().message;
  }

  void TearDown() override {
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  unsigned short port() const { return server_->port(); }
  Ledger& ledger() { return server_->ledger(); }
  std::uint64_t head() const { return server_->head(); }

  std::unique_ptr<FeedClient> Connect(const Auth& auth = Auth::Admin()) {
    auto c = std::make_unique<FeedClient>(port(), auth);
    EXPECT_FALSE(c->error()) << c->error().message();
    return c;
  }

  // Connects as admin and subscribes after `after_seq` with `filter`.
  std::unique_ptr<FeedClient> Subscribe(std::optional<std::uint64_t> after_seq, Json filter = Json::object(),
                                        const Auth& auth = Auth::Admin()) {
    auto c = Connect(auth);
    Json sub{{"op", "subscribe"}, {"filter", filter}};
    if (after_seq) sub["after_seq"] = *after_seq;
    EXPECT_FALSE(c->Subscribe(sub));
    return c;
  }

  // Subscribes and reads up to the first {"kind":"live"}. A write made before
  // the server has handled the subscribe frame may precede a live-from-head
  // start; once "live" has arrived, every later commit reaches the subscriber.
  std::unique_ptr<FeedClient> SubscribeLive(std::optional<std::uint64_t> after_seq, Json filter = Json::object(),
                                            const Auth& auth = Auth::Admin()) {
    auto c = Subscribe(after_seq, std::move(filter), auth);
    Received got;
    ReadUntil(*c, got, [](const Received& r) { return r.live >= 1; });
    EXPECT_EQ(got.live, 1) << got.ec.message();
    return c;
  }

  // Subscribes after `after_seq` with a small receive buffer (so the server's
  // send queue fills soon once the test stops reading) and reads into `got`
  // up to the first {"kind":"live"}.
  std::unique_ptr<FeedClient> SubscribeSlowReaderLive(std::uint64_t after_seq, Received& got) {
    auto c = Subscribe(after_seq);
    c->SetReceiveBuffer(64 << 10);
    ReadUntil(*c, got, [](const Received& r) { return r.live >= 1; });
    return c;
  }

  // Expects an {"kind":"error"} frame with `code` (any code when empty), then a close.
  void ExpectErrorThenClose(FeedClient& c, const std::string& code = "") {
    Received got;
    ReadUntil(c, got, [](const Received& r) { return !r.errors.empty(); });
    ASSERT_EQ(got.errors.size(), 1u) << got.ec.message();
    if (!code.empty()) {
      EXPECT_EQ(got.errors[0].value("code", ""), code) << got.errors[0].dump();
    }
    std::string frame;
    beast::error_code ec = c.Read(frame, 3s);
    EXPECT_TRUE(ec == websocket::error::closed || ec == net::error::eof || ec == net::error::connection_reset)
        << "after the error frame: " << (ec ? ec.message() : "another frame: " + frame);
  }

  std::string dir_;
  std::unique_ptr<FeedServer> server_;
};

// ---- resume ------------------------------------------------------------------

// Subscribing with after_seq = s must yield s+1..head in order, then
// {"kind":"live"}, for every s. The full cross product over a 5 000-event
// history is ~12.5 M frames, too slow for a unit test on this machine, so:
// every s gets its first kPrefix events checked (or its whole tail when
// shorter, including the live frame), and every kStride-th s plus the edges
// (0, head, the catalog/history boundary, the ring window and catch-up chunk
// boundaries) gets its whole tail and the live frame checked (the stride is
// wider under AddressSanitizer, which makes every frame ~4x dearer). Set
// FEED_TEST_FULL_RESUME=1 to check the whole tail for every s (12.7 M frames,
// ~190 s in Release; it passes).
TEST_F(FeedTest, ResumeAtEverySeqYieldsExactlyTheTail) {
#if defined(__SANITIZE_ADDRESS__)
  constexpr std::uint64_t kStride = 250;
#else
  constexpr std::uint64_t kStride = 50;
#endif
  constexpr std::uint64_t kHistory = 5000, kPrefix = 20;
  const bool full = std::getenv("FEED_TEST_FULL_RESUME") != nullptr;
  const std::uint64_t catalog_head = head();
  Toggler toggler(ledger(), 4);
  toggler.Append(ledger(), kHistory - (head() - catalog_head));
  const std::uint64_t end = head();
  ASSERT_EQ(toggler.failures(), 0u);
  ASSERT_GE(end, kHistory);

  std::set<std::uint64_t> whole = {0, 1, catalog_head, catalog_head + 1, end - 1, end};
  for (std::uint64_t s = 0; s <= end; s += kStride) whole.insert(s);
  for (std::uint64_t edge : {kLiveWindow, std::uint64_t{kCatchUpChunk}, std::uint64_t{kMaxFramesInFlight}}) {
    for (std::uint64_t d : {edge - 1, edge, edge + 1}) {
      if (d <= end) whole.insert(end - d);
      if (d <= end) whole.insert(d);
    }
  }

  const auto t0 = SteadyClock::now();
  std::uint64_t frames = 0, full_tails = 0;
  for (std::uint64_t s = 0; s <= end; ++s) {
    const bool check_all = full || whole.count(s) || end - s <= kPrefix;
    auto c = Subscribe(s);
    std::string frame;
    std::uint64_t want = s + 1;
    const std::uint64_t stop = check_all ? end : std::min(end, s + kPrefix);
    while (want <= stop) {
      auto ec = c->Read(frame);
      ASSERT_FALSE(ec) << "after_seq=" << s << " waiting for " << want << ": " << ec.message();
      ASSERT_EQ(EventSeq(frame), want) << "after_seq=" << s << ": " << frame.substr(0, 200);
      ++want;
      ++frames;
    }
    if (check_all) {
      ASSERT_FALSE(c->Read(frame)) << "after_seq=" << s;
      Json live = Json::parse(frame, nullptr, false);
      ASSERT_EQ(live.value("kind", ""), "live") << "after_seq=" << s << ": " << frame.substr(0, 200);
      ASSERT_EQ(live["head"].get<std::uint64_t>(), end);
      ++full_tails;
    }
  }
  std::printf("[ resume   ] %llu resume points (after_seq 0..%llu), %llu with the whole tail + live checked, "
              "%llu event frames checked, %.1f s\n",
              static_cast<unsigned long long>(end + 1), static_cast<unsigned long long>(end),
              static_cast<unsigned long long>(full_tails), static_cast<unsigned long long>(frames),
              std::chrono::duration<double>(SteadyClock::now() - t0).count());
}

// ---- concurrency -------------------------------------------------------------

TEST_F(FeedTest, MidStreamSubscriberSeesEverySeqOnceInOrderWhileWritersAppend) {
  Toggler toggler(ledger(), 4);
  toggler.Append(ledger(), 3000);
  toggler.Start(ledger());
  std::this_thread::sleep_for(300ms);
  const std::uint64_t after = head() / 2;  // well inside the history, while writers run
  auto c = Subscribe(after);
  // A second subscriber joins at the live tail while the writers run.
  auto tail = Subscribe(std::nullopt);
  Received got, tail_got;
  ReadUntil(*c, got, UntilSeq(head() + 2000));
  ASSERT_FALSE(got.ec) << got.ec.message();
  toggler.Stop();
  ASSERT_EQ(toggler.failures(), 0u);
  const std::uint64_t end = head();
  // Every event up to the final head, and the live frame (which follows the
  // last event when the subscriber was still catching up when writers stopped).
  ReadUntil(*c, got, [&](const Received& r) { return r.live >= 1 && !r.seqs.empty() && r.seqs.back() >= end; });
  ASSERT_FALSE(got.ec) << got.ec.message();
  EXPECT_TRUE(got.Contiguous(after + 1, end)) << "got " << got.seqs.size() << " events for " << after + 1 << ".."
                                              << end;
  ReadUntil(*tail, tail_got, UntilSeq(end));
  ASSERT_FALSE(tail_got.ec) << tail_got.ec.message();
  ASSERT_FALSE(tail_got.seqs.empty());
  EXPECT_TRUE(tail_got.Contiguous(tail_got.seqs.front(), end));
  std::printf("[ midstream] %zu events after_seq=%llu..%llu, live frames %d; tail subscriber %zu events\n",
              got.seqs.size(), static_cast<unsigned long long>(after), static_cast<unsigned long long>(end), got.live,
              tail_got.seqs.size());
}

TEST_F(FeedTest, SlowSubscriberIsDemotedAndEndsWithTheCompleteSequence) {
  constexpr std::uint64_t kEvents = 100000;
  Toggler toggler(ledger(), 4);

  auto t0 = SteadyClock::now();
  toggler.Append(ledger(), kEvents);
  const double alone = std::chrono::duration<double>(SteadyClock::now() - t0).count();

  const std::uint64_t start = head();
  Received got;
  auto c = SubscribeSlowReaderLive(start, got);
  ASSERT_EQ(got.live, 1) << got.ec.message();

  // Stop reading for 10 s while the writers append kEvents.
  const auto paused = SteadyClock::now();
  t0 = SteadyClock::now();
  toggler.Append(ledger(), kEvents);
  const double with_slow = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  ASSERT_EQ(toggler.failures(), 0u);
  const std::uint64_t end = head();
  std::this_thread::sleep_for(10s - (SteadyClock::now() - paused));

  ReadUntil(*c, got, [&](const Received& r) { return r.live >= 2 && !r.seqs.empty() && r.seqs.back() >= end; });
  ASSERT_FALSE(got.ec) << got.ec.message();
  EXPECT_TRUE(got.Contiguous(start + 1, end)) << "got " << got.seqs.size() << " for " << start + 1 << ".." << end;
  EXPECT_GE(got.live, 2) << "the subscriber was never demoted to catch-up";
  std::printf("[ slow     ] writer: %.0f events/s alone, %.0f events/s with a subscriber not reading for 10 s "
              "(%.2fx); it then received %zu events in order, live frames %d\n",
              kEvents / alone, kEvents / with_slow, alone / with_slow, got.seqs.size(), got.live);
}

// While writers commit, a subscriber catching up takes only its share of the
// time (here none: share 0) and gets the whole backlog once they rest.
TEST_F(FeedTest, CatchingUpWaitsWhileWritersCommitAndCompletesWhenTheyRest) {
  server_->Close();
  server_->feed_options.catch_up_share = 0;
  server_->feed_options.writers_rest_after = 1s;
  ASSERT_TRUE(server_->Open());
  Toggler toggler(ledger(), 1);
  toggler.Append(ledger(), 2000);  // the backlog

  std::atomic<bool> stop{false};
  std::thread writer([&] {  // a commit every 100 ms: the writers never rest for 1 s
    while (!stop) {
      toggler.Append(ledger(), 1);
      std::this_thread::sleep_for(100ms);
    }
  });
  auto c = Subscribe(0);
  Received during;
  const auto until = SteadyClock::now() + 1500ms;
  ReadUntil(*c, during, [&](const Received&) { return SteadyClock::now() > until; });
  stop = true;
  writer.join();
  EXPECT_FALSE(during.ec) << during.ec.message();
  EXPECT_TRUE(during.seqs.empty()) << "caught up " << during.seqs.size() << " events while the writers committed";
  EXPECT_GT(during.heartbeats, 0) << "a waiting subscriber still gets heartbeats";
  EXPECT_EQ(during.live, 0);

  const std::uint64_t last = head();
  Received after;
  const auto deadline = SteadyClock::now() + 30s;  // heartbeats would keep a read loop going forever
  ReadUntil(*c, after, [&](const Received& r) { return r.live >= 1 || SteadyClock::now() > deadline; });
  EXPECT_EQ(after.live, 1);
  EXPECT_TRUE(after.Contiguous(1, last)) << after.seqs.size() << " events, head " << last << "; " << after.ec.message();
}

// /metrics: the lag gauges follow a subscriber that stops reading (max and sum
// of head - position, in events), it counts as demoted while more than
// kLiveWindow behind, and everything returns to 0 once it has caught up.
TEST_F(FeedTest, MetricsShowTheLagAndTheDemotedSubscriberUntilItCatchesUp) {
  // Enough to overflow the loopback socket buffers (4 MiB send + the receive
  // buffer below, ~10 000 frames) by more than the live window.
  constexpr std::uint64_t kEvents = 30000;
  Toggler toggler(ledger(), 4);
  const std::uint64_t start = head();
  Received got;
  auto c = SubscribeSlowReaderLive(start, got);
  ASSERT_EQ(got.live, 1) << got.ec.message();
  const std::int64_t demotions_before = Metric(port(), "shareledger_feed_demotions_total");

  toggler.Append(ledger(), kEvents);  // not reading meanwhile
  ASSERT_EQ(toggler.failures(), 0u);
  const std::uint64_t end = head();
  std::int64_t lag = 0, lag_sum = 0, demoted = 0;
  EXPECT_TRUE(Eventually([&] {
    lag = Metric(port(), "shareledger_feed_lag_events");
    lag_sum = Metric(port(), "shareledger_feed_lag_events_sum");
    demoted = Metric(port(), "shareledger_feed_demoted_subscribers");
    // One subscriber: the sum is its lag. The gauges come from separate
    // scrapes while the kernel may still take a few frames, so they are
    // compared once the stalled subscriber's position has settled.
    return lag > static_cast<std::int64_t>(kLiveWindow) && demoted == 1 && lag_sum == lag;
  })) << "lag " << lag << " (sum " << lag_sum << "), demoted " << demoted << " while " << end - start
      << " events behind";

  ReadUntil(*c, got, UntilSeq(end));
  ASSERT_FALSE(got.ec) << got.ec.message();
  EXPECT_TRUE(got.Contiguous(start + 1, end));
  EXPECT_TRUE(Eventually([&] {
    lag = Metric(port(), "shareledger_feed_lag_events");
    demoted = Metric(port(), "shareledger_feed_demoted_subscribers");
    return lag == 0 && demoted == 0;
  })) << "after catching up: lag " << lag << ", demoted " << demoted;
  EXPECT_GE(Metric(port(), "shareledger_feed_demotions_total"), demotions_before + 1);
}

TEST_F(FeedTest, ResumeAfterServerRestartHasNoGapAndNoDuplicate) {
  Toggler toggler(ledger(), 4);
  toggler.Append(ledger(), 1000);
  const std::uint64_t start = head();
  auto c = Subscribe(start);
  toggler.Start(ledger());
  Received got;
  ReadUntil(*c, got, UntilSeq(start + 2000));
  ASSERT_FALSE(got.ec) << got.ec.message();

  // Stop the server while the writers still append and the subscriber is mid-stream.
  server_->Close([&] { toggler.Stop(); });  // its commands are refused once the ledger stopped
  ReadUntil(*c, got, [](const Received&) { return false; }, false, 3s);  // drain until the connection ends
  EXPECT_NE(got.ec, net::error::would_block) << "the connection outlived the server";
  ASSERT_FALSE(got.seqs.empty());
  const std::uint64_t last = got.seqs.back();
  c.reset();

  ASSERT_TRUE(server_->Open());
  toggler.Append(ledger(), 500);
  const std::uint64_t end = head();
  ASSERT_GT(end, last);
  auto resumed = Subscribe(last);
  got.ec = {};
  ReadUntil(*resumed, got, UntilSeq(end));
  ASSERT_FALSE(got.ec) << got.ec.message();
  EXPECT_TRUE(got.Contiguous(start + 1, end)) << "got " << got.seqs.size() << " events for " << start + 1 << ".."
                                              << end << " (resumed after " << last << ")";
  std::printf("[ restart  ] %llu events before the restart, resumed after %llu, head %llu\n",
              static_cast<unsigned long long>(last - start), static_cast<unsigned long long>(last),
              static_cast<unsigned long long>(end));
}

// ---- scoping and auth --------------------------------------------------------

TEST_F(FeedTest, AccountSubscriberSeesItsOwnEventsAndSharesToItButNotOthersPrivateEvents) {
  Account a = Register(ledger()), b = Register(ledger()), c = Register(ledger());
  auto sub = Subscribe(0, Json::object(), Auth::As(b));

  Launched l = LaunchAndCreateImage(ledger(), a);  // A's instance and image: private to A
  Share(ledger(), a, l.image, {c.id});              // shared to C only: not B's business
  const std::uint64_t shared_to_b = Share(ledger(), a, l.image, {b.id});
  auto r = ledger().execute(RunInstances{b.id, kRegion, l.image, {new_instance_id()}, {new_disk_id()}}, b.as());
  ASSERT_TRUE(r);
  const std::uint64_t b_instance = r->seq;
  Share(ledger(), a, l.image, {}, {c.id});  // unshared from C: still not B's
  r = ledger().execute(SetEncryptShareRole{b.id, true});
  ASSERT_TRUE(r);
  const std::uint64_t marker = r->seq;

  Received got;
  ReadUntil(*sub, got, UntilSeq(marker), /*keep_events=*/true);
  ASSERT_FALSE(got.ec) << got.ec.message();
  ASSERT_TRUE(std::is_sorted(got.seqs.begin(), got.seqs.end()));
  std::set<std::uint64_t> seqs(got.seqs.begin(), got.seqs.end());
  EXPECT_EQ(seqs.size(), got.seqs.size()) << "duplicates";
  EXPECT_TRUE(seqs.count(shared_to_b)) << "the share to B";
  EXPECT_TRUE(seqs.count(b_instance)) << "B's own instance";
  EXPECT_TRUE(seqs.count(marker));
  for (const Json& e : got.events) {
    const std::string type = e["type"];
    EXPECT_TRUE(e["actor"].value("account_id", "") == b.id || Mentions(e["data"], b.id))
        << "B received an event that is not about B: " << e.dump();
    EXPECT_NE(type, "ImageCreated") << e.dump();
    if (type == "InstanceCreated") {
      EXPECT_EQ(e["data"]["owner"], b.id) << e.dump();
    }
    if (type == "ImageShared" || type == "ImageUnshared") {
      EXPECT_TRUE(Mentions(e["data"]["accounts"], b.id)) << e.dump();
    }
    EXPECT_FALSE(Mentions(e, c.id)) << e.dump();
  }
  // Exactly the events naming B: its registration, key, the share, its instance, its role.
  std::vector<std::uint64_t> expected;
  for (const Json& e : StoredEvents(ledger(), 0)) {
    if (e["actor"].value("account_id", "") == b.id || Mentions(e["data"], b.id)) expected.push_back(e["seq"]);
  }
  EXPECT_EQ(got.seqs, expected);
}

// Events about an account's own image are visible to it even when they name
// neither the account nor its action (ImageBecameAvailable is appended by the
// system), however long the subscriber has been connected.
TEST_F(FeedTest, OwnerWithATypesFilterReceivesItsImageBecomingAvailable) {
  Account a = Register(ledger()), b = Register(ledger());
  auto sub = Subscribe(std::nullopt, Json{{"types", {"ImageBecameAvailable"}}}, Auth::As(b));
  Received got;
  ReadUntil(*sub, got, [](const Received& r) { return r.live >= 1; });
  ASSERT_EQ(got.live, 1) << got.ec.message();

  auto build_image = [&](const Account& owner) {
    std::string instance = new_instance_id(), image = new_image_id();
    EXPECT_TRUE(ledger().execute(RunInstances{owner.id, kRegion, SystemImage(), {instance}, {new_disk_id()}}, owner.as()));
    CreateImage create{owner.id, kRegion, instance, image, "slow-build"};
    create.available_now = false;
    EXPECT_TRUE(ledger().execute(create, owner.as()));
    auto r = ledger().execute(MarkImageAvailable{image});
    EXPECT_TRUE(r);
    return r ? r->seq : 0;
  };
  // A's image becoming available matches the filter but is not B's business.
  // B's own image is built right after it (well within a heartbeat, whose
  // write would refresh any per-session state).
  build_image(a);
  const std::uint64_t own = build_image(b);
  ReadUntil(*sub, got, [&](const Received& r) {
    return r.last_heartbeat_position >= own || (!r.seqs.empty() && r.seqs.back() >= own);
  });
  ASSERT_FALSE(got.ec) << got.ec.message();
  EXPECT_EQ(got.seqs, std::vector<std::uint64_t>{own});
}

TEST_F(FeedTest, UnauthenticatedOrBadlySignedUpgradeGetsAnErrorFrameThenClose) {
  Account a = Register(ledger());
  {
    auto c = Connect(Auth::None());
    ExpectErrorThenClose(*c, "MissingSignature");
  }
  {
    Auth bad = Auth::As(a);
    bad.corrupt_signature = true;
    auto c = Connect(bad);
    ExpectErrorThenClose(*c, "SignatureDoesNotMatch");
  }
  {
    Auth bad = Auth::As(a);
    bad.secret = new_access_key_secret();
    auto c = Connect(bad);
    ExpectErrorThenClose(*c, "SignatureDoesNotMatch");
  }
  {
    auto c = Connect(Auth{"not-the-token", "", "", false});
    ExpectErrorThenClose(*c, "InvalidToken");
  }
  {
    Auth unknown{"", new_access_key_id(), new_access_key_secret(), false};
    auto c = Connect(unknown);
    ExpectErrorThenClose(*c, "InvalidAccessKeyId.NotFound");
  }
  // A correctly signed one works.
  auto ok = SubscribeLive(std::nullopt, Json::object(), Auth::As(a));
  auto r = ledger().execute(SetEncryptShareRole{a.id, true});
  ASSERT_TRUE(r);
  Received got;
  ReadUntil(*ok, got, UntilSeq(r->seq));
  ASSERT_FALSE(got.ec) << got.ec.message();
  EXPECT_EQ(got.seqs, std::vector<std::uint64_t>{r->seq});
}

// Browsers cannot set headers on a WebSocket: the console sends the admin
// token as ?access_token= and accounts sign the URL with the v1 scheme.
TEST_F(FeedTest, BrowserStyleCredentialsInTheQueryAreAccepted) {
  Account a = Register(ledger());
  Auth admin{"", "", "", false, std::string("/v1/feed?access_token=") + kAdminToken};
  std::string query = "AccessKeyId=" + a.key + "&SignatureMethod=HMAC-SHA1&SignatureNonce=" + RandomHex(32) +
                      "&SignatureVersion=1.0&Timestamp=" + percent_encode_rfc3986(UtcNow());
  auto params = parse_params(query);
  ASSERT_TRUE(params);
  std::string signature = hmac_sha1_base64(a.secret + "&", v1_string_to_sign("GET", *params));
  Auth account{"", "", "", false, "/v1/feed?" + query + "&Signature=" + percent_encode_rfc3986(signature)};
  auto as_admin = SubscribeLive(std::nullopt, Json::object(), admin);
  auto as_account = SubscribeLive(std::nullopt, Json::object(), account);
  auto r = ledger().execute(SetEncryptShareRole{a.id, true});
  ASSERT_TRUE(r);
  for (FeedClient* c : {as_admin.get(), as_account.get()}) {
    Received got;
    ReadUntil(*c, got, UntilSeq(r->seq));
    ASSERT_FALSE(got.ec) << got.ec.message();
    EXPECT_EQ(got.seqs, std::vector<std::uint64_t>{r->seq});
  }
  {
    auto c = Connect(Auth{"", "", "", false, "/v1/feed?access_token=not-the-token"});
    ExpectErrorThenClose(*c, "InvalidToken");
  }
  {
    // A header, when sent, decides: the query token does not override it.
    Auth both{"not-the-token", "", "", false, std::string("/v1/feed?access_token=") + kAdminToken};
    auto c = Connect(both);
    ExpectErrorThenClose(*c, "InvalidToken");
  }
}

// ---- filters, heartbeats, snapshot --------------------------------------------

TEST_F(FeedTest, FiltersRestrictDeliveryToMatchingImagesAccountsAndTypes) {
  Account a = Register(ledger()), b = Register(ledger()), c = Register(ledger());
  const std::uint64_t start = head();
  Launched x = LaunchAndCreateImage(ledger(), a), y = LaunchAndCreateImage(ledger(), a);
  for (int i = 0; i < 3; ++i) {
    Share(ledger(), a, x.image, {b.id});
    Share(ledger(), a, y.image, {c.id});
    Share(ledger(), a, x.image, {}, {b.id});
    Share(ledger(), a, y.image, {}, {c.id});
    ASSERT_TRUE(ledger().execute(SetEncryptShareRole{c.id, i % 2 == 0}));
  }
  const std::uint64_t end = head();
  const std::vector<Json> stored = StoredEvents(ledger(), start);

  struct Case {
    std::string name;
    Json filter;
    std::function<bool(const Json&)> expect;
  };
  const std::vector<Case> cases = {
      {"image_ids", {{"image_ids", {x.image}}}, [&](const Json& e) { return Mentions(e["data"], x.image); }},
      {"account_ids", {{"account_ids", {c.id}}}, [&](const Json& e) { return Mentions(e["data"], c.id); }},
      {"types", {{"types", {"ImageShared", "EncryptShareRoleRevoked"}}},
       [&](const Json& e) { return e["type"] == "ImageShared" || e["type"] == "EncryptShareRoleRevoked"; }},
      {"image_ids+types", {{"image_ids", {y.image}}, {"types", {"ImageUnshared"}}},
       [&](const Json& e) { return e["type"] == "ImageUnshared" && Mentions(e["data"], y.image); }},
  };
  for (const Case& k : cases) {
    std::vector<std::uint64_t> expected;
    for (const Json& e : stored) {
      if (k.expect(e)) expected.push_back(e["seq"]);
    }
    ASSERT_FALSE(expected.empty()) << k.name;
    ASSERT_LT(expected.size(), stored.size()) << k.name;
    auto sub = Subscribe(start, k.filter);
    Received got;
    // A heartbeat at or past `end` says every event up to it was checked.
    ReadUntil(*sub, got, [&](const Received& r) { return r.last_heartbeat_position >= end; });
    ASSERT_FALSE(got.ec) << k.name << ": " << got.ec.message();
    EXPECT_EQ(got.seqs, expected) << k.name;
  }
}

TEST_F(FeedTest, HeartbeatsArriveWhenIdleWithThePositionChecked) {
  // Idle and unfiltered: the heartbeat position is the head.
  auto idle = Subscribe(std::nullopt);
  Received idle_got;
  ReadUntil(*idle, idle_got, [](const Received& r) { return r.heartbeats >= 2; });
  ASSERT_FALSE(idle_got.ec) << idle_got.ec.message();
  EXPECT_EQ(idle_got.last_heartbeat_position, head());

  // A filter that matches nothing while events flow: heartbeats keep coming and
  // their position follows the events checked, up to the head once writers stop.
  auto none = Subscribe(std::nullopt, Json{{"types", {"NoSuchType"}}});
  Toggler toggler(ledger(), 2);
  toggler.Start(ledger());
  Received got;
  std::vector<std::uint64_t> positions;
  const auto t0 = SteadyClock::now();
  // At least 1.5 s and 3 heartbeats: on a loaded machine the feed threads
  // (lowest priority) may send fewer than the period allows.
  while (SteadyClock::now() - t0 < 1500ms || positions.size() < 3) {
    int before = got.heartbeats;
    ReadUntil(*none, got, [&](const Received& r) { return r.heartbeats > before; });
    ASSERT_FALSE(got.ec) << got.ec.message();
    positions.push_back(got.last_heartbeat_position);
  }
  toggler.Stop();
  const std::uint64_t end = head();
  ReadUntil(*none, got, [&](const Received& r) { return r.last_heartbeat_position >= end; });
  ASSERT_FALSE(got.ec) << got.ec.message();
  EXPECT_TRUE(got.seqs.empty());
  EXPECT_EQ(got.last_heartbeat_position, end);
  EXPECT_TRUE(std::is_sorted(positions.begin(), positions.end()));
  EXPECT_GE(positions.size(), 3u);
  EXPECT_GT(positions.back(), positions.front()) << "positions did not advance while events flowed";
}

// A filter that matches nothing, catching up through a long history on disk:
// heartbeats keep coming while it does (each a safe resume point), instead of
// one walk over the whole backlog that holds the session's thread until the end.
TEST_F(FeedTest, HeartbeatsKeepComingWhileAFilteredSubscriberCatchesUpALongHistory) {
  constexpr std::uint64_t kEvents = 20000;
  Toggler toggler(ledger(), 4);
  toggler.Append(ledger(), kEvents);
  ASSERT_EQ(toggler.failures(), 0u);
  const std::uint64_t end = head();
  // Reopened, so the history is read from RocksDB (not the ring), with a
  // heartbeat period far below the time that takes.
  server_->Close();
  server_ = std::make_unique<FeedServer>(dir_ + "/db", 2ms);
  ASSERT_TRUE(server_->Open());

  auto c = Subscribe(0, Json{{"types", {"NoSuchType"}}});
  std::vector<std::uint64_t> positions;
  Received got;
  while (got.last_heartbeat_position < end && !got.ec) {
    const int before = got.heartbeats;
    ReadUntil(*c, got, [&](const Received& r) { return r.heartbeats > before; });
    if (got.heartbeats > before) positions.push_back(got.last_heartbeat_position);
  }
  ASSERT_FALSE(got.ec) << got.ec.message();
  EXPECT_TRUE(got.seqs.empty());
  EXPECT_TRUE(std::is_sorted(positions.begin(), positions.end()));
  const auto during = std::count_if(positions.begin(), positions.end(),
                                    [&](std::uint64_t p) { return p > 0 && p < end; });
  EXPECT_GE(during, 1) << "no heartbeat while catching up through " << end << " events (" << positions.size()
                       << " heartbeats in all)";
}

TEST_F(FeedTest, SnapshotComesFirstThenEventsAfterItsSeq) {
  Account a = Register(ledger()), b = Register(ledger()), c = Register(ledger());
  Launched x = LaunchAndCreateImage(ledger(), a);
  const std::uint64_t before_share = head();
  const std::uint64_t shared = Share(ledger(), a, x.image, {b.id});
  const std::uint64_t now = head();

  auto read_snapshot = [&](FeedClient& client) {
    std::string frame;
    EXPECT_FALSE(client.Read(frame));
    return Json::parse(frame, nullptr, false);
  };

  // Live from head: the snapshot is at the head, then only new events.
  auto live = Connect();
  ASSERT_FALSE(live->Subscribe(Json{{"op", "subscribe"}, {"snapshot", true}, {"filter", {{"image_ids", {x.image}}}}}));
  Json snap = read_snapshot(*live);
  ASSERT_EQ(snap.value("kind", ""), "snapshot") << snap.dump();
  EXPECT_EQ(snap["seq"].get<std::uint64_t>(), now);
  ASSERT_TRUE(snap["state"]["images"].contains(x.image)) << snap.dump();
  EXPECT_TRUE(snap["state"]["images"][x.image]["permissions"].dump().find(b.id) != std::string::npos) << snap.dump();
  const std::uint64_t next = Share(ledger(), a, x.image, {c.id});
  Received got;
  ReadUntil(*live, got, UntilSeq(next));
  ASSERT_FALSE(got.ec) << got.ec.message();
  EXPECT_EQ(got.seqs, std::vector<std::uint64_t>{next});
  EXPECT_EQ(got.live, 1);

  // As of an earlier seq: the state then (no grant to B yet), then events from S+1.
  auto past = Connect();
  ASSERT_FALSE(past->Subscribe(Json{{"op", "subscribe"}, {"after_seq", before_share}, {"snapshot", true},
                                    {"filter", {{"image_ids", {x.image}}}}}));
  snap = read_snapshot(*past);
  ASSERT_EQ(snap.value("kind", ""), "snapshot") << snap.dump();
  EXPECT_EQ(snap["seq"].get<std::uint64_t>(), before_share);
  EXPECT_TRUE(snap["state"]["images"][x.image]["permissions"].dump().find(b.id) == std::string::npos) << snap.dump();
  Received past_got;
  ReadUntil(*past, past_got, UntilSeq(next));
  ASSERT_FALSE(past_got.ec) << past_got.ec.message();
  EXPECT_EQ(past_got.seqs, (std::vector<std::uint64_t>{shared, next}));
}

// ---- wiring ------------------------------------------------------------------

// Events committed after the hub started but before the ledger's hook pointed
// at it (what Ledger::open's last catalog group can do) reach a subscriber
// already parked at the tail, with no later commit to wake it.
TEST_F(FeedTest, EventsCommittedBeforeTheHookIsSetReachAParkedSubscriber) {
  server_->Close();
  server_ = std::make_unique<FeedServer>(dir_ + "/db");
  ASSERT_TRUE(server_->Open(/*attach=*/false));
  const std::uint64_t start = head();
  auto c = Subscribe(start);
  Received got;
  ReadUntil(*c, got, [](const Received& r) { return r.live >= 1; });
  ASSERT_EQ(got.live, 1) << got.ec.message();

  for (int i = 0; i < 3; ++i) Register(ledger());  // the hub hears of none of these
  const std::uint64_t end = head();
  ASSERT_GT(end, start);
  server_->Attach();

  // Bounded: heartbeats keep the connection busy, so no single read times out.
  const auto deadline = SteadyClock::now() + 10s;
  ReadUntil(*c, got, [&](const Received& r) { return UntilSeq(end)(r) || SteadyClock::now() > deadline; });
  ASSERT_FALSE(got.ec) << got.ec.message();
  ASSERT_TRUE(UntilSeq(end)(got)) << "received " << got.seqs.size() << " of " << end - start;
  EXPECT_TRUE(got.Contiguous(start + 1, end));
}

// ---- malformed requests --------------------------------------------------------

TEST_F(FeedTest, MalformedSubscribeGetsAnErrorFrameThenCloseAndTheServerKeepsServing) {
  Toggler toggler(ledger(), 2);
  toggler.Append(ledger(), 3000);
  auto bystander = Subscribe(head());
  Received bystander_got;
  ReadUntil(*bystander, bystander_got, [](const Received& r) { return r.live >= 1; });

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"not json", ""},
      {"[1,2,3]", ""},
      {R"({"op":"unsubscribe"})", ""},
      {R"({"after_seq":0})", ""},
      {R"({"op":"subscribe","filter":[]})", ""},
      {R"({"op":"subscribe","filter":{"types":"ImageShared"}})", ""},
      {R"({"op":"subscribe","filter":{"image_ids":[1]}})", ""},
      {R"({"op":"subscribe","after_seq":-1})", ""},
      {R"({"op":"subscribe","after_seq":"3"})", ""},
      {R"({"op":"subscribe","after_seq":)" + std::to_string(head() + 1) + "}", "InvalidParameter.AsOf"},
  };
  for (const auto& [text, code] : bad) {
    SCOPED_TRACE(text);
    auto c = Connect();
    ASSERT_FALSE(c->Send(text));
    ExpectErrorThenClose(*c, code);
  }
  {
    // A second subscribe while the first one's catch-up is streaming.
    SCOPED_TRACE("second subscribe");
    auto c = Subscribe(0);
    ASSERT_FALSE(c->Subscribe(Json{{"op", "subscribe"}, {"after_seq", 0}}));
    Received got;
    ReadUntil(*c, got, [](const Received& r) { return !r.errors.empty(); });
    ASSERT_EQ(got.errors.size(), 1u) << got.ec.message();
    EXPECT_TRUE(got.Contiguous(1, got.seqs.size())) << "events before the error must still be 1..n in order";
    std::string frame;
    auto ec = c->Read(frame, 3s);
    EXPECT_TRUE(ec == websocket::error::closed || ec == net::error::eof || ec == net::error::connection_reset)
        << (ec ? ec.message() : frame.substr(0, 200));
  }

  // The server still serves feeds and HTTP.
  auto r = ledger().execute(RegisterAccount{new_account_id(), "cn", new_access_key_id()});
  ASSERT_TRUE(r);
  ReadUntil(*bystander, bystander_got, UntilSeq(r->seq));
  ASSERT_FALSE(bystander_got.ec) << bystander_got.ec.message();
  EXPECT_EQ(bystander_got.seqs, (std::vector<std::uint64_t>{r->seq - 1, r->seq}));
  auto [status, body] = HttpGet(port(), "/v1/head");
  EXPECT_EQ(status, 200) << body;
  EXPECT_EQ(Json::parse(body, nullptr, false).value("seq", 0ull), r->seq) << body;
  auto fresh = Subscribe(r->seq - 1);
  Received fresh_got;
  ReadUntil(*fresh, fresh_got, UntilSeq(r->seq));
  EXPECT_EQ(fresh_got.seqs, std::vector<std::uint64_t>{r->seq});
}

}  // namespace
}  // namespace sl::api
