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
//
// After a failed write the database is closed and opened again in place (see
// reopen()): the Store object, and so every reference to it, stays valid. Each
// read method holds a Pin while it uses the database; code that uses db() or a
// family handle directly must hold one too, unless it runs on the writer thread
// or on a store that never reopens (read-only, secondary, tools).
#pragma once

#include <pthread.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <chrono>
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

struct StoreOptions {
  std::string secondary_dir;     // kSecondary: a private scratch directory
  rocksdb::Env* env = nullptr;   // replaces RocksDB's default environment (tests inject write failures)
  // Filled only as blocks are read. A random as-of read over a long history
  // misses it about once per row, and a miss costs a pread, a checksum and a
  // decompression: 256 MiB -> 1 GiB took the as-of launchers list at 10 M
  // events from 92-129 to 77-78 us (docs/PERFORMANCE.md).
  std::size_t block_cache_bytes = std::size_t{1} << 30;
  // Every commit puts the recorded head in `meta`, whose memtable never fills:
  // without a cap, each WAL file stayed alive for it (2.1 GB of WAL after 1 M
  // events, replayed on every open: 4.3 s for the audit tool's). Past the cap
  // RocksDB flushes the families holding the oldest WAL so it can be deleted.
  std::uint64_t max_wal_bytes = std::uint64_t{256} << 20;
};

class Store {
 public:
  // OK: an open store. 503 ServiceUnavailable: RocksDB could not open `dir` (message says why).
  static Result<std::unique_ptr<Store>> open(const std::string& dir, OpenMode mode, StoreOptions options = {});
  ~Store();

  // A reader's hold on the open database: reopen() waits until no Pin is left,
  // and no Pin starts while it closes and opens. Pins nest (a thread holding
  // one may take more), and cost two atomic operations.
  class Pin {
   public:
    explicit Pin(const Store& store);
    ~Pin();
    Pin(const Pin&) = delete;
    Pin& operator=(const Pin&) = delete;

   private:
    const Store& store_;
  };

  // False only while a reopen has failed to open the database even read-only
  // (reads then fail with 503). Meaningful under a Pin.
  bool is_open() const { return db_ != nullptr; }

  // The database and its families. After a reopen these are new objects: read
  // them under a Pin (or on the writer thread) and do not keep them past it.
  rocksdb::DB* db() const { return db_.get(); }
  rocksdb::ColumnFamilyHandle* events() const { return cf_[kEvents]; }
  rocksdb::ColumnFamilyHandle* proj() const { return cf_[kProj]; }
  rocksdb::ColumnFamilyHandle* hist() const { return cf_[kHist]; }
  rocksdb::ColumnFamilyHandle* idx() const { return cf_[kIdx]; }
  rocksdb::ColumnFamilyHandle* secrets() const { return cf_[kSecrets]; }
  rocksdb::ColumnFamilyHandle* meta() const { return cf_[kMeta]; }

  // A consistent point to read at; nullptr for a secondary (it only moves on
  // catch_up(), so it is consistent already) or a closed store. Release with
  // release_snapshot() under the same Pin.
  const rocksdb::Snapshot* snapshot() const;
  void release_snapshot(const rocksdb::Snapshot* snapshot) const;

  // Writes atomically; sync=true waits for the WAL fsync.
  // OK, or 503 ServiceUnavailable (disk full, IO error: the batch is not acknowledged;
  // if only the fsync failed, it may still be found in the log after the reopen).
  // After a failure every write fails with 503 until reopen() succeeds: RocksDB
  // 7.8 cannot safely resume after a failed WAL write (docs/RELIABILITY.md).
  Status write(rocksdb::WriteBatch& batch, bool sync);

