// feed_bench: the WebSocket change feed (SPEC §3.3) under fan-out. An
// in-process server (Ledger + Service + HttpServer + FeedHub, wired like
// tools/shareledger_main.cc) on 127.0.0.1:0; --subscribers feed clients
// (async Beast websocket, admin token, no filter, live from the head) on
// --client-threads threads of this process; writers append one-event commands
// (SetEncryptShareRole toggles, each writer thread on its own account, up to
// --window commands in flight) for --seconds.
//
// For each writer rate in --rates (events/s in total; 0 = "max", as fast as the
// writers go), in order, in the same process and on the same database:
//   append/R/subs0     writers alone: events/s, submit->durable latency.
//   append/R/subs0.after  the same, again after the subscribers left.
//   append/R/subsN     the same writers while N subscribers follow the feed
//                      (measured between the two baselines); ratio = its
//                      events/s over the mean of the two baselines.
//   delivery/R/subsN   every (subscriber, event) delivery of that window:
//                      p50/p99 = append->delivery, i.e. receive time minus the
//                      envelope `time` (stamped when the event is sealed, before
//                      the fsync), both from this process's system clock. The
//                      note adds durable-ack->delivery percentiles, gaps,
//                      duplicates, demotions (a second {"kind":"live"}) and how
//                      many subscribers reached the final head.
// Targets (docs/PERFORMANCE.md): delivery p99 < 50 ms; append/R/subsN >= 0.9x.
//
// Example:
//   feed_bench --subscribers=1000 --seconds=5 --rates=40,0
//   append/r40/subs0      : 25467.7 micros/op   39 ops/sec ...
//   append/r40/subs0.after: 25468.0 micros/op   39 ops/sec ...
//   append/r40/subs1000   : 25468.2 micros/op   39 ops/sec ...; 1.00x mean(append/r40/subs0, .after)
//   delivery/r40/subs1000 :  ... p50 13.06 ms  p99 27.90 ms ...
// Exit status 1 when any subscriber saw a gap, a duplicate or an error; a
// subscriber still behind after --drain-seconds is reported, not an error.
//
// Priorities. The server's feed threads run below the writers
// (--feed-priority, as the server's flag: a nice value or idle = SCHED_IDLE;
// api/feed.h). The subscribers stand for remote machines that share this box's
// 2 cores only because the bench is one process, so by default their threads
// run at the lowest priority too (--client-priority=idle): they then take
// little CPU a writer wants, as remote clients would take none. --client-priority=0
// shows what is left when they compete with the writers at full priority.
#include <CLI/CLI.hpp>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api/feed.h"
#include "api/http_server.h"
#include "api/ids.h"
#include "api/service.h"
#include "bench/bench_common.h"
#include "projections/ledger.h"

namespace {

namespace beast = boost::beast;
namespace net = boost::asio;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using sl::bench::CaseResult;
using Json = nlohmann::json;

constexpr const char* kAdminToken = "feed-bench-admin-token";

struct Flags {
  double seconds = 5;
  std::vector<double> rates = {20, 0};
  int subscribers = 1000;
  int client_threads = 2;
  int server_threads = 2;
  int feed_threads = 1;
  std::string feed_priority = "idle";
  double catch_up_share = sl::api::FeedOptions{}.catch_up_share;
  std::string client_priority = "idle";
  int writer_threads = 4;
  int window = 1;
  int heartbeat_ms = 5000;
  double drain_seconds = 30;
  std::string dir;
  bool json = false;
};

// Names the calling thread (for perf and top) and lowers its priority to
// `priority` (SCHED_IDLE or a nice value, as the feed's own threads).
void set_this_thread(const char* name, const sl::api::FeedOptions& priority) {
  pthread_setname_np(pthread_self(), name);
  sched_param param{};
  if (priority.idle && pthread_setschedparam(pthread_self(), SCHED_IDLE, &param) == 0) return;
  const int nice = priority.idle ? 19 : priority.nice;
  if (nice > 0) setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), nice);
}

