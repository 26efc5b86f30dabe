// StoreOptions reach RocksDB: the block cache is the size asked for
// (`shareledger serve --block-cache-mb`), 1 GiB by default; a whole-log scan
// can leave that cache alone; the WAL stays under its cap; the hist family
// stays in few sorted runs, and proj in one.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>
#include <rocksdb/perf_context.h>
#include <rocksdb/write_batch.h>

#include "events/codec.h"
#include "storage/store.h"

namespace sl {
namespace {

std::uint64_t BlockCacheCapacity(const StoreOptions& options) {
  const std::string dir = testing::TempDir() + "shareledger_store_options_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  std::uint64_t capacity = 0;
  {
    auto store = Store::open(dir, OpenMode::kReadWrite, options);
    EXPECT_TRUE(store) << (store ? "" : store.error().message);
    if (store) {
      EXPECT_TRUE((*store)->db()->GetIntProperty(rocksdb::DB::Properties::kBlockCacheCapacity, &capacity));
    }
  }
  std::filesystem::remove_all(dir);
  return capacity;
}

TEST(StoreOptionsTest, TheBlockCacheHasTheSizeAskedFor) {
  EXPECT_EQ(BlockCacheCapacity(StoreOptions{}), std::uint64_t{1} << 30);
  StoreOptions small;
  small.block_cache_bytes = 64 << 20;
  EXPECT_EQ(BlockCacheCapacity(small), std::uint64_t{64} << 20);
}

// A scan with Caching::kBypass (the log reader's: verify, replay, export)
// leaves the block cache as it was; kFill (the default) fills it.
TEST(StoreOptionsTest, ABypassingScanLeavesTheBlockCacheAlone) {
  const std::string dir = testing::TempDir() + "shareledger_store_caching_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  {
    auto store = Store::open(dir, OpenMode::kReadWrite, StoreOptions{});
    ASSERT_TRUE(store) << store.error().message;
    rocksdb::WriteBatch batch;
    for (std::uint64_t seq = 1; seq <= 20000; ++seq) {
      ASSERT_TRUE(batch.Put((*store)->events(), be64(seq), std::string(200, 'a' + seq % 26)).ok());
    }
    ASSERT_TRUE((*store)->write(batch, true));
    ASSERT_TRUE((*store)->db()->Flush(rocksdb::FlushOptions(), (*store)->events()).ok());
  }
  auto store = Store::open(dir, OpenMode::kReadWrite, StoreOptions{});
  ASSERT_TRUE(store) << store.error().message;
  auto cached = [&] {
    std::uint64_t usage = 0;
    EXPECT_TRUE((*store)->db()->GetIntProperty(rocksdb::DB::Properties::kBlockCacheUsage, &usage));
    return usage;
  };
  auto scan = [&](Store::Caching caching) {
    std::uint64_t seen = 0;
    auto s = (*store)->scan_events(
        1,
        [&](std::uint64_t, std::string_view) {
          ++seen;
          return true;
        },
        nullptr, caching);
    EXPECT_TRUE(s);
    EXPECT_EQ(seen, 20000u);
  };
  const std::uint64_t before = cached();
  scan(Store::Caching::kBypass);
  EXPECT_LT(cached(), before + (64 << 10)) << "the bypassing scan kept blocks";
  scan(Store::Caching::kFill);
  EXPECT_GT(cached(), before + (1 << 20)) << "the filling scan kept none (4 MB of events read)";
  store->reset();
  std::filesystem::remove_all(dir);
}

// Commits as the group committer makes them: events plus the recorded head in
// `meta`, whose memtable never fills. Past max_wal_bytes the families holding
// the oldest WAL are flushed and it is deleted; without the cap every WAL file
// written so far stays (what a long-running server's directory showed).
TEST(StoreOptionsTest, TheWalStaysUnderItsCap) {
  const std::string dir = testing::TempDir() + "shareledger_store_wal_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  StoreOptions options;
  options.max_wal_bytes = 1 << 20;
  auto wal_bytes = [&] {
    std::uint64_t total = 0;
    for (const auto& f : std::filesystem::directory_iterator(dir)) {
      if (f.path().extension() == ".log") total += f.file_size();
    }
    return total;
  };
  {
    auto store = Store::open(dir, OpenMode::kReadWrite, options);
    ASSERT_TRUE(store) << store.error().message;
    std::uint64_t seq = 0;
    for (int commit = 0; commit < 256; ++commit) {  // 256 x 32 KiB = 8 MiB
      rocksdb::WriteBatch batch;
      for (int i = 0; i < 32; ++i) ASSERT_TRUE(batch.Put((*store)->events(), be64(++seq), std::string(1024, 'e')).ok());
      ASSERT_TRUE(batch.Put((*store)->meta(), "recorded_head", be64(seq)).ok());
      ASSERT_TRUE((*store)->write(batch, true));
    }
    // The flushes run in the background, and RocksDB checks the cap only when
    // a write comes: on a loaded machine a slow flush lets the current WAL grow
    // past it (a switch waits for the flush before). So keep committing a
    // little, as a server does, and wait (without the cap nothing shrinks).
    std::uint64_t wal = wal_bytes();
    for (int waited = 0; wal >= (std::uint64_t{3} << 20) && waited < 200; ++waited) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      rocksdb::WriteBatch head;
      ASSERT_TRUE(head.Put((*store)->meta(), "recorded_head", be64(seq)).ok());
      ASSERT_TRUE((*store)->write(head, true));
      wal = wal_bytes();
    }
    EXPECT_LT(wal, std::uint64_t{3} << 20) << "8 MiB committed; the WAL should shrink back near its 1 MiB cap";
  }
  std::filesystem::remove_all(dir);
}

