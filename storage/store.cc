#include "storage/store.h"

#include <fcntl.h>
#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <vector>

#include "events/codec.h"

namespace sl {
namespace {

const char* const kCfNames[] = {"default", "events", "proj", "hist", "idx", "secrets"};

constexpr std::chrono::milliseconds kFirstReopenDelay{100}, kMaxReopenDelay{5000};
constexpr std::chrono::milliseconds kReaderDrainTimeout{250};
constexpr std::size_t kProbeBytes = 64 << 10;

Error storage_error(const rocksdb::Status& s, std::string_view what) {
  return make_error(503, "ServiceUnavailable", "storage: " + std::string(what) + ": " + s.ToString());
}

rocksdb::Slice slice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

// The row part of a hist key (row '\0' be64(seq)). It is the hist family's
// prefix: SST files carry a Bloom filter of the rows they hold, so an as-of
// read skips every sorted run without a version of its row. Without it each
// read pays one block read per level, and levels grow with the history.
class HistRowPrefix final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "shareledger.HistRowPrefix.1"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), key.size() - kVersionSuffix);
  }
  bool InDomain(const rocksdb::Slice& key) const override { return key.size() > kVersionSuffix; }

 private:
  static constexpr std::size_t kVersionSuffix = 9;  // '\0' be64(seq)
};

// The info LOG. RocksDB's own logger, once a write to LOG failed (disk full),
// trips an assertion on its next line, and Debian's 7.8 build keeps assertions:
// the server would abort (fixed upstream in 8.1, facebook/rocksdb#11314). This
// one appends with write(2) and drops the lines it cannot write.
class InfoLog final : public rocksdb::Logger {
 public:
  explicit InfoLog(int fd) : fd_(fd) {}
  ~InfoLog() override { ::close(fd_); }

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    char line[2048];
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    std::size_t n = std::strftime(line, sizeof line, "%Y/%m/%d-%H:%M:%S ", &tm);
    int body = std::vsnprintf(line + n, sizeof line - n - 1, format, ap);
    if (body < 0) return;
    n = std::min(sizeof line - 2, n + static_cast<std::size_t>(body));
    line[n++] = '\n';
    [[maybe_unused]] auto written = ::write(fd_, line, n);
  }

 private:
  int fd_;
};

// RocksDB's recovery from a failed WAL write (its automatic one, or Resume())
// clears the error but keeps the WAL writer that failed: on a real full disk the
// next write trips the same kind of assertion (measured, docs/RELIABILITY.md).
// Never let it start; the store reopens the database instead.
class NoRecoveryAfterWalError final : public rocksdb::EventListener {
 public:
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason reason, rocksdb::Status /*error*/,
                            bool* auto_recovery) override {
    if (reason == rocksdb::BackgroundErrorReason::kWriteCallback ||
        reason == rocksdb::BackgroundErrorReason::kMemTable) {
      *auto_recovery = false;
    }
  }
};

Error closed_error() { return make_error(503, "ServiceUnavailable", "storage: the database is not open (reopen failed)"); }

}  // namespace

std::string be64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) out[i] = static_cast<char>(v & 0xff);
  return out;
}

std::uint64_t read_be64(std::string_view bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | static_cast<unsigned char>(bytes[i]);
  return v;
}

std::string hist_key(std::string_view row_key, std::uint64_t seq) {
  std::string k(row_key);
  k.push_back('\0');
  k += be64(seq);
  return k;
}

std::string entity_key(std::string_view entity, std::uint64_t seq) {
  std::string k = "e";
  k.append(entity);
  k.push_back('\0');
  k += be64(seq);
  return k;
}

std::string time_key(std::int64_t time_us, std::uint64_t seq) {
  return "t" + be64(static_cast<std::uint64_t>(time_us)) + be64(seq);
}

Store::Store() : reopen_delay_(kFirstReopenDelay) {
  pthread_rwlockattr_t attr;
  pthread_rwlockattr_init(&attr);
  pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_READER_NP);
  pthread_rwlock_init(&db_lock_, &attr);
  pthread_rwlockattr_destroy(&attr);
}

Store::~Store() {
  close_db();
  pthread_rwlock_destroy(&db_lock_);
}

