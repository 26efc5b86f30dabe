// The WebSocket change feed (SPEC §3.3): gap-free, resumable, never blocks writers.
//
// Writers never pay for subscribers. The ledger's committed hook (writer
// thread) only records the new durable head in an atomic and, when no wake-up
// is pending, writes one eventfd: no lock shared with the feed, no allocation,
// no per-subscriber work. Everything else runs on the hub's own io_context
// threads, which run at the lowest scheduling priority (SCHED_IDLE by
// default): acknowledged writes beat delivery, and subscribers catch up when
// the writers rest. (Measured, docs/PERFORMANCE.md: at nice 10 the feed still
// took half the unthrottled writers' throughput; SCHED_IDLE took none. The
// price: on a box saturated by other work the feed gets only leftovers.)
//
// On those threads the hub reads the new events from RocksDB once, in seq
// order, and appends them to a ring shared by every subscriber: each event is
// decoded once, its frame {"kind":"event","event":<envelope>} encoded once
// (an immutable shared buffer), and its touched entities computed once. Each
// FeedSession walks the log from its own next seq:
//   - from the ring while it is within kLiveWindow events of the head ("live");
//   - further behind but still in the ring: from the ring in batches
//     ("catch-up"), pointers only;
//   - older than the ring: from RocksDB in chunks of kCatchUpChunk.
// A session more than kLiveWindow behind is demoted to catch-up and says
// {"kind":"live"} again when it reaches the head; it pulls the next batch only
// when its previous writes completed, so nothing queues without bound and
// nobody is dropped for being slow. While writers commit, catching up runs
// only in its share of the time (FeedOptions::catch_up_share): live delivery
// is not held back, a backlog waits for the writers to rest. Every event is checked against the
// subscriber's scope and filter, in seq order; `position` in heartbeats is the
// highest seq checked.
//
// Thread safety: on_committed() from the writer thread; attach()/detach()/stop()
// from the owner's thread; accept() from any thread; the rest on feed threads.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api/service.h"
#include "events/event.h"

namespace sl::api {

inline constexpr std::size_t kRingCapacity = 1 << 16;   // events kept in memory
inline constexpr std::uint64_t kLiveWindow = 4096;      // max lag of a "live" subscriber
inline constexpr std::size_t kCatchUpChunk = 512;       // events per step read from RocksDB
inline constexpr std::size_t kMaxFramesInFlight = 256;  // per subscriber send queue
inline constexpr std::size_t kCheckedPerTurn = 4096;    // events checked before a session yields its thread

// One committed event as every subscriber sees it; immutable once in the ring.
struct FeedEvent {
  Event event;
  std::shared_ptr<const std::string> frame;  // {"kind":"event","event":<stored envelope>}
  std::vector<std::string> entities;         // touched_entities(event), for filters
};

struct FeedOptions {
  std::chrono::milliseconds heartbeat{5000};  // idle time before a heartbeat frame
  int threads = 1;                            // feed io threads
  // Scheduling of the feed threads: SCHED_IDLE when `idle`, else nice `nice`
  // (0 = the process's own). Both are unprivileged and only ever lower it.
  bool idle = true;
  int nice = 19;
  std::chrono::milliseconds metrics_period{250};  // lag/demoted gauges refresh
  // While writers commit, sessions behind the live window (catching up) run
  // only in the first `catch_up_share` of every catch_up_period; 1 = always.
  // Even at SCHED_IDLE, a feed busy catching up slowed unthrottled writers by
  // ~15 % (median; up to a third) through shared caches, loopback softirqs and
  // wake-ups (docs/PERFORMANCE.md), so it yields most of the time until they rest.
  double catch_up_share = 0.2;
  std::chrono::milliseconds catch_up_period{10};
  // Writers count as resting when nothing was committed for this long.
  std::chrono::milliseconds writers_rest_after{20};
};

// Reads a --feed-priority value into `options`: "idle" (SCHED_IDLE) or a nice
// value "0".."19". OK, or 400 InvalidParameter (options untouched).
Status parse_feed_priority(std::string_view text, FeedOptions& options);

class FeedSession;

class FeedHub {
 public:
  // Starts the feed threads. The ring starts empty at the ledger's current head.
  FeedHub(Service& service, FeedOptions options);
  ~FeedHub();  // stop()