// A family's sorted runs, newest first: each L0 file, then each non-empty
// level. A read seeks once in each run (whose filter holds its key).
std::vector<std::uint64_t> SortedRuns(const Store& store, rocksdb::ColumnFamilyHandle* cf) {
  rocksdb::ColumnFamilyMetaData meta;
  store.db()->GetColumnFamilyMetaData(cf, &meta);
  std::vector<std::uint64_t> runs;
  for (const auto& level : meta.levels) {
    if (level.level == 0) {
      for (const auto& file : level.files) runs.push_back(file.size);
    } else if (level.size > 0) {
      runs.push_back(level.size);
    }
  }
  return runs;
}

// Waits until no flush or compaction has run for 100 ms with `cf` in at most
// `max_runs` runs, or 10 s. A compaction starts a moment after the flush that calls
// for it, later on a loaded machine: quiet alone could be seen before it starts.
// (Universal compaction's "compaction-pending" stays 1 with two runs it will
// not merge, so it cannot tell.) Returns the runs then.
std::vector<std::uint64_t> SettledRuns(const Store& store, rocksdb::ColumnFamilyHandle* cf, std::size_t max_runs) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (int quiet = 0; std::chrono::steady_clock::now() < deadline;) {
    std::uint64_t compactions = 0, flushes = 0;
    store.db()->GetIntProperty("rocksdb.num-running-compactions", &compactions);
    store.db()->GetIntProperty("rocksdb.num-running-flushes", &flushes);
    quiet = compactions + flushes == 0 && SortedRuns(store, cf).size() <= max_runs ? quiet + 1 : 0;
    if (quiet == 5) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return SortedRuns(store, cf);
}