std::int64_t system_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Log-linear histogram of microseconds (~1.5% resolution), mergeable.
class Histogram {
 public:
  void add(std::int64_t us) {
    std::uint64_t v = us < 0 ? 0 : static_cast<std::uint64_t>(us);
    counts_[index(v)]++;
    total_++;
  }
  void merge(const Histogram& o) {
    for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
  }
  std::uint64_t total() const { return total_; }
  double quantile(double q) const {
    if (!total_) return 0;
    std::uint64_t rank = static_cast<std::uint64_t>(q * static_cast<double>(total_));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen > rank) return static_cast<double>(lower(i));
    }
    return static_cast<double>(lower(counts_.size() - 1));
  }
  double max() const {
    for (std::size_t i = counts_.size(); i-- > 0;) {
      if (counts_[i]) return static_cast<double>(lower(i));
    }
    return 0;
  }

 private:
  static constexpr int kSub = 64;
  static std::size_t index(std::uint64_t v) {
    if (v < kSub) return v;
    int e = 63 - __builtin_clzll(v);  // >= 6
    std::uint64_t m = v >> (e - 6);   // [64, 128)
    return kSub + static_cast<std::size_t>(e - 6) * kSub + (m - kSub);
  }
  static std::uint64_t lower(std::size_t i) {
    if (i < kSub) return i;
    std::size_t e = (i - kSub) / kSub + 6, m = (i - kSub) % kSub + kSub;
    return static_cast<std::uint64_t>(m) << (e - 6);
  }
  std::array<std::uint64_t, kSub + 58 * kSub> counts_{};
  std::uint64_t total_ = 0;
};

// What one client thread saw; touched only by that thread until joined.
struct ClientStats {
  Histogram sealed_to_recv, ack_to_recv;
  std::uint64_t frames = 0, events = 0, gaps = 0, duplicates = 0, live = 0, heartbeats = 0, errors = 0;
};

// seq -> system time (us) at which the writer heard "durable". Written by the
// writer thread before the event is published; read by client threads after.
class AckTimes {
 public:
  explicit AckTimes(std::size_t capacity) : times_(capacity) {}
  void set_base(std::uint64_t base) { base_ = base; }
  void record(std::uint64_t seq) {
    if (seq > base_ && seq - base_ <= times_.size()) times_[seq - base_ - 1].store(system_micros(), std::memory_order_relaxed);
  }
  std::int64_t get(std::uint64_t seq) const {
    if (seq > base_ && seq - base_ <= times_.size()) return times_[seq - base_ - 1].load(std::memory_order_relaxed);
    return 0;
  }

 private:
  std::uint64_t base_ = 0;
  std::vector<std::atomic<std::int64_t>> times_;
};

// Reads the digits after `key` (searching backwards from the end) in an event frame.
std::uint64_t number_before_end(std::string_view frame, std::string_view key) {
  std::size_t at = frame.rfind(key);
  if (at == std::string_view::npos) return 0;
  std::uint64_t n = 0;
  for (std::size_t i = at + key.size(); i < frame.size() && frame[i] >= '0' && frame[i] <= '9'; ++i) {
    n = n * 10 + static_cast<std::uint64_t>(frame[i] - '0');
  }
  return n;
}

// One feed subscriber: connect, upgrade, subscribe, then read forever.
class Subscriber : public std::enable_shared_from_this<Subscriber> {
 public:
  Subscriber(net::io_context& io, ClientStats& stats, const AckTimes& acks, std::atomic<std::uint64_t>& measure_from)
      : ws_(io), stats_(stats), acks_(acks), measure_from_(measure_from) {}

