// The WebSocket change feed (SPEC §3.3): gap-free, resumable, never blocks writers.
//
// FeedHub keeps the most recent committed events in a ring (shared by every
// subscriber) and the list of subscribers parked at the tail. The writer thread
// only appends to the ring and posts ONE wake-up task; it never waits on a
// subscriber. Each FeedSession walks the log from its own next seq:
//   - from the ring while it is within kLiveWindow events of the head ("live"),
//   - otherwise from RocksDB in chunks ("catch-up"); this is also what happens to
//     a subscriber whose socket is slow: it falls behind the window, is served
//     from disk, and rejoins live when it reaches the head (it is told each time
//     with {"kind":"live"}). Nobody is dropped for being slow.
// Every event is checked against the subscriber's scope and filter, in seq order;
// `position` in heartbeats is the highest seq checked.
//
// Thread safety: publish() from the writer thread; everything else on the io threads.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "api/service.h"
#include "events/event.h"

namespace sl::api {

inline constexpr std::size_t kRingCapacity = 1 << 16;  // events kept in memory
inline constexpr std::uint64_t kLiveWindow = 4096;     // max lag served from the ring
inline constexpr std::size_t kCatchUpChunk = 512;      // events read from RocksDB per step
inline constexpr std::size_t kMaxFramesInFlight = 256;  // per subscriber send queue

struct FeedEvent {
  Event event;
  std::shared_ptr<const std::string> frame;  // {"kind":"event","event":<envelope>}
};

class FeedSession;

class FeedHub {
 public:
  FeedHub(Service& service, boost::asio::io_context& io, std::chrono::milliseconds heartbeat);

  // Writer thread: append committed events; wake parked subscribers.
  void publish(const std::vector<Event>& events);

  // Takes over an authenticated upgrade request.
  void accept(boost::beast::tcp_stream&& stream, Request&& req);

  // Events with seq in [from, from + max) from the ring; false when `from` has
  // already left the ring (read from RocksDB instead).
  bool read_ring(std::uint64_t from, std::size_t max, std::vector<std::shared_ptr<const FeedEvent>>& out) const;
  std::uint64_t head() const;
  // Registers a session to be woken at the next publish. Returns false (no
  // registration) when events after `next - 1` are already available.
  bool park(const std::shared_ptr<FeedSession>& session, std::uint64_t next);

  Service& service() { return service_; }
  boost::asio::io_context& io() { return io_; }
  std::chrono::milliseconds heartbeat() const { return heartbeat_; }

 private:
  Service& service_;
  boost::asio::io_context& io_;
  std::chrono::milliseconds heartbeat_;
  mutable std::mutex mu_;
  std::deque<std::shared_ptr<const FeedEvent>> ring_;  // guarded by mu_; consecutive seqs
  std::uint64_t head_ = 0;                             // guarded by mu_
  std::vector<std::weak_ptr<FeedSession>> parked_;     // guarded by mu_
};

}  // namespace sl::api