  // Routes the ledger's committed hook to this hub, then makes sure no event
  // committed before the hook was set is missed (those are read from RocksDB).
  // REQUIRES: nothing submits commands to the ledger during the call (wire
  // before serving, as Ledger::set_on_committed asks).
  void attach(Ledger& ledger);
  // Clears the hook. REQUIRES: after Ledger::stop() (no group in flight).
  void detach();
  // Closes every session and joins the feed threads. Idempotent.
  void stop();

  // Writer thread: events up to `seq` are durable. Lock-free, allocation-free.
  void on_committed(std::uint64_t seq);

  // Takes over an authenticated upgrade request: the socket moves to a feed thread.
  void accept(boost::beast::tcp_stream&& stream, Request&& req);

  // ---- for FeedSession (feed threads) ----
  // Events with seq in [from, from + max) from the ring; false when `from` has
  // already left the ring or is beyond the head (read from RocksDB instead).
  bool read_ring(std::uint64_t from, std::size_t max, std::vector<std::shared_ptr<const FeedEvent>>& out) const;
  // The last seq in the ring (or the head at start): what sessions can read.
  std::uint64_t head() const { return head_.load(std::memory_order_acquire); }
  // Registers a session to be woken when the ring grows. Returns false (no
  // registration) when events after `next - 1` are already available.
  bool park(const std::shared_ptr<FeedSession>& session, std::uint64_t next);
  // For a session about to catch up: true when it must wait instead (writers
  // are committing and this is not its share of the time); it is then woken
  // when catching up may go on.
  bool hold_catch_up(const std::shared_ptr<FeedSession>& session);

  Service& service() { return service_; }
  boost::asio::io_context& io() { return *io_; }
  std::chrono::milliseconds heartbeat() const { return options_.heartbeat; }

 private:
  void wait_for_commits();
  void refill();
  void sample_metrics();
  void arm_metrics();
  void publish_lag(std::uint64_t committed);
  bool catch_up_open(std::chrono::steady_clock::time_point now) const;
  void release_held();

  Service& service_;
  FeedOptions options_;
  Ledger* ledger_ = nullptr;  // set by attach()

  // Written by the writer thread, read by feed threads.
  std::atomic<std::uint64_t> committed_{0};  // highest durable seq announced
  std::atomic<bool> wake_pending_{false};    // an eventfd write not yet consumed
  int wake_fd_ = -1;                         // eventfd: writer -> hub
  std::uint64_t wake_count_ = 0;             // the eventfd's counter, read on strand_
  // Written by the metrics sampler, read by the writer thread's on_committed.
  std::atomic<std::uint64_t> min_position_{0};  // lowest subscriber position
  std::atomic<std::uint64_t> positions_sum_{0}, positioned_{0};

  std::atomic<std::uint64_t> head_{0};  // last seq in the ring; only refill() moves it
  mutable std::mutex mu_;               // feed threads only (never the writer)
  std::deque<std::shared_ptr<const FeedEvent>> ring_;  // guarded by mu_; seqs head_-size+1..head_
  std::vector<std::weak_ptr<FeedSession>> parked_;     // guarded by mu_
  std::vector<std::weak_ptr<FeedSession>> held_;       // guarded by mu_; waiting for catch-up time
  bool release_armed_ = false;                         // guarded by mu_
  std::atomic<std::int64_t> last_commit_ns_{0};        // steady clock of the last refill with new events
  std::vector<std::weak_ptr<FeedSession>> sessions_;   // guarded by mu_; for the gauges

  std::optional<boost::asio::io_context> io_;  // reset in ~FeedHub after the threads end
  std::optional<boost::asio::strand<boost::asio::io_context::executor_type>> strand_;  // refill + metrics
  std::optional<boost::asio::posix::stream_descriptor> wake_;
  std::optional<boost::asio::steady_timer> metrics_timer_;
  std::optional<boost::asio::steady_timer> release_timer_;  // on strand_: wakes held_
  std::vector<std::thread> threads_;
  bool stopped_ = false;
};

}  // namespace sl::api
