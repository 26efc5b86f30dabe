// api_bench: HTTP requests per second through the real server (Service on
// HttpServer over a fresh Ledger), next to the plain Beast hello-world server
// (bench/hello_server.h) measured in the same run and process.
//
// Cases (--benchmarks, run in order; each against a server started in-process
// on 127.0.0.1:0 with --server-threads io threads):
//   hello    GET / on HelloServer: the baseline every ratio is against.
//   check    GET /v1/check?account=A&image=X with the admin bearer token
//            (native API; A holds an account grant on X).
//   ecs      DescribeImageSharePermission, ACS3-HMAC-SHA256 signed like the
//            SDK does (POST /?ImageId=..&RegionId=.., signed x-acs-* headers),
//            a fresh x-acs-signature-nonce and a current x-acs-date on every
//            request. The caller owns the image, which has 3 account grants.
//            Connections are spread over --accounts access keys, and the run
//            stops early rather than exceed the server's nonce caps.
// The load generator: --connections HTTP/1.1 keep-alive connections on
// --client-threads threads (one io_context each, Beast), each connection
// one request at a time; latency is send-to-last-byte. Only requests sent
// after --warmup and answered before the end of the window count.
//
// Every case line also splits the process CPU into the load generator's
// (its threads' CPU clocks) and the rest (server + ledger), per request:
// client and servers share the same cores, so req/s ~ cores / cpu per req.
//
// Example:
//   api_bench --seconds=5 --connections=64
//   hello/c64             :   16.0 micros/op    62500 req/sec ...
//   check/c64             :   32.0 micros/op    31250 req/sec ...; 0.50x hello
#include <CLI/CLI.hpp>
#include <pthread.h>
#include <time.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "api/http_server.h"
#include "api/service.h"
#include "api/signature.h"
#include "bench/bench_common.h"
#include "bench/hello_server.h"
#include "events/catalog.h"
#include "projections/ledger.h"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using ClientRequest = http::request<http::string_body>;
using sl::bench::CaseResult;

constexpr const char* kRegion = "cn-hangzhou";
constexpr const char* kEcsVersion = "2014-05-26";
constexpr const char* kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
// Stay under NonceCache's defaults (1'000'000 live, 250'000 per key).
constexpr std::int64_t kNonceBudgetTotal = 900'000;
constexpr std::int64_t kNonceBudgetPerKey = 240'000;

struct Flags {
  double seconds = 5;
  double warmup = 0.5;
  int connections = 64;
  int client_threads = 2;
  int server_threads = 0;
  int accounts = 8;
  std::vector<std::string> benchmarks = {"hello", "check", "ecs"};
  bool json = false;
  std::string dir;
  std::uint64_t seed = 301;
};