  void start(tcp::endpoint ep, std::uint64_t after_seq, std::atomic<int>& ready) {
    ready_ = &ready;
    next_ = after_seq + 1;
    beast::get_lowest_layer(ws_).async_connect(ep, [self = shared_from_this(), ep, after_seq](beast::error_code ec) {
      if (ec) return self->fail();
      self->ws_.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
        req.set(beast::http::field::authorization, std::string("Bearer ") + kAdminToken);
      }));
      self->ws_.async_handshake("127.0.0.1:" + std::to_string(ep.port()), "/v1/feed",
                                [self, after_seq](beast::error_code ec) {
                                  if (ec) return self->fail();
                                  self->sub_ = Json{{"op", "subscribe"}, {"after_seq", after_seq}}.dump();
                                  self->ws_.text(true);
                                  self->ws_.async_write(net::buffer(self->sub_),
                                                        [self](beast::error_code ec, std::size_t) {
                                                          if (ec) return self->fail();
                                                          self->do_read();
                                                        });
                                });
    });
  }

  std::uint64_t last_seq() const { return next_.load(std::memory_order_relaxed) - 1; }
  std::uint64_t live_frames() const { return live_; }
  void stop() {
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }

 private:
  void do_read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec) return fail();
    const auto* data = static_cast<const char*>(buffer_.data().data());
    std::string_view frame(data, buffer_.size());
    stats_.frames++;
    if (frame.starts_with(R"({"kind":"event")")) {
      const std::int64_t now = system_micros();
      std::uint64_t seq = number_before_end(frame, "\"seq\":");
      std::uint64_t time = number_before_end(frame, "\"time\":");
      stats_.events++;
      const std::uint64_t next = next_.load(std::memory_order_relaxed);
      if (seq < next) {
        stats_.duplicates++;
      } else {
        if (seq > next) stats_.gaps++;
        next_.store(seq + 1, std::memory_order_relaxed);
      }
      if (seq > measure_from_.load(std::memory_order_relaxed)) {
        stats_.sealed_to_recv.add(now - static_cast<std::int64_t>(time));
        if (std::int64_t ack = acks_.get(seq)) stats_.ack_to_recv.add(now - ack);
      }
    } else if (frame.find("\"live\"") != std::string_view::npos) {
      stats_.live++;
      if (live_++ == 0) ready_->fetch_add(1);
    } else if (frame.find("\"heartbeat\"") != std::string_view::npos) {
      stats_.heartbeats++;
    } else {
      stats_.errors++;
    }
    buffer_.consume(buffer_.size());
    do_read();
  }

  void fail() {
    if (!failed_) stats_.errors++;
    failed_ = true;
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  std::string sub_;
  ClientStats& stats_;
  const AckTimes& acks_;
  std::atomic<std::uint64_t>& measure_from_;
  std::atomic<int>* ready_ = nullptr;
  std::atomic<std::uint64_t> next_{1};  // written by its client thread, read for progress
  std::uint64_t live_ = 0;
  bool failed_ = false;
};

// Writers: `threads` threads, each toggling its own account's role, `window` commands in flight.
struct WriterRun {
  double seconds = 0, cpu_seconds = 0;
  std::vector<std::uint32_t> micros;  // submit -> durable, per event
  std::uint64_t errors = 0;
};

class Writers {
 public:
  Writers(sl::Ledger& ledger, int threads, int window) : ledger_(ledger), window_(window) {
    for (int t = 0; t < threads; ++t) {
      std::string account = sl::api::new_account_id();
      auto r = ledger.execute(sl::RegisterAccount{account, "cn", sl::api::new_access_key_id()},
                              sl::CommandContext{{}, "setup", sl::api::new_access_key_secret()});
      if (!r) {
        std::fprintf(stderr, "feed_bench: setup failed: %s\n", r.error().code.c_str());
        std::exit(2);
      }
      accounts_.push_back(account);
      on_.push_back(0);
    }
  }

