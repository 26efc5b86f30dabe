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

// The log is cut into batches of consecutive seqs. Whoever claims a batch
// does all of its work: reads its events with its own iterator (checking that
// their seqs are dense), checks their hashes and decodes them. Worker threads
// claim batches, and so does the caller's thread while the next batch in seq
// order is not ready yet; the caller's thread hands the batches to fn in seq
// order. Each event's hash covers its own bytes, and its link names the
// previous event's stored hash, which is read with the batch; so batches
// verify independently, and the first problem in seq order is the one
// reported, exactly as a sequential check would. No thread only reads: on two
// cores a reader thread handing batches to verifiers cost more in hand-offs
// and time-slicing than it saved (docs/PERFORMANCE.md, audit).
constexpr std::size_t kBatchEvents = 512;
constexpr std::size_t kBatchesInFlight = 16;

struct Batch {
  std::uint64_t first_seq = 0;
  std::string prev_hash;             // stored hash of event first_seq - 1
  std::string bytes;                 // the events' stored bytes, back to back, then kDecodePadding spaces
  std::vector<std::uint32_t> ends;   // end of each event in `bytes`
  std::vector<Event> events;         // the verified prefix, decoded (hash_only: seq and hash);
                                     // kept across recycling, so their storage is reused
  std::optional<Error> problem;      // the first bad event (or a read error), after `events`
  bool verified = false;

  std::string_view event_bytes(std::size_t i) const {
    std::size_t begin = i == 0 ? 0 : ends[i - 1];
    return std::string_view(bytes).substr(begin, ends[i] - begin);
  }
  // The log (or the scan, at to_seq) ends inside this batch: no later batch may be delivered.
  bool last(std::uint64_t to_seq) const {
    return problem || ends.size() < kBatchEvents || first_seq + kBatchEvents > to_seq;
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

// Reads events first_seq.. (at most kBatchEvents, none past to_seq) and the
// stored hash of the one before. A gap or a read error becomes the batch's
// problem, after the events read before it.
void read_batch(Store::EventReader& reader, Batch& b, std::uint64_t to_seq) {
  // Stays empty (no link matches it) if the event before is missing: the batch
  // before reports that gap first.
  b.prev_hash = b.first_seq == 1 ? std::string(kGenesisHash) : std::string();
  std::uint64_t expected = b.first_seq;
  std::optional<Error> gap;
  auto read = reader.read(b.first_seq > 1 ? b.first_seq - 1 : 1, [&](std::uint64_t seq, std::string_view bytes) {
    if (seq == b.first_seq - 1) {
      b.prev_hash = stored_hash(bytes);
      return true;
    }
    if (seq > to_seq) return false;
    if (seq != expected) {
      gap = corrupt(expected, "missing (next stored event is seq " + std::to_string(seq) + ")");
      return false;
    }
    b.bytes.append(bytes);
    b.ends.push_back(static_cast<std::uint32_t>(b.bytes.size()));
    ++expected;
    return b.ends.size() < kBatchEvents;
  });
  b.bytes.append(kDecodePadding, ' ');  // lets the decoder parse the events where they are
  if (!read) {
    b.problem = read.error();
  } else if (gap) {
    b.problem = std::move(gap);
  }
}

// Decodes into the batch's Events in place: a recycled batch keeps its Events,
// whose strings are overwritten rather than freed and allocated again.
void verify_batch(Batch& b, bool hash_only) {
  std::optional<Error> read_problem = std::move(b.problem);
  b.problem.reset();
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
      if (auto decoded = decode_event_into(bytes, e, true); !decoded) return fail(b, i, corrupt(seq, decoded.error().message));
      if (e.seq != seq) {
        return fail(b, i, corrupt(seq, "stored under key seq " + std::to_string(seq) + " but says " + std::to_string(e.seq)));
      }
    }
    prev = *hash;  // a view into b.bytes
  }
  b.problem = std::move(read_problem);
}

class Pipeline {
 public:
  Pipeline(const Store& store, const ScanOptions& options)
      : store_(store), options_(options), caller_reader_(store, Store::Caching::kBypass) {
    // The caller's thread verifies batches too while it waits (next()), so one
    // worker fewer than cores keeps every core busy without time-slicing: a
    // fold's evolve() on the caller's thread ran ~1.5x slower when a third
    // busy thread shared its core.
    unsigned workers = std::max(2u, std::thread::hardware_concurrency()) - 1;
    for (unsigned i = 0; i < workers; ++i) workers_.emplace_back([this] { work(); });
  }
  ~Pipeline() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
  }

  // The next batch in seq order, verified; nullptr once a batch that ends the
  // log (or to_seq) was delivered. Until the next batch is ready, the caller's
  // thread reads and verifies a later one itself rather than wait.
  std::unique_ptr<Batch> next() {
    if (done_) return nullptr;
    std::unique_lock lock(mu_);
    while (queue_.empty() || !queue_.front()->verified) {
      if (claimable()) {
        process(lock, caller_reader_);
      } else {
        cv_.wait(lock);
      }
    }
    std::unique_ptr<Batch> b = std::move(queue_.front());
    queue_.pop_front();
    done_ = b->last(options_.to_seq);
    cv_.notify_all();  // a slot is free for the workers
    return b;
  }

  // Hands a delivered batch back to the workers, which refill it.
  void recycle(std::unique_ptr<Batch> b) {
    std::lock_guard lock(mu_);
    spare_.push_back(std::move(b));
  }

 private:
  void work() {
    Store::EventReader reader(store_, Store::Caching::kBypass);
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || ended_ || claimable(); });
      if (stop_ || ended_) return;
      process(lock, reader);
    }
  }

  // REQUIRES: mu_ held. More batches are wanted and there is room for one.
  bool claimable() const { return !stop_ && !ended_ && queue_.size() < kBatchesInFlight; }

  // REQUIRES: `lock` holds mu_ and claimable(). Claims the next batch, reads
  // and verifies it unlocked, and marks it verified.
  void process(std::unique_lock<std::mutex>& lock, Store::EventReader& reader) {
    Batch* b = claim();
    lock.unlock();
    read_batch(reader, *b, options_.to_seq);
    verify_batch(*b, options_.hash_only);
    lock.lock();
    b->verified = true;
    if (b->last(options_.to_seq)) ended_ = true;  // batches claimed after it are read but never delivered
    cv_.notify_all();
  }

  // REQUIRES: mu_ held. Queues the next batch of seqs, empty, for the caller to fill.
  Batch* claim() {
    std::unique_ptr<Batch> b;
    if (spare_.empty()) {
      b = std::make_unique<Batch>();
    } else {
      b = std::move(spare_.back());
      spare_.pop_back();
      b->bytes.clear();
      b->ends.clear();
      b->problem.reset();
      b->verified = false;
    }
    b->first_seq = next_seq_;
    next_seq_ += kBatchEvents;
    if (next_seq_ > options_.to_seq) ended_ = true;  // this batch reaches to_seq: the last one needed
    queue_.push_back(std::move(b));
    return queue_.back().get();
  }

  const Store& store_;
  const ScanOptions& options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Batch>> queue_;  // claimed, in seq order; the front leaves once verified
  std::vector<std::unique_ptr<Batch>> spare_;  // delivered, to be refilled
  std::uint64_t next_seq_ = 1;  // the first seq of the next batch to claim
  bool ended_ = false;          // a verified batch ended the log, or every batch to to_seq is claimed
  bool stop_ = false;
  bool done_ = false;           // caller's thread only: the last batch was delivered
  Store::EventReader caller_reader_;  // caller's thread only
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
