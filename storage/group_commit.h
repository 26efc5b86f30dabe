// GroupCommitter: the single writer. Jobs queue up from any thread; the writer
// thread takes everything queued (up to kMaxGroupJobs), lets each job stage its
// events and row updates into ONE RocksDB WriteBatch, writes it with sync=true,
// and only then tells each job the outcome. Many requests, one fsync.
//
//   submit(job) ──► queue ──► writer: stage(job1) stage(job2) … ─► Write(sync) ─► finish(jobN)
//
// Each job's stage() sees the effects of the jobs staged before it (sequential
// semantics), and is all-or-nothing on its own: it either appends events or
// appends nothing. If the synced write fails, every job in the group is told so
// and nothing of the group is visible. Before the next group is staged, the
// store is reopened (Store::reopen()) and the `reload` hook rebuilds the owner's
// in-memory state from it; until both succeed, groups fail with 503 without
// being staged.
//
// Thread safety: submit() from any thread; stage()/finish() run on the writer thread.
#pragma once

#include <rocksdb/write_batch.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "events/event.h"
#include "storage/store.h"

namespace sl {

inline constexpr std::size_t kMaxGroupJobs = 1024;
inline constexpr std::size_t kMaxGroupBytes = 8 << 20;

// The batch under construction: events with their chain fields, and row updates
// versioned at the seq of the last appended event.
class LogBatch {
 public:
  explicit LogBatch(Store& store, const Head& head) : store_(store), head_(head) {}

  // Assigns seq, time (never decreasing) and prev_hash, seals `e`, and stages
  // the event with its time and entity index entries. Returns the sealed event.
  const Event& append(Event e, std::int64_t now_us);

  // Re-adds the index entries of an already stored event and moves head() to
  // it (used when rebuilding projections from the log).
  void reindex(const Event& e);

  // Records head().seq in the meta family (the log's end marker).
  void record_head();

  // Current row value and a hist version at head().seq.
  void put_row(std::string_view key, std::string_view value);
  void delete_row(std::string_view key);

  void put_secret(std::string_view access_key_id, std::string_view secret);

  const Head& head() const { return head_; }
  rocksdb::WriteBatch& batch() { return batch_; }
  const std::vector<Event>& appended() const { return appended_; }
  std::size_t bytes() const { return batch_.GetDataSize(); }

 private:
  Store& store_;
  Head head_;
  rocksdb::WriteBatch batch_;
  std::vector<Event> appended_;
};

class WriteJob {
 public:
  virtual ~WriteJob() = default;
  // Stage this job's effects. Runs on the writer thread, in submission order.
  virtual void stage(LogBatch& batch) = 0;
  // The group's outcome: OK once durable, or the storage error.
  virtual void finish(const Status& durable) = 0;
};

struct GroupCommitStats {
  std::atomic<std::uint64_t> groups{0}, jobs{0}, events{0}, failures{0};
  std::atomic<std::uint64_t> sync_micros_total{0}, sync_micros_max{0};
  std::atomic<std::uint64_t> group_size_hist[8] = {};  // jobs per group: 1,2-3,4-7,...,128+
};

class GroupCommitter {
 public:
  struct Hooks {
    // Writer thread, after a reopen: rebuild in-memory state from the store and
    // return its head (a write whose fsync failed may have landed after all).
    std::function<Result<Head>()> reload;
    std::function<void(const std::vector<Event>&)> on_committed;    // writer thread, after finish()
  };

  // REQUIRES: `store` outlives this; `head` is the store's current head.
  GroupCommitter(Store& store, Head head, Hooks hooks);
  ~GroupCommitter();  // stop()

  void submit(std::unique_ptr<WriteJob> job);
  // Drains queued jobs, then stops the writer thread. Later submits fail with 503.
  void stop();

  // The last durable head.
  Head head() const;
  const GroupCommitStats& stats() const { return stats_; }

 private:
  void run();
  void commit(std::vector<std::unique_ptr<WriteJob>>& group);
  Status recover();

  Store& store_;
  Hooks hooks_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<WriteJob>> queue_;  // guarded by mu_
  bool stopping_ = false;                        // guarded by mu_
  Head head_;                                    // guarded by mu_ (durable head)
  bool failed_ = false;                          // writer thread: a write failed, recover() first
  GroupCommitStats stats_;
  std::thread writer_;
};

}  // namespace sl
