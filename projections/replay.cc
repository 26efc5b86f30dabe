#include "projections/replay.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "events/codec.h"

namespace sl {

namespace {

// The log is read in batches that pass through three hands: one thread reads
// them from RocksDB (checking that seqs are dense), worker threads check the
// hashes and decode them in any order, and the caller's thread hands them to
// fn in seq order. Each event's hash covers its own bytes, and its link names
// the previous event's stored hash, which the reader passes along with the
// batch; so batches verify independently, and the first problem in seq order
// is the one reported, exactly as a sequential check would.
constexpr std::size_t kBatchEvents = 512;
constexpr std::size_t kBatchesInFlight = 16;

struct Batch {
  std::uint64_t first_seq = 0;
  std::string prev_hash;             // stored hash of event first_seq - 1
  std::string bytes;                 // the events' stored bytes, back to back
  std::vector<std::uint32_t> ends;   // end of each event in `bytes`
  std::vector<Event> events;         // the verified prefix, decoded (hash_only: seq and hash);
                                     // kept across recycling, so their storage is reused
  std::optional<Error> problem;      // the first bad event, after `events`
  bool claimed = false;              // a worker is verifying it
  bool verified = false;

  std::string_view event_bytes(std::size_t i) const {
    std::size_t begin = i == 0 ? 0 : ends[i - 1];
    return std::string_view(bytes).substr(begin, ends[i] - begin);
  }
};

Error corrupt(std::uint64_t seq, const std::string& what) {
  return make_error(500, "CorruptEvent", "seq " + std::to_string(seq) + ": " + what);
}

// Event `i` of `b` is bad: only the events before it are delivered.
void fail(Batch& b, std::size_t i, Error problem) {
  b.events.resize(i);
  b.problem = std::move(problem);
}

// Decodes into the batch's Events in place: a recycled batch keeps its Events,
// whose strings are overwritten rather than freed and allocated again.
void verify_batch(Batch& b, bool hash_only) {
  std::string_view prev = b.prev_hash;
  b.events.resize(b.ends.size());
  for (std::size_t i = 0; i < b.ends.size(); ++i) {
    const std::uint64_t seq = b.first_seq + i;
    std::string_view bytes = b.event_bytes(i);
    Event& e = b.events[i];
    auto hash = verify_event_bytes(bytes, prev);
    if (!hash) return fail(b, i, corrupt(seq, hash.error().message));
    if (hash_only) {
      e.seq = seq;
      e.hash.assign(*hash);
    } else {
      if (auto decoded = decode_event_into(bytes, e); !decoded) return fail(b, i, corrupt(seq, decoded.error().message));
      if (e.seq != seq) {
        return fail(b, i, corrupt(seq, "stored under key seq " + std::to_string(seq) + " but says " + std::to_string(e.seq)));
      }
    }
    prev = *hash;  // a view into b.bytes
  }
}

class Pipeline {
 public:
  Pipeline(const Store& store, const ScanOptions& options) : store_(store), options_(options) {
    reader_ = std::thread([this] { read(); });
    unsigned workers = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < workers; ++i) workers_.emplace_back([this] { work(); });
  }
  ~Pipeline() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    reader_.join();
    for (auto& w : workers_) w.join();
  }