// However the history grows, hist stays one large sorted run plus at most one
// smaller one, and everything is merged into one run once the newer data passes
// a tenth of it. Leveled compaction (RocksDB's default) keeps up to 4 L0 files
// above its levels; without the size bound the newer runs would never be merged
// into the oldest.
TEST(StoreOptionsTest, HistKeepsOneLargeSortedRunAndAtMostOneSmallOne) {
  const std::string dir = testing::TempDir() + "shareledger_store_hist_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  auto store = Store::open(dir, OpenMode::kReadWrite, StoreOptions{});
  ASSERT_TRUE(store) << store.error().message;
  // Small levels, so that leveled compaction would spread this 3 MB history
  // over several levels as it does a long one (universal ignores the setting).
  ASSERT_TRUE((*store)->db()->SetOptions((*store)->hist(), {{"max_bytes_for_level_base", "262144"},
                                                           {"target_file_size_base", "65536"}}).ok());
  std::uint64_t seq = 0;
  auto append_and_flush = [&](int versions) {
    rocksdb::WriteBatch batch;
    for (int i = 0; i < versions; ++i, ++seq) {
      const std::string row = "grant/img-" + std::to_string(seq * 7919 % 5000) + "/" + std::to_string(seq % 50);
      ASSERT_TRUE(batch.Put((*store)->hist(), hist_key(row, seq), "P" + sha256_hex(be64(seq))).ok());
    }
    ASSERT_TRUE((*store)->write(batch, false));
    ASSERT_TRUE((*store)->db()->Flush(rocksdb::FlushOptions(), (*store)->hist()).ok());
  };
  append_and_flush(40000);
  const std::vector<std::uint64_t> base = SettledRuns(**store, (*store)->hist(), 2);
  ASSERT_EQ(base.size(), 1u);
  const std::uint64_t first = base.back();
  bool merged = false;
  for (int flush = 1; flush <= 12; ++flush) {  // 12 x 2.5 % of the first run
    append_and_flush(1000);
    const std::vector<std::uint64_t> runs = SettledRuns(**store, (*store)->hist(), 2);
    EXPECT_LE(runs.size(), 2u) << "after small flush " << flush;
    merged = merged || (runs.size() == 1 && runs.back() > first);
  }
  EXPECT_TRUE(merged) << "30 % more history and never merged into the oldest run";
  store->reset();
  std::filesystem::remove_all(dir);
}

// proj keeps current rows only: after flushes full of rewritten and deleted
// rows it is one sorted run of live rows, with none of the replaced versions
// or tombstones left for a scan (the audit's replay) to step over. RocksDB's
// default leaves up to 3 L0 files unmerged, each mostly dead entries.
TEST(StoreOptionsTest, ProjMergesEachFlushIntoOneRunOfLiveRows) {
  const std::string dir = testing::TempDir() + "shareledger_store_proj_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  auto store = Store::open(dir, OpenMode::kReadWrite, StoreOptions{});
  ASSERT_TRUE(store) << store.error().message;
  constexpr int kRows = 2000;
  for (int flush = 0; flush < 3; ++flush) {  // every row rewritten, every third then deleted
    rocksdb::WriteBatch batch;
    for (int i = 0; i < kRows; ++i) {
      const std::string row = "grant/img-" + std::to_string(i);
      ASSERT_TRUE(batch.Put((*store)->proj(), row, "version " + std::to_string(flush)).ok());
      if (i % 3 == flush) {
        ASSERT_TRUE(batch.Delete((*store)->proj(), row).ok());
      }
    }
    ASSERT_TRUE((*store)->write(batch, false));
    ASSERT_TRUE((*store)->db()->Flush(rocksdb::FlushOptions(), (*store)->proj()).ok());
  }
  EXPECT_EQ(SettledRuns(**store, (*store)->proj(), 1).size(), 1u);

  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableCount);
  rocksdb::get_perf_context()->Reset();
  std::unique_ptr<rocksdb::Iterator> it((*store)->db()->NewIterator(rocksdb::ReadOptions(), (*store)->proj()));
  int live = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++live;
  const std::uint64_t tombstones = rocksdb::get_perf_context()->internal_delete_skipped_count;
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
  int expected = 0;  // all but the rows deleted by the last flush
  for (int i = 0; i < kRows; ++i) expected += i % 3 != 2;
  EXPECT_EQ(live, expected);
  EXPECT_EQ(tombstones, 0u) << "the scan stepped over deleted rows";
  it.reset();
  store->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sl