  // Appends for `seconds`; `rate` > 0 paces the submissions to that many
  // events/s in total (spread evenly over the threads), 0 = as fast as they go.
  WriterRun run(double seconds, double rate, AckTimes* acks) {
    std::atomic<bool> stop{false};
    const auto interval = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(rate > 0 ? static_cast<double>(accounts_.size()) / rate : 0));
    std::vector<std::vector<std::uint32_t>> lat(accounts_.size());
    std::vector<std::uint64_t> errors(accounts_.size(), 0);
    std::vector<std::thread> threads;
    double cpu0 = sl::bench::cpu_seconds_process();
    auto t0 = Clock::now();
    for (std::size_t t = 0; t < accounts_.size(); ++t) {
      threads.emplace_back([&, t] {
        set_this_thread("bench-writer", sl::api::FeedOptions{.idle = false, .nice = 0});
        std::mutex mu;
        std::condition_variable cv;
        int in_flight = 0;
        bool want = on_[t] != 0;
        auto next = t0 + interval * static_cast<long>(t) / static_cast<long>(accounts_.size());
        std::unique_lock lock(mu);
        while (!stop.load(std::memory_order_relaxed)) {
          if (rate > 0) {
            lock.unlock();
            std::this_thread::sleep_until(next);
            next += interval;
            lock.lock();
            if (stop.load(std::memory_order_relaxed)) break;
          }
          cv.wait(lock, [&] { return in_flight < window_; });
          in_flight++;
          want = !want;
          lock.unlock();
          auto sent = Clock::now();
          ledger_.submit(sl::SetEncryptShareRole{accounts_[t], want}, sl::CommandContext{{}, "bench", ""},
                         [&, t, sent](sl::Result<sl::Commit> r) {
                           std::lock_guard g(mu);
                           if (r && r->events.size() == 1) {
                             if (acks) acks->record(r->seq);
                             lat[t].push_back(static_cast<std::uint32_t>(
                                 std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - sent).count()));
                           } else {
                             errors[t]++;
                           }
                           in_flight--;
                           cv.notify_all();
                         });
          lock.lock();
        }
        cv.wait(lock, [&] { return in_flight == 0; });
        on_[t] = want;
      });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto& th : threads) th.join();
    WriterRun out;
    out.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    out.cpu_seconds = sl::bench::cpu_seconds_process() - cpu0;
    for (std::size_t t = 0; t < accounts_.size(); ++t) {
      out.micros.insert(out.micros.end(), lat[t].begin(), lat[t].end());
      out.errors += errors[t];
    }
    return out;
  }

 private:
  sl::Ledger& ledger_;
  int window_;
  std::vector<std::string> accounts_;
  std::vector<char> on_;  // each thread's role state (not vector<bool>: threads write their own slot)
};

// The subscribers of one case, on their own client threads.
class Crowd {
 public:
  Crowd(int subscribers, int threads, const sl::api::FeedOptions& priority, const tcp::endpoint& ep, std::uint64_t after_seq,
        const AckTimes& acks, std::atomic<std::uint64_t>& measure_from)
      : stats_(threads), cpu_(threads, 0) {
    for (int t = 0; t < threads; ++t) ios_.push_back(std::make_unique<net::io_context>(1));
    for (int i = 0; i < subscribers; ++i) {
      int t = i % threads;
      auto s = std::make_shared<Subscriber>(*ios_[t], stats_[t], acks, measure_from);
      s->start(ep, after_seq, ready_);
      subs_.push_back(std::move(s));
    }
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, t, priority] {
        set_this_thread("bench-client", priority);
        auto guard = net::make_work_guard(*ios_[t]);
        ios_[t]->run();
        cpu_[t] = sl::bench::cpu_seconds_thread();
      });
    }
  }
  ~Crowd() { stop(); }

  // Waits (at most `timeout`) until every subscriber had its first {"kind":"live"}.
  // Returns how many did.
  int wait_live(std::chrono::seconds timeout) {
    const auto start = Clock::now();
    while (ready_.load() < static_cast<int>(subs_.size()) && Clock::now() - start < timeout) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return ready_.load();
  }

  // Subscribers whose last received seq is >= head.
  int reached(std::uint64_t head) const {
    int n = 0;
    for (const auto& s : subs_) n += s->last_seq() >= head ? 1 : 0;
    return n;
  }

  // Stops the client threads; then the merged statistics are final.
  void stop() {
    if (stopped_) return;
    stopped_ = true;
    for (auto& io : ios_) io->stop();
    for (auto& th : threads_) th.join();
  }

  // Closes every connection (after stop()).
  void close() {
    for (auto& s : subs_) s->stop();
    subs_.clear();
    ios_.clear();
  }

  ClientStats merged() const {
    ClientStats all;
    for (const auto& s : stats_) {
      all.sealed_to_recv.merge(s.sealed_to_recv);
      all.ack_to_recv.merge(s.ack_to_recv);
      all.frames += s.frames;
      all.events += s.events;
      all.gaps += s.gaps;
      all.duplicates += s.duplicates;
      all.live += s.live;
      all.heartbeats += s.heartbeats;
      all.errors += s.errors;
    }
    return all;
  }
  // CPU seconds the client threads used, connect to stop (after stop()).
  double client_cpu_seconds() const {
    double sum = 0;
    for (double c : cpu_) sum += c;
    return sum;
  }
  std::uint64_t demoted() const {
    std::uint64_t n = 0;
    for (const auto& s : subs_) n += s->live_frames() > 1 ? 1 : 0;
    return n;
  }

 private:
  std::vector<ClientStats> stats_;
  std::vector<double> cpu_;  // each client thread's CPU seconds, set when it ends
  std::vector<std::unique_ptr<net::io_context>> ios_;  // declared before subs_: outlives them
  std::vector<std::shared_ptr<Subscriber>> subs_;
  std::vector<std::thread> threads_;
  std::atomic<int> ready_{0};
  bool stopped_ = false;
};