  // The next batch in seq order, verified; nullptr when the log (or to_seq) is done.
  std::unique_ptr<Batch> next() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return (!queue_.empty() && queue_.front()->verified) || (queue_.empty() && read_done_); });
    if (queue_.empty()) return nullptr;
    std::unique_ptr<Batch> b = std::move(queue_.front());
    queue_.pop_front();
    cv_.notify_all();  // a slot is free for the reader
    return b;
  }

  // Hands a delivered batch back to the reader, which refills it.
  void recycle(std::unique_ptr<Batch> b) {
    std::lock_guard lock(mu_);
    spare_.push_back(std::move(b));
  }

  // Set once the reader is done: a storage error or a gap, reported after every batch before it.
  const std::optional<Error>& read_problem() const { return read_problem_; }

 private:
  std::unique_ptr<Batch> fresh_batch() {
    std::unique_ptr<Batch> b;
    {
      std::lock_guard lock(mu_);
      if (spare_.empty()) return std::make_unique<Batch>();
      b = std::move(spare_.back());
      spare_.pop_back();
    }
    b->bytes.clear();
    b->ends.clear();
    b->problem.reset();
    b->claimed = b->verified = false;
    return b;
  }

  void read() {
    std::string prev_hash(kGenesisHash);
    std::uint64_t expected = 1;
    auto batch = fresh_batch();
    auto publish = [&]() -> bool {
      if (batch->ends.empty()) return true;
      prev_hash = std::string(stored_hash(batch->event_bytes(batch->ends.size() - 1)));
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || queue_.size() < kBatchesInFlight; });
      if (stop_) return false;
      queue_.push_back(std::move(batch));
      cv_.notify_all();
      lock.unlock();
      batch = fresh_batch();
      return true;
    };
    std::optional<Error> problem;
    auto scanned = store_.scan_events(1, [&](std::uint64_t seq, std::string_view bytes) {
      if (seq > options_.to_seq) return false;
      if (seq != expected) {
        problem = corrupt(expected, "missing (next stored event is seq " + std::to_string(seq) + ")");
        return false;
      }
      if (batch->ends.empty()) {
        batch->first_seq = seq;
        batch->prev_hash = prev_hash;
      }
      batch->bytes.append(bytes);
      batch->ends.push_back(static_cast<std::uint32_t>(batch->bytes.size()));
      ++expected;
      return batch->ends.size() < kBatchEvents || publish();
    }, nullptr, Store::Caching::kBypass);
    bool go_on = publish();
    std::lock_guard lock(mu_);
    if (!scanned) problem = scanned.error();
    if (go_on) read_problem_ = problem;
    read_done_ = true;
    cv_.notify_all();
  }

  void work() {
    for (;;) {
      Batch* b = nullptr;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stop_ || read_done_ || claimable() != nullptr; });
        b = claimable();
        if (!b) return;  // stopped, or everything read is claimed
        b->claimed = true;
      }
      verify_batch(*b, options_.hash_only);
      std::lock_guard lock(mu_);
      b->verified = true;
      cv_.notify_all();
    }
  }

  // REQUIRES: mu_ held. The oldest read batch no worker has taken yet.
  Batch* claimable() {
    if (stop_) return nullptr;
    for (auto& b : queue_) {
      if (!b->claimed) return b.get();
    }
    return nullptr;
  }

  const Store& store_;
  const ScanOptions& options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Batch>> queue_;  // read, in seq order; the front leaves once verified
  std::vector<std::unique_ptr<Batch>> spare_;  // delivered, to be refilled
  bool read_done_ = false;
  bool stop_ = false;
  std::optional<Error> read_problem_;
  std::thread reader_;
  std::vector<std::thread> workers_;
};

}  // namespace

Status scan_verified(const Store& store, const ScanOptions& options,
                     const std::function<bool(const Event&, std::string_view)>& fn) {
  std::uint64_t next_seq = 1;
  {
    Pipeline pipeline(store, options);
    while (auto batch = pipeline.next()) {
      for (std::size_t i = 0; i < batch->events.size(); ++i) {
        const Event& e = batch->events[i];
        if (!fn(e, batch->event_bytes(i))) return Ok{};
        if (options.progress && e.seq % options.progress_every == 0) options.progress(e.seq);
        next_seq = e.seq + 1;
      }
      if (batch->problem) return *batch->problem;
      pipeline.recycle(std::move(batch));
    }
    if (pipeline.read_problem()) return *pipeline.read_problem();
  }
  // A log whose last events were removed still chains; the recorded head tells.
  if (options.to_seq == std::numeric_limits<std::uint64_t>::max()) {
    auto recorded = store.recorded_head();
    if (!recorded) return recorded.error();
    if (*recorded >= next_seq) {
      return corrupt(next_seq, "missing (the log was committed up to seq " + std::to_string(*recorded) + ")");
    }
  }
  return Ok{};
}

ChainCheck check_chain(const Store& store, const ScanOptions& options, const std::function<bool()>& keep_going) {
  ChainCheck out;
  out.head_hash = kGenesisHash;
  bool stopped = false;
  // scan_verified calls back only for events that passed every check, so the
  // first bad event is the one after the last visited.
  Status status = scan_verified(store, options, [&](const Event& e, std::string_view) {
    if (keep_going && !keep_going()) {
      stopped = true;
      return false;
    }
    out.checked = e.seq;
    out.head_hash = e.hash;
    return true;
  });
  const bool bounded = options.to_seq != std::numeric_limits<std::uint64_t>::max();
  if (!status) {
    out.problem = status.error();
  } else if (!stopped && bounded && out.checked != options.to_seq) {
    out.problem = corrupt(out.checked + 1, "missing: the log ends at seq " + std::to_string(out.checked) +
                                               " before seq " + std::to_string(options.to_seq));
  }
  if (out.problem && out.problem->code == "CorruptEvent") out.bad_seq = out.checked + 1;
  return out;
}

Result<State> replay(const Store& store, const ScanOptions& options,
                     const std::function<void(const State&, const Event&)>& after_each) {
  State state;
  state.track_dirty = after_each != nullptr;  // only after_each could read it
  ScanOptions decode = options;
  decode.hash_only = false;
  auto status = scan_verified(store, decode, [&](const Event& e, std::string_view) {
    evolve(state, e);
    if (after_each) after_each(state, e);
    return true;
  });
  if (!status) return status.error();
  state.track_dirty = true;
  return state;
}

}  // namespace sl