  // Closes the database and opens it again on the same directory, once a write
  // has failed. Attempts are spaced out (100 ms, doubling up to 5 s) and start
  // only when a small probe file can be written and synced, so a full disk is
  // not hammered and readers are not blocked for nothing. Readers wait while
  // the database is closed and opened; if pinned readers do not finish within
  // 250 ms the attempt is postponed. When the read-write open fails, the store
  // opens the directory read-only so reads still answer.
  // OK: writes are accepted again (also when no write had failed).
  // 503 ServiceUnavailable: not reopened (too early, still full, readers busy, open failed).
  // REQUIRES: the writer thread (no write in flight); the caller holds no Pin.
  Status reopen();

  // Secondary mode: catch up with the primary's latest writes.
  Status catch_up();

  // The last event's seq/time/hash (genesis when empty), as of `snapshot` (nullptr = now).
  Result<Head> head(const rocksdb::Snapshot* snapshot = nullptr) const;

  // Stored bytes of event `seq`; nullopt when absent.
  Result<std::optional<std::string>> event_bytes(std::uint64_t seq) const;

  // Whether a scan keeps the blocks it reads in the block cache. A pass over
  // the whole log reads each block once: kBypass leaves the cache to the reads
  // that come back (as-of rows, recent events, subscribers catching up).
  enum class Caching { kFill, kBypass };

  // Calls fn(seq, bytes) for events with seq >= from, in order, until fn returns false.
  // The bytes are valid only during the call.
  Status scan_events(std::uint64_t from, const std::function<bool(std::uint64_t, std::string_view)>& fn,
                     const rocksdb::Snapshot* snapshot = nullptr, Caching caching = Caching::kFill) const;

  // scan_events() for a reader that reads the log in many pieces (each thread
  // of the parallel log reader keeps one): one iterator and its readahead
  // serve every read, where a scan_events() per piece would start both afresh.
  // Holds a Pin while it lives. Thread safety: one thread at a time.
  class EventReader {
   public:
    EventReader(const Store& store, Caching caching, const rocksdb::Snapshot* snapshot = nullptr);
    ~EventReader();
    Status read(std::uint64_t from, const std::function<bool(std::uint64_t, std::string_view)>& fn);

   private:
    Pin pin_;
    std::unique_ptr<rocksdb::Iterator> it_;  // null when the store is closed
  };

  // The last seq whose time <= time_us (0 when none).
  Result<std::uint64_t> seq_at_time(std::int64_t time_us) const;

  // Seqs of events touching `entity`, ascending, seq <= max_seq, at most `limit`.
  Result<std::vector<std::uint64_t>> entity_events(std::string_view entity, std::uint64_t max_seq,
                                                  std::size_t limit) const;

  // REQUIRES: `cf` read from this store under a Pin the caller still holds.
  Result<std::optional<std::string>> get(rocksdb::ColumnFamilyHandle* cf, std::string_view key,
                                         const rocksdb::Snapshot* snapshot = nullptr) const;

  // The seq recorded by the last committed group (0 when none was recorded).
  Result<std::uint64_t> recorded_head() const;

  // Drops every projection row (proj, hist) and index entry, for a rebuild.
  Status clear_projections();

 private:
  enum Cf { kMeta, kEvents, kProj, kHist, kIdx, kSecrets, kCfCount };
  Store();

  rocksdb::Status open_db(OpenMode mode);  // REQUIRES: closed
  void close_db();
  Status try_reopen();

  std::string dir_;
  StoreOptions options_;
  OpenMode mode_ = OpenMode::kReadWrite;
  // Readers hold it shared (Pin), reopen() exclusively. Reader-preferring, so a
  // nested Pin never waits behind a pending reopen.
  mutable pthread_rwlock_t db_lock_;
  std::unique_ptr<rocksdb::DB> db_;                // guarded by db_lock_ (swapped only under it exclusively)
  rocksdb::ColumnFamilyHandle* cf_[kCfCount] = {};  // same
  // Writer thread only.
  bool needs_reopen_ = false;
  std::chrono::steady_clock::time_point next_reopen_{};
  std::chrono::milliseconds reopen_delay_;
};

}  // namespace sl