Store::Pin::Pin(const Store& store) : store_(store) { pthread_rwlock_rdlock(&store_.db_lock_); }
Store::Pin::~Pin() { pthread_rwlock_unlock(&store_.db_lock_); }

Result<std::unique_ptr<Store>> Store::open(const std::string& dir, OpenMode mode, StoreOptions options) {
  std::unique_ptr<Store> store(new Store());
  store->dir_ = dir;
  store->options_ = std::move(options);
  store->mode_ = mode;
  if (rocksdb::Status s = store->open_db(mode); !s.ok()) return storage_error(s, "open " + dir);
  return store;
}

rocksdb::Status Store::open_db(OpenMode mode) {
  rocksdb::Options options;
  if (options_.env) options.env = options_.env;
  options.create_if_missing = mode == OpenMode::kReadWrite;
  options.create_missing_column_families = mode == OpenMode::kReadWrite;
  options.IncreaseParallelism(2);
  options.max_total_wal_size = options_.max_wal_bytes;
  if (mode == OpenMode::kSecondary) options.max_open_files = -1;  // required by secondary instances
  if (mode == OpenMode::kReadWrite) {
    std::error_code ignored;  // DB::Open reports a directory it cannot use
    std::filesystem::create_directories(dir_, ignored);
    int fd = ::open((dir_ + "/LOG").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) options.info_log = std::make_shared<InfoLog>(fd);
    options.listeners.push_back(std::make_shared<NoRecoveryAfterWalError>());
  }

  // Index and filter blocks stay in the table readers' memory (about 1/200 of
  // the data), not in the block cache: under random as-of reads over a long
  // history, data blocks would otherwise evict them and every read would
  // reload a whole index block first.
  // XXH3 block checksums: this RocksDB build computes CRC32c in software, which
  // cost ~10% of a scan and more of a random as-of read (one per block loaded).
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options_.block_cache_bytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.checksum = rocksdb::kXXH3;
  rocksdb::ColumnFamilyOptions cf_options(options);
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  rocksdb::BlockBasedTableOptions hist_table = table;
  hist_table.whole_key_filtering = false;  // hist is only ever read by row prefix
  rocksdb::ColumnFamilyOptions hist_options = cf_options;
  hist_options.prefix_extractor = std::make_shared<HistRowPrefix>();
  // An as-of read seeks in every sorted run whose filter holds the row, and
  // leveled compaction leaves a long history in L0 + L1 + L2 (2.08x the 10 k
  // read cost at 10 M events, docs/PERFORMANCE.md). Universal compaction with
  // a 10 % size-amplification bound merges everything into one run whenever
  // the newer runs pass a tenth of the oldest, and merges the newer runs as
  // soon as there are two of them: a read meets one large run and at most two
  // small ones, and each version is rewritten ~10 times in all.
  hist_options.compaction_style = rocksdb::kCompactionStyleUniversal;
  hist_options.compaction_options_universal.max_size_amplification_percent = 10;
  hist_options.level0_file_num_compaction_trigger = 2;
  hist_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(hist_table));

  // proj holds only current rows, and every change rewrites or deletes one:
  // an L0 file is mostly versions and tombstones that later files replace.
  // Merging each flush into L1 at once keeps one sorted run of live rows
  // (L1 is the bottom level at this size, so the merge drops what it
  // replaces): a point read meets no stale L0 files, and a whole-family scan
  // (the audit's replay) no longer steps over ~5 dead entries per live row.
  rocksdb::ColumnFamilyOptions proj_options = cf_options;
  proj_options.level0_file_num_compaction_trigger = 1;

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const char* name : kCfNames) {
    const std::string_view cf = name;
    descriptors.emplace_back(name, cf == "hist" ? hist_options : cf == "proj" ? proj_options : cf_options);
  }

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  switch (mode) {
    case OpenMode::kReadWrite:
      s = rocksdb::DB::Open(options, dir_, descriptors, &handles, &raw);
      break;
    case OpenMode::kReadOnly:
      s = rocksdb::DB::OpenForReadOnly(options, dir_, descriptors, &handles, &raw);
      break;
    case OpenMode::kSecondary:
      s = rocksdb::DB::OpenAsSecondary(options, dir_, options_.secondary_dir, descriptors, &handles, &raw);
      break;
  }
  if (!s.ok()) return s;
  db_.reset(raw);
  for (std::size_t i = 0; i < handles.size(); ++i) cf_[i] = handles[i];
  return s;
}