double thread_cpu_seconds(pthread_t thread) {
  clockid_t id;
  if (pthread_getcpuclockid(thread, &id) != 0) return 0;
  struct timespec ts {};
  clock_gettime(id, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double process_cpu_seconds() {
  struct timespec ts {};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// ---- requests ----------------------------------------------------------------

// Builds request number `n` of connection `conn` into `req`. Runs on that
// connection's client thread; `req` still holds the previous request, so a
// constant request is built once (n == 0) and then reused.
class RequestMaker {
 public:
  virtual ~RequestMaker() = default;
  virtual void make(int conn, std::uint64_t n, ClientRequest& req) = 0;
  // Requests this case may send in total (nonce caps); < 0 = unbounded.
  virtual std::int64_t budget() const { return -1; }
};

class FixedGet final : public RequestMaker {
 public:
  FixedGet(std::string host, std::string target, std::string authorization)
      : host_(std::move(host)), target_(std::move(target)), authorization_(std::move(authorization)) {}
  void make(int, std::uint64_t n, ClientRequest& req) override {
    if (n != 0) return;
    req = ClientRequest(http::verb::get, target_, 11);
    req.set(http::field::host, host_);
    req.set(http::field::user_agent, "api_bench");
    if (!authorization_.empty()) req.set(http::field::authorization, authorization_);
    req.keep_alive(true);
  }

 private:
  std::string host_, target_, authorization_;
};

struct SigningKey {
  std::string access_key_id, secret, image_id;
};

// DescribeImageSharePermission, ACS3-signed per request with api/signature.h.
class SignedDescribe final : public RequestMaker {
 public:
  SignedDescribe(std::string host, std::vector<SigningKey> keys, std::uint64_t seed)
      : host_(std::move(host)), keys_(std::move(keys)), run_tag_(tag(seed)) {}

  std::int64_t budget() const override {
    return std::min<std::int64_t>(kNonceBudgetTotal, kNonceBudgetPerKey * static_cast<std::int64_t>(keys_.size()));
  }

  void make(int conn, std::uint64_t n, ClientRequest& req) override {
    const SigningKey& key = keys_[static_cast<std::size_t>(conn) % keys_.size()];
    const std::string query = "ImageId=" + key.image_id + "&RegionId=" + kRegion;
    char nonce[64];
    std::snprintf(nonce, sizeof nonce, "%s-%04x-%012llx", run_tag_.c_str(), conn, static_cast<unsigned long long>(n));
    const std::string date = utc_now();

    sl::api::HeaderList headers = {{"host", host_},
                                   {"x-acs-action", "DescribeImageSharePermission"},
                                   {"x-acs-content-sha256", kEmptySha256},
                                   {"x-acs-date", date},
                                   {"x-acs-signature-nonce", nonce},
                                   {"x-acs-version", kEcsVersion}};
    sl::api::AuthInfo info;
    info.scheme = sl::api::AuthScheme::kAcs3HmacSha256;
    info.access_key_id = key.access_key_id;
    info.timestamp = date;
    info.nonce = nonce;
    for (const auto& [name, value] : headers) info.signed_headers.push_back(name);  // already sorted
    sl::api::HttpRequestView view{"POST", "/", query, sl::api::lookup_in(headers), ""};
    auto canonical = sl::api::acs3_canonical_request(view, info);
    std::string signature =
        canonical ? sl::api::hmac_sha256_hex(key.secret, sl::api::acs3_string_to_sign(*canonical)) : "bad";

    req = ClientRequest(http::verb::post, "/?" + query, 11);
    for (const auto& [name, value] : headers) req.set(name, value);
    req.set(http::field::authorization,
            "ACS3-HMAC-SHA256 Credential=" + key.access_key_id +
                ",SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version"
                ",Signature=" +
                signature);
    req.set(http::field::user_agent, "api_bench");
    req.keep_alive(true);
    req.prepare_payload();  // Content-Length: 0
  }

 private:
  // "yyyy-MM-ddTHH:mm:ssZ" for now, formatted at most once a second per thread.
  static std::string utc_now() {
    thread_local std::time_t last = 0;
    thread_local std::string text;
    std::time_t now = std::time(nullptr);
    if (now != last) {
      std::tm tm{};
      gmtime_r(&now, &tm);
      char buf[32];
      std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
      text = buf;
      last = now;
    }
    return text;
  }
  static std::string tag(std::uint64_t seed) {
    std::mt19937_64 rng(seed ^ static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()));
    char buf[20];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
    return buf;
  }

  std::string host_;
  std::vector<SigningKey> keys_;
  std::string run_tag_;
};

// ---- load generator ----------------------------------------------------------

struct Window {
  Clock::time_point from, until;
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> budget{0};  // requests left to send; unbounded when budget_limited is false
  bool budget_limited = false;
  std::atomic<bool> budget_exhausted{false};
};

struct ThreadTally {
  std::vector<std::uint32_t> micros;  // 2xx answers in the window
  std::uint64_t errors = 0;           // non-2xx answers in the window, and socket errors
  std::string first_error;
  std::size_t body_bytes = 0;
  Clock::time_point last_answer{};
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket&& socket, int index, RequestMaker& maker, Window& window, ThreadTally& tally)
      : stream_(std::move(socket)), index_(index), maker_(maker), window_(window), tally_(tally) {}

  void start() { do_write(); }

 private:
  void do_write() {
    if (window_.stop.load(std::memory_order_relaxed)) return do_close();
    if (window_.budget_limited && window_.budget.fetch_sub(1, std::memory_order_relaxed) <= 0) {
      window_.budget_exhausted = true;
      return do_close();
    }
    maker_.make(index_, n_++, req_);
    sent_ = Clock::now();
    stream_.expires_after(std::chrono::seconds(30));
    http::async_write(stream_, req_, beast::bind_front_handler(&Connection::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    if (ec) return fail(ec, "write");
    res_ = {};
    http::async_read(stream_, buffer_, res_, beast::bind_front_handler(&Connection::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) return fail(ec, "read");
    const Clock::time_point now = Clock::now();
    if (sent_ >= window_.from && now <= window_.until) {
      if (res_.result_int() / 100 == 2) {
        tally_.micros.push_back(
            static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(now - sent_).count()));
        tally_.body_bytes = res_.body().size();
        tally_.last_answer = now;
      } else if (tally_.errors++ == 0) {
        tally_.first_error = std::to_string(res_.result_int()) + " " + res_.body().substr(0, 300);
      }
    }
    if (!res_.keep_alive()) return fail(beast::error_code(), "server closed the connection");
    do_write();
  }

  void fail(beast::error_code ec, const char* what) {
    if (!window_.stop.load() && tally_.errors++ == 0) tally_.first_error = std::string(what) + ": " + ec.message();
    do_close();
  }

  void do_close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  ClientRequest req_;
  http::response<http::string_body> res_;
  int index_;
  std::uint64_t n_ = 0;
  Clock::time_point sent_;
  RequestMaker& maker_;
  Window& window_;
  ThreadTally& tally_;
};

CaseResult drive(const Flags& f, const std::string& name, unsigned short port, RequestMaker& maker) {
  Window window;
  if (maker.budget() >= 0) {
    window.budget_limited = true;
    window.budget = maker.budget();
  }
  const int threads = std::max(1, std::min(f.client_threads, f.connections));
  std::vector<ThreadTally> tallies(threads);
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::atomic<int> connect_errors{0};
  std::vector<std::thread> clients;
  const tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), port);
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&, t] {
      net::io_context ioc(1);
      std::vector<std::shared_ptr<Connection>> conns;
      for (int c = t; c < f.connections; c += threads) {
        tcp::socket socket(ioc);
        beast::error_code ec;
        socket.connect(endpoint, ec);
        if (ec) {
          connect_errors++;
          continue;
        }
        socket.set_option(tcp::no_delay(true), ec);
        conns.push_back(std::make_shared<Connection>(std::move(socket), c, maker, window, tallies[t]));
      }
      tallies[t].micros.reserve(1 << 18);
      ready++;
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      for (auto& c : conns) c->start();
      conns.clear();  // the handlers own them now
      ioc.run();
    });
  }
  while (ready.load() < threads) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (connect_errors) {
    std::fprintf(stderr, "api_bench: %d connections failed to connect\n", connect_errors.load());
  }

  const auto start = Clock::now();
  window.from = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(f.warmup));
  window.until = window.from + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(f.seconds));
  go.store(true, std::memory_order_release);
  std::this_thread::sleep_until(window.from);
  double cpu0 = process_cpu_seconds(), client0 = 0;
  for (auto& th : clients) client0 += thread_cpu_seconds(th.native_handle());
  std::this_thread::sleep_until(window.until);
  double cpu1 = process_cpu_seconds(), client1 = 0;
  for (auto& th : clients) client1 += thread_cpu_seconds(th.native_handle());
  window.stop = true;
  for (auto& th : clients) th.join();

  CaseResult r;
  r.name = name;
  r.unit = "req";
  std::vector<std::uint32_t> micros;
  Clock::time_point last{};
  std::size_t body = 0;
  for (auto& t : tallies) {
    micros.insert(micros.end(), t.micros.begin(), t.micros.end());
    r.errors += t.errors;
    if (r.note.empty() && !t.first_error.empty()) r.note = "first error: " + t.first_error;
    last = std::max(last, t.last_answer);
    body = std::max(body, t.body_bytes);
  }
  r.seconds = f.seconds;
  if (window.budget_exhausted && last > window.from) {
    r.seconds = std::chrono::duration<double>(last - window.from).count();
    r.note += std::string(r.note.empty() ? "" : "; ") + "stopped early: nonce budget spent";
  }
  r.ops = micros.size();
  r.latency = sl::bench::percentiles(micros);
  const double cpu = cpu1 - cpu0, client = client1 - client0;
  if (r.ops) {
    r.cpu_us_per_op = cpu * 1e6 / static_cast<double>(r.ops);
    const double client_us = client * 1e6 / static_cast<double>(r.ops);
    r.extra["client_cpu_us_per_req"] = client_us;
    r.extra["server_cpu_us_per_req"] = r.cpu_us_per_op - client_us;
    r.extra["cpu_utilisation"] = cpu / f.seconds / sl::bench::cores();
    r.extra["response_body_bytes"] = body;
    char note[160];
    std::snprintf(note, sizeof note, "server %.1f + client %.1f us/req, cpu %.0f%% of %u cores, body %zu B",
                  r.cpu_us_per_op - client_us, client_us, 100 * cpu / f.seconds / sl::bench::cores(),
                  sl::bench::cores(), body);
    r.note = r.note.empty() ? note : std::string(note) + "; " + r.note;
  }
  return r;
}