void raise_fd_limit(int needed) {
  struct rlimit rl {};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur < static_cast<rlim_t>(needed)) {
    std::fprintf(stderr, "feed_bench: fd limit %llu is below the ~%d needed\n",
                 static_cast<unsigned long long>(rl.rlim_cur), needed);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  CLI::App app{"feed_bench: WebSocket feed fan-out latency and its cost to writers, same run"};
  app.add_option("--seconds", f.seconds, "writer window per case")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--rates", f.rates, "writer rates to run, events/s in total, comma-separated; 0 = as fast as they go")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--subscribers", f.subscribers, "concurrent feed subscribers")->capture_default_str()->check(CLI::Range(1, 20000));
  app.add_option("--client-threads", f.client_threads, "threads running the subscribers")->capture_default_str()->check(CLI::Range(1, 64));
  app.add_option("--server-threads", f.server_threads, "HTTP io threads")->capture_default_str()->check(CLI::Range(1, 64));
  app.add_option("--feed-threads", f.feed_threads, "feed (websocket) threads")->capture_default_str()->check(CLI::Range(1, 64));
  app.add_option("--feed-priority", f.feed_priority, "feed threads: nice 0..19 or idle (SCHED_IDLE), as the server's flag")
      ->capture_default_str();
  app.add_option("--catch-up-share", f.catch_up_share,
                 "share of the time sessions behind the live window may catch up while writers commit (1 = always)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--client-priority", f.client_priority, "subscriber threads: nice 0..19 or idle (SCHED_IDLE)")
      ->capture_default_str();
  app.add_option("--writer-threads", f.writer_threads, "writer threads, each on its own account")->capture_default_str()->check(CLI::Range(1, 256));
  app.add_option("--window", f.window, "commands in flight per writer thread (1 = synchronous)")->capture_default_str()->check(CLI::Range(1, 4096));
  app.add_option("--heartbeat-ms", f.heartbeat_ms, "feed heartbeat interval")->capture_default_str();
  app.add_option("--drain-seconds", f.drain_seconds, "max wait for every subscriber to reach the head")->capture_default_str();
  app.add_option("--dir", f.dir, "database parent dir (default: fresh mkdtemp under $TMPDIR, removed)");
  app.add_flag("--json", f.json, "one JSON object per line (header, then one per case)");
  CLI11_PARSE(app, argc, argv);

  raise_fd_limit(2 * f.subscribers + 256);
  sl::bench::ScratchDir scratch(f.dir, "feed_bench");
  const std::string dir = scratch.fresh("db");

  auto opened = sl::Ledger::open(dir);
  if (!opened) {
    std::fprintf(stderr, "feed_bench: open %s: %s\n", dir.c_str(), opened.error().message.c_str());
    return 2;
  }
  std::unique_ptr<sl::Ledger> ledger = std::move(*opened);
  sl::api::Service service(*ledger, sl::api::ServiceOptions{kAdminToken, std::chrono::milliseconds(0)});
  sl::api::HttpServerOptions http_options;
  http_options.listen = "127.0.0.1:0";
  http_options.threads = f.server_threads;
  sl::api::FeedOptions feed_options;
  feed_options.heartbeat = std::chrono::milliseconds(f.heartbeat_ms);
  feed_options.threads = f.feed_threads;
  feed_options.catch_up_share = f.catch_up_share;
  sl::api::FeedOptions client_priority;
  if (auto s = sl::api::parse_feed_priority(f.feed_priority, feed_options); !s) {
    std::fprintf(stderr, "feed_bench: --feed-priority: %s\n", s.error().message.c_str());
    return 2;
  }
  if (auto s = sl::api::parse_feed_priority(f.client_priority, client_priority); !s) {
    std::fprintf(stderr, "feed_bench: --client-priority: %s\n", s.error().message.c_str());
    return 2;
  }
  auto feed = std::make_unique<sl::api::FeedHub>(service, feed_options);
  auto server = std::make_unique<sl::api::HttpServer>(
      http_options,
      [&service](sl::api::Request&& req, const sl::api::PeerInfo& peer, sl::api::Responder respond) {
        service.handle(std::move(req), peer, std::move(respond));
      },
      [&feed](beast::tcp_stream&& stream, sl::api::Request&& req) { feed->accept(std::move(stream), std::move(req)); });
  feed->attach(*ledger);
  if (auto s = server->start(); !s) {
    std::fprintf(stderr, "feed_bench: listen: %s\n", s.error().message.c_str());
    return 2;
  }
  const tcp::endpoint ep(net::ip::make_address("127.0.0.1"), server->port());

  Writers writers(*ledger, f.writer_threads, f.window);
  std::string rates_text;
  for (double r : f.rates) rates_text += (rates_text.empty() ? "" : ",") + (r > 0 ? std::to_string(static_cast<long>(r)) : std::string("max"));
  std::size_t envelope_bytes = 0;
  if (auto bytes = ledger->store().event_bytes(ledger->head().seq); bytes && *bytes) envelope_bytes = (*bytes)->size();
  sl::bench::print_header(
      {{"bench", "feed_bench"},
       {"build", sl::bench::build_description()},
       {"cores", std::to_string(sl::bench::cores())},
       {"loadavg", sl::bench::load_average()},
       {"rocksdb", sl::bench::rocksdb_version()},
       {"payload", "one event per command (SetEncryptShareRole toggle); frames ~" + std::to_string(envelope_bytes + 25) + " B"},
       {"writers", std::to_string(f.writer_threads) + " threads x " + std::to_string(f.window) + " in flight; rates " +
                       rates_text + " events/s"},
       {"subscribers", std::to_string(f.subscribers) + " on " + std::to_string(f.client_threads) +
                           " client threads (same process, priority " +
                           (f.client_priority == "idle" ? "SCHED_IDLE" : "nice " + f.client_priority) +
                           "), admin, no filter, live from head"},
       {"server", std::to_string(f.server_threads) + " http threads; feed " + std::to_string(f.feed_threads) +
                      " threads, priority " + (f.feed_priority == "idle" ? "SCHED_IDLE" : "nice " + f.feed_priority) +
                      ", catch-up share " + std::to_string(f.catch_up_share).substr(0, 4)},
       {"seconds", std::to_string(f.seconds) + " per case"},
       {"dir", scratch.path()}},
      f.json, "feed_bench");

  bool ok = true;
  for (double rate : f.rates) {
    const std::string tag = rate > 0 ? "r" + std::to_string(static_cast<long>(rate)) : "max";
    const std::string subs_tag = "subs" + std::to_string(f.subscribers);

    // Writers alone.
    WriterRun alone = writers.run(f.seconds, rate, nullptr);
    CaseResult base = sl::bench::case_from_run("append/" + tag + "/subs0", alone);
    sl::bench::print_case(base, f.json);

    // The same writers while every subscriber follows the feed from the head.
    AckTimes acks(std::max<std::size_t>(1 << 20, static_cast<std::size_t>(base.rate() * f.seconds * 4)));
    std::atomic<std::uint64_t> measure_from{~0ull};
    const auto connect_start = Clock::now();
    const double connect_cpu0 = sl::bench::cpu_seconds_process();
    Crowd crowd(f.subscribers, f.client_threads, client_priority, ep, ledger->head().seq, acks, measure_from);
    const int live = crowd.wait_live(std::chrono::seconds(60));
    const double connect_seconds = std::chrono::duration<double>(Clock::now() - connect_start).count();
    if (live < f.subscribers) std::fprintf(stderr, "feed_bench: only %d of %d subscribers went live\n", live, f.subscribers);

    const double connect_cpu = sl::bench::cpu_seconds_process() - connect_cpu0;
    const std::uint64_t start_head = ledger->head().seq;
    acks.set_base(start_head);
    measure_from = start_head;
    const double cpu0 = sl::bench::cpu_seconds_process();
    const std::int64_t demotions0 = service.metrics().feed_demotions_total.load();
    WriterRun with = writers.run(f.seconds, rate, &acks);
    const std::uint64_t end_head = ledger->head().seq;
    CaseResult loaded = sl::bench::case_from_run("append/" + tag + "/" + subs_tag, with);

    // Drain: every subscriber reaches the final head (bounded).
    const auto drain_start = Clock::now();
    int complete = crowd.reached(end_head);
    while (complete < f.subscribers && Clock::now() - drain_start < std::chrono::duration<double>(f.drain_seconds)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      complete = crowd.reached(end_head);
    }
    const double drain_seconds = std::chrono::duration<double>(Clock::now() - drain_start).count();
    const double cpu_seconds = sl::bench::cpu_seconds_process() - cpu0;
    const std::int64_t demotions = service.metrics().feed_demotions_total.load() - demotions0;
    crowd.stop();
    const ClientStats all = crowd.merged();

    CaseResult d;
    d.name = "delivery/" + tag + "/" + subs_tag;
    d.seconds = with.seconds + drain_seconds;
    d.ops = all.sealed_to_recv.total();
    d.errors = all.gaps + all.duplicates + all.errors;
    d.latency.p50_us = all.sealed_to_recv.quantile(0.50);
    d.latency.p99_us = all.sealed_to_recv.quantile(0.99);
    d.latency.max_us = all.sealed_to_recv.max();
    d.cpu_us_per_op = d.ops ? cpu_seconds * 1e6 / static_cast<double>(d.ops) : 0;
    d.extra["ack_p50_us"] = all.ack_to_recv.quantile(0.50);
    d.extra["ack_p99_us"] = all.ack_to_recv.quantile(0.99);
    d.extra["events_appended"] = end_head - start_head;
    d.extra["subscribers"] = f.subscribers;
    d.extra["subscribers_complete"] = complete;
    d.extra["gaps"] = all.gaps;
    d.extra["duplicates"] = all.duplicates;
    d.extra["client_errors"] = all.errors;
    d.extra["demoted_subscribers"] = crowd.demoted();
    d.extra["server_demotions"] = demotions;
    d.extra["heartbeats"] = all.heartbeats;
    d.extra["drain_seconds"] = drain_seconds;
    d.extra["connect_seconds"] = connect_seconds;
    // Client threads' share of the window's CPU (their connect phase subtracted, roughly).
    const double client_cpu = std::max(0.0, crowd.client_cpu_seconds() - connect_cpu / 2);
    d.extra["client_cpu_share"] = cpu_seconds > 0 ? client_cpu / cpu_seconds : 0;
    char note[480];
    std::snprintf(note, sizeof note,
                  "max %s; durable-ack->recv p50 %s p99 %s; %llu events x %d subs, %d/%d reached head (+%.1f s "
                  "drain); gaps %llu dups %llu errors %llu; demoted %llu (server: %lld demotions); clients %.0f%% of cpu",
                  sl::bench::human_micros(d.latency.max_us).c_str(),
                  sl::bench::human_micros(all.ack_to_recv.quantile(0.50)).c_str(),
                  sl::bench::human_micros(all.ack_to_recv.quantile(0.99)).c_str(),
                  static_cast<unsigned long long>(end_head - start_head), f.subscribers, complete, f.subscribers,
                  drain_seconds, static_cast<unsigned long long>(all.gaps),
                  static_cast<unsigned long long>(all.duplicates), static_cast<unsigned long long>(all.errors),
                  static_cast<unsigned long long>(crowd.demoted()), static_cast<long long>(demotions),
                  100 * (cpu_seconds > 0 ? client_cpu / cpu_seconds : 0));
    d.note = note;
    ok = ok && all.gaps == 0 && all.duplicates == 0 && all.errors == 0;
    // Let the server notice the closed connections, then the writers alone
    // again: the machine may be shared, so the ratio is taken against the
    // mean of the baselines measured before and after.
    crowd.close();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    WriterRun again = writers.run(f.seconds, rate, nullptr);
    CaseResult base2 = sl::bench::case_from_run("append/" + tag + "/subs0.after", again);
    sl::bench::print_case(base2, f.json);
    const double base_rate = (base.rate() + base2.rate()) / 2;
    loaded.ratio = base_rate > 0 ? loaded.rate() / base_rate : 0;
    loaded.baseline = "mean(append/" + tag + "/subs0, .after)";
    sl::bench::print_case(loaded, f.json);
    sl::bench::print_case(d, f.json);
  }

  server->stop();
  ledger->stop();
  feed->detach();
  server.reset();
  feed.reset();
  return ok ? 0 : 1;
}