void Store::close_db() {
  if (!db_) return;
  for (auto*& h : cf_) {
    if (h) db_->DestroyColumnFamilyHandle(h);
    h = nullptr;
  }
  // After a failed write Close() reports that error again; the WAL holds what
  // was written before it, and the next open replays that.
  db_->Close().PermitUncheckedError();
  db_.reset();
}

Status Store::write(rocksdb::WriteBatch& batch, bool sync) {
  if (mode_ != OpenMode::kReadWrite) return make_error(503, "ServiceUnavailable", "storage: store is read-only");
  if (needs_reopen_) {
    return make_error(503, "ServiceUnavailable",
                      "storage: writes are suspended after a write error until the database is reopened");
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  rocksdb::Status s = db_->Write(wo, &batch);
  if (!s.ok()) {
    needs_reopen_ = true;  // never write through this instance again (see NoRecoveryAfterWalError)
    return storage_error(s, "write");
  }
  return Ok{};
}

Status Store::reopen() {
  if (!needs_reopen_) return Ok{};
  auto now = std::chrono::steady_clock::now();
  if (now < next_reopen_) {
    return make_error(503, "ServiceUnavailable", "storage: writes are suspended after a write error; next reopen attempt not due yet");
  }
  Status s = try_reopen();
  if (s) {
    needs_reopen_ = false;
    reopen_delay_ = kFirstReopenDelay;
  } else {
    next_reopen_ = now + reopen_delay_;
    reopen_delay_ = std::min(2 * reopen_delay_, kMaxReopenDelay);
  }
  return s;
}

Status Store::try_reopen() {
  // Is there room again? Writing a small file tells without closing anything.
  rocksdb::Env* env = options_.env ? options_.env : rocksdb::Env::Default();
  const std::string probe = dir_ + "/REOPEN_PROBE";
  std::unique_ptr<rocksdb::WritableFile> file;
  rocksdb::Status s = env->NewWritableFile(probe, &file, rocksdb::EnvOptions());
  if (s.ok()) s = file->Append(std::string(kProbeBytes, '\0'));
  if (s.ok()) s = file->Sync();
  if (file) file->Close().PermitUncheckedError();
  env->DeleteFile(probe).PermitUncheckedError();
  if (!s.ok()) return storage_error(s, "write probe");

  timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  auto ns = deadline.tv_nsec + std::chrono::nanoseconds(kReaderDrainTimeout).count();
  deadline.tv_sec += ns / 1000000000;
  deadline.tv_nsec = ns % 1000000000;
  if (pthread_rwlock_timedwrlock(&db_lock_, &deadline) != 0) {
    return make_error(503, "ServiceUnavailable", "storage: reopen postponed, readers still busy");
  }
  close_db();
  Status result = Ok{};
  if (s = open_db(OpenMode::kReadWrite); !s.ok()) {
    result = storage_error(s, "reopen " + dir_);
    // Serve reads from what is on disk until a later attempt succeeds (if even
    // this fails, reads answer 503 until then).
    open_db(OpenMode::kReadOnly).PermitUncheckedError();
  }
  pthread_rwlock_unlock(&db_lock_);
  return result;
}

const rocksdb::Snapshot* Store::snapshot() const {
  Pin pin(*this);
  return mode_ == OpenMode::kSecondary || !db_ ? nullptr : db_->GetSnapshot();
}

void Store::release_snapshot(const rocksdb::Snapshot* snapshot) const {
  Pin pin(*this);
  if (snapshot) db_->ReleaseSnapshot(snapshot);
}

Status Store::catch_up() {
  if (mode_ != OpenMode::kSecondary) return Ok{};
  Pin pin(*this);
  rocksdb::Status s = db_->TryCatchUpWithPrimary();
  if (!s.ok()) return storage_error(s, "catch up with primary");
  return Ok{};
}

Result<Head> Store::head(const rocksdb::Snapshot* snapshot) const {
  Pin pin(*this);
  if (!db_) return closed_error();
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, events()));
  it->SeekToLast();
  Head h;
  h.hash = std::string(kGenesisHash);
  if (!it->Valid()) {
    if (!it->status().ok()) return storage_error(it->status(), "read head");
    return h;
  }
  auto decoded = decode_event(std::string_view(it->value().data(), it->value().size()));
  if (!decoded) {
    // Name the seq like scan_verified() does: the key says which event it is.
    std::string seq = it->key().size() == 8 ? std::to_string(read_be64(std::string_view(it->key().data(), 8))) : "?";
    return make_error(500, "CorruptEvent", "seq " + seq + ": head event: " + decoded.error().message);
  }
  h.seq = decoded->seq;
  h.time_us = decoded->time_us;
  h.hash = decoded->hash;
  return h;
}