// ---- fixtures ----------------------------------------------------------------

std::string describe(const sl::Error& e) { return std::to_string(e.http) + " " + e.code + ": " + e.message; }

std::string system_image(const std::string& region) {
  for (const auto& seed : sl::builtin_catalog(sl::Limits{}.regions)) {
    if (seed.region == region && seed.kind == "system") return seed.image_id;
  }
  return "";
}

std::string random_chars(std::mt19937_64& rng, std::string_view alphabet, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += alphabet[rng() % alphabet.size()];
  return s;
}

struct Fixture {
  std::vector<SigningKey> keys;  // each owns keys[i].image_id, shared with `recipients`
  std::vector<std::string> recipients;
};

// --accounts signing accounts, each with a custom image shared with 3
// recipient accounts.
Fixture build_fixture(sl::Ledger& ledger, int accounts, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  constexpr std::string_view kLower = "0123456789abcdefghijklmnopqrstuvwxyz";
  constexpr std::string_view kAlnum = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  auto account_id = [&] { return std::string(1, "123456789"[rng() % 9]) + random_chars(rng, "0123456789", 15); };
  auto must = [&](sl::Command c, sl::CommandContext ctx = {}) {
    auto r = ledger.execute(std::move(c), std::move(ctx));
    if (!r) {
      std::fprintf(stderr, "api_bench: setup failed: %s\n", describe(r.error()).c_str());
      std::exit(2);
    }
  };
  Fixture fx;
  for (int i = 0; i < 3; ++i) {
    fx.recipients.push_back(account_id());
    must(sl::RegisterAccount{fx.recipients.back(), "cn", "LTAI" + random_chars(rng, kAlnum, 20)});
  }
  const std::string sys = system_image(kRegion);
  for (int i = 0; i < accounts; ++i) {
    SigningKey key;
    std::string owner = account_id();
    key.access_key_id = "LTAI" + random_chars(rng, kAlnum, 20);
    key.secret = random_chars(rng, kAlnum, 30);
    key.image_id = "m-" + random_chars(rng, kLower, 20);
    std::string instance = "i-" + random_chars(rng, kLower, 20);
    must(sl::RegisterAccount{owner, "cn", key.access_key_id}, sl::CommandContext{{}, "setup", key.secret});
    must(sl::RunInstances{owner, kRegion, sys, {instance}, {"d-" + random_chars(rng, kLower, 20)}});
    must(sl::CreateImage{owner, kRegion, instance, key.image_id, "bench"});
    must(sl::ModifyImageSharePermission{owner, kRegion, key.image_id, fx.recipients, {}, std::nullopt});
    fx.keys.push_back(std::move(key));
  }
  return fx;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  CLI::App app{"api_bench: HTTP req/s of shareledger's API vs a Beast hello-world server, same run"};
  app.add_option("--seconds", f.seconds, "measured seconds per case")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--warmup", f.warmup, "seconds per case before measuring")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--connections", f.connections, "keep-alive connections")->capture_default_str()->check(CLI::Range(1, 10000));
  app.add_option("--client-threads", f.client_threads, "load generator threads")->capture_default_str()->check(CLI::Range(1, 256));
  app.add_option("--server-threads", f.server_threads, "io threads per server (0 = one per core)")->capture_default_str()->check(CLI::Range(0, 256));
  app.add_option("--accounts", f.accounts, "signing accounts for the ecs case (spreads nonces)")->capture_default_str()->check(CLI::Range(1, 10000));
  app.add_option("--benchmarks", f.benchmarks, "cases to run, in order: hello,check,ecs")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::IsMember({"hello", "check", "ecs"}));
  app.add_flag("--json", f.json, "one JSON object per line (header, then one per case)");
  app.add_option("--dir", f.dir, "ledger directory (default: fresh mkdtemp under $TMPDIR, removed)");
  app.add_option("--seed", f.seed, "seed for account ids, keys and secrets")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  sl::bench::ScratchDir scratch(f.dir, "api_bench");
  const std::string ledger_dir = scratch.fresh("ledger");
  auto opened = sl::Ledger::open(ledger_dir);
  if (!opened) {
    std::fprintf(stderr, "api_bench: open %s: %s\n", ledger_dir.c_str(), describe(opened.error()).c_str());
    return 2;
  }
  std::unique_ptr<sl::Ledger> ledger = std::move(*opened);
  Fixture fx = build_fixture(*ledger, f.accounts, f.seed);

  std::mt19937_64 rng(f.seed + 1);
  const std::string admin_token = random_chars(rng, "0123456789abcdefghijklmnopqrstuvwxyz", 30);
  sl::api::Service service(*ledger, sl::api::ServiceOptions{admin_token, std::chrono::milliseconds(0)});
  sl::api::HttpServerOptions http_options;
  http_options.listen = "127.0.0.1:0";
  http_options.threads = f.server_threads;
  sl::api::HttpServer server(http_options, [&service](sl::api::Request&& req, const sl::api::PeerInfo& peer,
                                                      sl::api::Responder respond) {
    service.handle(std::move(req), peer, std::move(respond));
  });
  if (auto s = server.start(); !s) {
    std::fprintf(stderr, "api_bench: shareledger server: %s\n", s.error().message.c_str());
    return 2;
  }
  sl::bench::HelloServer hello(f.server_threads);
  if (auto s = hello.start(); !s) {
    std::fprintf(stderr, "api_bench: hello server: %s\n", s.error().message.c_str());
    return 2;
  }

  std::string cases;
  for (const auto& b : f.benchmarks) cases += (cases.empty() ? "" : ",") + b;
  const int server_threads = f.server_threads > 0 ? f.server_threads : static_cast<int>(sl::bench::cores());
  sl::bench::print_header(
      {{"bench", "api_bench"},
       {"build", sl::bench::build_description()},
       {"cores", std::to_string(sl::bench::cores())},
       {"loadavg", sl::bench::load_average()},
       {"servers", "in-process, 127.0.0.1, " + std::to_string(server_threads) + " io threads each"},
       {"load", std::to_string(f.connections) + " keep-alive connections on " + std::to_string(f.client_threads) +
                    " client threads, one request in flight per connection"},
       {"payload", "hello: GET / ; check: GET /v1/check (bearer) ; ecs: DescribeImageSharePermission (ACS3, " +
                       std::to_string(fx.keys.size()) + " keys, 3 grants)"},
       {"cases", cases},
       {"seconds", sl::bench::format_seconds(f.seconds) + " per case after " + sl::bench::format_seconds(f.warmup) + " warm-up"},
       {"seed", std::to_string(f.seed)},
       {"dir", scratch.path()}},
      f.json, "api_bench");

  const std::string sl_host = "127.0.0.1:" + std::to_string(server.port());
  double hello_rate = -1;
  for (const std::string& b : f.benchmarks) {
    const std::string suffix = "/c" + std::to_string(f.connections);
    CaseResult r;
    if (b == "hello") {
      FixedGet maker("127.0.0.1:" + std::to_string(hello.port()), "/", "");
      r = drive(f, "hello" + suffix, hello.port(), maker);
      hello_rate = r.rate();
    } else if (b == "check") {
      FixedGet maker(sl_host, "/v1/check?account=" + fx.recipients[0] + "&image=" + fx.keys[0].image_id,
                     "Bearer " + admin_token);
      r = drive(f, "v1_check" + suffix, server.port(), maker);
    } else {
      SignedDescribe maker(sl_host, fx.keys, f.seed);
      r = drive(f, "ecs_share_perm" + suffix, server.port(), maker);
    }
    if (b != "hello" && hello_rate > 0) {
      r.ratio = r.rate() / hello_rate;
      r.baseline = "hello";
    }
    sl::bench::print_case(r, f.json);
  }
  hello.stop();
  server.stop();
  ledger->stop();
  return 0;
}
