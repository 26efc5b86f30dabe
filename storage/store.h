// Store: the RocksDB database behind the ledger.
//
// Column families and key formats:
//   events   be64(seq)                        -> canonical event JSON (events/codec.h)
//   proj     row key                           -> current row value
//   hist     row key '\0' be64(seq)            -> 'P' value | 'D'  (row as of seq; 'D' = absent)
//   idx      'e' entity '\0' be64(seq)         -> ""   events touching an entity
//            't' be64(time_us) be64(seq)       -> ""   event time index
//   secrets  access key id                     -> secret (never exported, never in events)
//   default  "proj_version"                    -> projection code version
//            "head"                            -> be64(seq) of the last committed event,
//                                                 written with every group, so a log
//                                                 cut short at its end is detected
// Row keys never contain '\0', so versions of one row sort together, oldest first.
// hist's prefix (for Bloom filters) is the row key: an iterator that seeks
// anything but a whole hist key (say, a row-key prefix) must set
// ReadOptions::total_order_seek, or it may skip files holding matches.
//
// Thread safety: all methods are safe to call concurrently (RocksDB is); the
// single writer is GroupCommitter. A Store opened read-only or as a secondary
// rejects writes.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "events/result.h"

namespace sl {

enum class OpenMode {
  kReadWrite,  // the server
  kReadOnly,   // audit on a stopped database
  kSecondary,  // audit beside a running server (follows its writes)
};

std::string be64(std::uint64_t v);
std::uint64_t read_be64(std::string_view bytes);  // REQUIRES: bytes.size() >= 8

std::string hist_key(std::string_view row_key, std::uint64_t seq);
std::string entity_key(std::string_view entity, std::uint64_t seq);
std::string time_key(std::int64_t time_us, std::uint64_t seq);
inline constexpr std::string_view kRecordedHeadKey = "head";

struct Head {
  std::uint64_t seq = 0;
  std::int64_t time_us = 0;
  std::string hash;  // 64 hex; genesis zeros when empty
};

class Store {
 public:
  // OK: an open store. 503 ServiceUnavailable: RocksDB could not open `dir` (message says why).
  // kSecondary needs `secondary_dir`, a private scratch directory.
  // `env` replaces RocksDB's default environment (tests inject write failures).
  static Result<std::unique_ptr<Store>> open(const std::string& dir, OpenMode mode,
                                             const std::string& secondary_dir = "", rocksdb::Env* env = nullptr);
  ~Store();

  rocksdb::DB* db() const { return db_.get(); }
  rocksdb::ColumnFamilyHandle* events() const { return cf_[kEvents]; }
  rocksdb::ColumnFamilyHandle* proj() const { return cf_[kProj]; }
  rocksdb::ColumnFamilyHandle* hist() const { return cf_[kHist]; }
  rocksdb::ColumnFamilyHandle* idx() const { return cf_[kIdx]; }
  rocksdb::ColumnFamilyHandle* secrets() const { return cf_[kSecrets]; }
  rocksdb::ColumnFamilyHandle* meta() const { return cf_[kMeta]; }

  // A consistent point to read at; nullptr for a secondary (it only moves on
  // catch_up(), so it is consistent already). Release with release_snapshot().
  const rocksdb::Snapshot* snapshot() const;
  void release_snapshot(const rocksdb::Snapshot* snapshot) const;

  // Writes atomically; sync=true waits for the WAL fsync.
  // OK, or 503 ServiceUnavailable (disk full, IO error: the batch is not applied).
  // After a failure RocksDB stops accepting writes; the next write first tries
  // Resume(). A failed WAL append cannot be resumed in RocksDB 7.8: the store
  // then keeps failing until it is reopened (see Ledger).
  Status write(rocksdb::WriteBatch& batch, bool sync);

  // Secondary mode: catch up with the primary's latest writes.
  Status catch_up();

  // The last event's seq/time/hash (genesis when empty), as of `snapshot` (nullptr = now).
  Result<Head> head(const rocksdb::Snapshot* snapshot = nullptr) const;

  // Stored bytes of event `seq`; nullopt when absent.
  Result<std::optional<std::string>> event_bytes(std::uint64_t seq) const;

  // Calls fn(seq, bytes) for events with seq >= from, in order, until fn returns false.
  // The bytes are valid only during the call.
  Status scan_events(std::uint64_t from, const std::function<bool(std::uint64_t, std::string_view)>& fn,
                     const rocksdb::Snapshot* snapshot = nullptr) const;

  // The last seq whose time <= time_us (0 when none).
  Result<std::uint64_t> seq_at_time(std::int64_t time_us) const;

  // Seqs of events touching `entity`, ascending, seq <= max_seq, at most `limit`.
  Result<std::vector<std::uint64_t>> entity_events(std::string_view entity, std::uint64_t max_seq,
                                                  std::size_t limit) const;

  Result<std::optional<std::string>> get(rocksdb::ColumnFamilyHandle* cf, std::string_view key,
                                         const rocksdb::Snapshot* snapshot = nullptr) const;

  // The seq recorded by the last committed group (0 when none was recorded).
  Result<std::uint64_t> recorded_head() const;

  // Drops every projection row (proj, hist) and index entry, for a rebuild.
  Status clear_projections();

 private:
  enum Cf { kMeta, kEvents, kProj, kHist, kIdx, kSecrets, kCfCount };
  Store() = default;

  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ColumnFamilyHandle* cf_[kCfCount] = {};
  OpenMode mode_ = OpenMode::kReadWrite;
};

}  // namespace sl