Result<std::optional<std::string>> Store::event_bytes(std::uint64_t seq) const {
  Pin pin(*this);  // before the family handle is read
  return get(events(), be64(seq));
}

Status Store::scan_events(std::uint64_t from, const std::function<bool(std::uint64_t, std::string_view)>& fn,
                          const rocksdb::Snapshot* snapshot, Caching caching) const {
  return EventReader(*this, caching, snapshot).read(from, fn);
}

Store::EventReader::EventReader(const Store& store, Caching caching, const rocksdb::Snapshot* snapshot) : pin_(store) {
  if (!store.db_) return;
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  ro.readahead_size = 2 << 20;
  ro.fill_cache = caching == Caching::kFill;
  it_.reset(store.db_->NewIterator(ro, store.events()));
}

Store::EventReader::~EventReader() = default;

Status Store::EventReader::read(std::uint64_t from, const std::function<bool(std::uint64_t, std::string_view)>& fn) {
  if (!it_) return closed_error();
  for (it_->Seek(be64(from)); it_->Valid(); it_->Next()) {
    if (it_->key().size() != 8) return make_error(500, "CorruptEvent", "event key is not 8 bytes");
    if (!fn(read_be64(std::string_view(it_->key().data(), 8)),
            std::string_view(it_->value().data(), it_->value().size()))) {
      break;
    }
  }
  if (!it_->status().ok()) return storage_error(it_->status(), "scan events");
  return Ok{};
}

Result<std::uint64_t> Store::seq_at_time(std::int64_t time_us) const {
  Pin pin(*this);
  if (!db_) return closed_error();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), idx()));
  it->SeekForPrev(time_key(time_us, ~0ull));
  if (!it->Valid()) {
    if (!it->status().ok()) return storage_error(it->status(), "time index");
    return std::uint64_t{0};
  }
  rocksdb::Slice k = it->key();
  if (k.size() != 17 || k[0] != 't') return std::uint64_t{0};
  return read_be64(std::string_view(k.data() + 9, 8));
}

Result<std::vector<std::uint64_t>> Store::entity_events(std::string_view entity, std::uint64_t max_seq,
                                                        std::size_t limit) const {
  Pin pin(*this);
  if (!db_) return closed_error();
  std::vector<std::uint64_t> out;
  std::string prefix = "e" + std::string(entity) + '\0';
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), idx()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix) && out.size() < limit; it->Next()) {
    std::uint64_t seq = read_be64(std::string_view(it->key().data() + prefix.size(), 8));
    if (seq > max_seq) break;
    out.push_back(seq);
  }
  if (!it->status().ok()) return storage_error(it->status(), "entity index");
  return out;
}

Result<std::optional<std::string>> Store::get(rocksdb::ColumnFamilyHandle* cf, std::string_view key,
                                              const rocksdb::Snapshot* snapshot) const {
  Pin pin(*this);
  if (!db_) return closed_error();
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  std::string value;
  rocksdb::Status s = db_->Get(ro, cf, slice(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return storage_error(s, "get");
  return std::optional<std::string>(std::move(value));
}

Result<std::uint64_t> Store::recorded_head() const {
  Pin pin(*this);  // before the family handle is read
  auto v = get(meta(), kRecordedHeadKey);
  if (!v) return v.error();
  if (!*v || (*v)->size() != 8) return std::uint64_t{0};
  return read_be64(**v);
}

Status Store::clear_projections() {
  for (auto* cf : {proj(), hist(), idx()}) {
    rocksdb::WriteBatch batch;
    // Every key sorts below 0xff..., so one range covers the family.
    batch.DeleteRange(cf, rocksdb::Slice(""), rocksdb::Slice(std::string(64, '\xff')));
    if (auto s = write(batch, true); !s) return s;
  }
  return Ok{};
}

}  // namespace sl
