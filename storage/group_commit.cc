#include "storage/group_commit.h"

#include <bit>
#include <chrono>

#include "events/codec.h"
#include "events/entities.h"

namespace sl {
namespace {

std::int64_t micros_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

const Event& LogBatch::append(Event e, std::int64_t now_us) {
  e.seq = head_.seq + 1;
  e.time_us = std::max(now_us, head_.time_us);
  e.prev_hash = head_.hash;
  std::string stored = seal_event(e);
  batch_.Put(store_.events(), be64(e.seq), stored);
  reindex(e);
  appended_.push_back(std::move(e));
  return appended_.back();
}

void LogBatch::reindex(const Event& e) {
  batch_.Put(store_.idx(), time_key(e.time_us, e.seq), rocksdb::Slice());
  for (const auto& entity : touched_entities(e)) batch_.Put(store_.idx(), entity_key(entity, e.seq), rocksdb::Slice());
  head_ = Head{e.seq, e.time_us, e.hash};
}

void LogBatch::record_head() {
  batch_.Put(store_.meta(), rocksdb::Slice(kRecordedHeadKey.data(), kRecordedHeadKey.size()), be64(head_.seq));
}

void LogBatch::put_row(std::string_view key, std::string_view value) {
  batch_.Put(store_.proj(), rocksdb::Slice(key.data(), key.size()), rocksdb::Slice(value.data(), value.size()));
  std::string versioned = "P";
  versioned.append(value);
  batch_.Put(store_.hist(), hist_key(key, head_.seq), versioned);
}

void LogBatch::delete_row(std::string_view key) {
  batch_.Delete(store_.proj(), rocksdb::Slice(key.data(), key.size()));
  batch_.Put(store_.hist(), hist_key(key, head_.seq), "D");
}

void LogBatch::put_secret(std::string_view access_key_id, std::string_view secret) {
  batch_.Put(store_.secrets(), rocksdb::Slice(access_key_id.data(), access_key_id.size()),
             rocksdb::Slice(secret.data(), secret.size()));
}

GroupCommitter::GroupCommitter(Store& store, Head head, Hooks hooks)
    : store_(store), hooks_(std::move(hooks)), head_(std::move(head)) {
  writer_ = std::thread([this] { run(); });
}

GroupCommitter::~GroupCommitter() { stop(); }

void GroupCommitter::submit(std::unique_ptr<WriteJob> job) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      queue_.push_back(std::move(job));
      cv_.notify_one();
      return;
    }
  }
  job->finish(make_error(503, "ServiceUnavailable", "the ledger is shutting down"));
}

void GroupCommitter::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      if (!writer_.joinable()) return;
    }
    stopping_ = true;
    cv_.notify_one();
  }
  if (writer_.joinable()) writer_.join();
}

Head GroupCommitter::head() const {
  std::lock_guard lock(mu_);
  return head_;
}

void GroupCommitter::run() {
  std::vector<std::unique_ptr<WriteJob>> group;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      while (!queue_.empty() && group.size() < kMaxGroupJobs) {
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    commit(group);
    group.clear();
  }
}

Status GroupCommitter::recover() {
  if (auto s = store_.reopen(); !s) return s;
  Result<Head> head = hooks_.reload ? hooks_.reload() : store_.head();
  if (!head) return head.error();
  std::lock_guard lock(mu_);
  head_ = *head;
  failed_ = false;
  return Ok{};
}

void GroupCommitter::commit(std::vector<std::unique_ptr<WriteJob>>& group) {
  if (failed_) {
    // The jobs of the failed group changed the owner's state, and the store
    // takes no write until reopened: nothing can be staged before both are back.
    if (Status s = recover(); !s) {
      stats_.failures++;
      for (auto& job : group) job->finish(s);
      return;
    }
  }
  LogBatch batch(store_, head());
  for (auto& job : group) job->stage(batch);

  Status durable = Ok{};
  if (!batch.appended().empty()) batch.record_head();
  if (batch.batch().Count() > 0) {
    auto t0 = std::chrono::steady_clock::now();
    durable = store_.write(batch.batch(), /*sync=*/true);
    auto us = static_cast<std::uint64_t>(micros_since(t0));
    stats_.sync_micros_total += us;
    if (us > stats_.sync_micros_max) stats_.sync_micros_max = us;
  }
  stats_.groups++;
  stats_.jobs += group.size();
  stats_.group_size_hist[std::min<std::size_t>(7, std::bit_width(group.size()) - 1)]++;
  if (durable) {
    stats_.events += batch.appended().size();
    std::lock_guard lock(mu_);
    head_ = batch.head();
  } else {
    stats_.failures++;
    failed_ = true;
  }
  for (auto& job : group) job->finish(durable);
  if (durable && !batch.appended().empty() && hooks_.on_committed) hooks_.on_committed(batch.appended());
}

}  // namespace sl
