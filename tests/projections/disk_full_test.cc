// Disk full / IO errors: writes fail with a 5xx JSON-able error, reads keep
// working, nothing partial becomes visible, and writes resume once space is
// back. RocksDB 7.8 refuses to Resume() after a failed WAL append, so "resume"
// here means reopening the ledger on the same directory (a server restart);
// nothing acknowledged is lost and no seq is burnt by the failed attempts.
#include <gtest/gtest.h>
#include <rocksdb/env.h>

#include <atomic>
#include <filesystem>

#include "events/catalog.h"
#include "projections/ledger.h"
#include "projections/queries.h"
#include "projections/replay.h"
#include "projections/rows.h"

namespace sl {
namespace {

namespace fs = std::filesystem;

// Every file write and sync fails with "No space" while `full` is set.
class FullDiskEnv : public rocksdb::EnvWrapper {
 public:
  explicit FullDiskEnv(rocksdb::Env* base) : rocksdb::EnvWrapper(base) {}
  std::atomic<bool> full{false};

  rocksdb::Status NewWritableFile(const std::string& name, std::unique_ptr<rocksdb::WritableFile>* result,
                                  const rocksdb::EnvOptions& options) override {
    if (full) return rocksdb::Status::NoSpace("test: disk full");
    auto s = target()->NewWritableFile(name, result, options);
    if (s.ok()) *result = std::make_unique<File>(std::move(*result), full);
    return s;
  }

 private:
  class File : public rocksdb::WritableFileWrapper {
   public:
    File(std::unique_ptr<rocksdb::WritableFile> base, std::atomic<bool>& full)
        : rocksdb::WritableFileWrapper(base.get()), base_(std::move(base)), full_(full) {}
    rocksdb::Status Append(const rocksdb::Slice& data) override {
      return full_ ? rocksdb::Status::NoSpace("test: disk full") : base_->Append(data);
    }
    rocksdb::Status Append(const rocksdb::Slice& data, const rocksdb::DataVerificationInfo& info) override {
      return full_ ? rocksdb::Status::NoSpace("test: disk full") : base_->Append(data, info);
    }
    rocksdb::Status Sync() override { return full_ ? rocksdb::Status::NoSpace("test: disk full") : base_->Sync(); }
    rocksdb::Status Fsync() override { return full_ ? rocksdb::Status::NoSpace("test: disk full") : base_->Fsync(); }

   private:
    std::unique_ptr<rocksdb::WritableFile> base_;
    std::atomic<bool>& full_;
  };
};

TEST(DiskFull, WritesFailCleanlyReadsWorkAndWritesResumeAfterReopenWhenSpaceReturns) {
  fs::path dir = fs::path(::testing::TempDir()) / ("disk_full_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  FullDiskEnv env(rocksdb::Env::Default());
  LedgerOptions options;
  options.env = &env;
  auto opened = Ledger::open(dir.string(), options);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto& ledger = *opened;
  const std::string owner = "1000000000000001", recipient = "1000000000000002";
  const std::string system_image = builtin_catalog(Limits{}.regions)[0].image_id;
  ASSERT_TRUE(ledger->execute(RegisterAccount{owner, "cn", "LTAIowner000000000000001"}).ok());
  ASSERT_TRUE(ledger->execute(RegisterAccount{recipient, "cn", "LTAIrecipient00000000001"}).ok());
  ASSERT_TRUE(ledger->execute(RunInstances{owner, "cn-hangzhou", system_image, {"i-a0000000000000000001"},
                                           {"d-a0000000000000000001"}}).ok());
  ASSERT_TRUE(ledger->execute(CreateImage{owner, "cn-hangzhou", "i-a0000000000000000001", "m-full0000000000000001",
                                          "golden", true}).ok());
  Head before = ledger->head();

  env.full = true;
  auto failed = ledger->execute(ModifyImageSharePermission{owner, "cn-hangzhou", "m-full0000000000000001",
                                                           {recipient}, {}, std::nullopt});
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().http, 503);
  EXPECT_EQ(failed.error().code, "ServiceUnavailable");
  // Nothing of the failed write is visible, and reads still answer.
  EXPECT_EQ(ledger->head().seq, before.seq);
  {
    auto view = ledger->view();
    ASSERT_TRUE(view.ok());
    auto check = check_access(**view, recipient, "m-full0000000000000001", Viewer{true, ""});
    ASSERT_TRUE(check.ok());
    EXPECT_FALSE((*check)["allowed"].get<bool>());
  }  // views end before the ledger does
  // Still full: still failing, still nothing half-applied.
  EXPECT_FALSE(ledger->execute(SetEncryptShareRole{owner, true}).ok());
  EXPECT_EQ(ledger->head().seq, before.seq);

  env.full = false;  // space is back
  ledger.reset();
  auto reopened = Ledger::open(dir.string(), options);
  ASSERT_TRUE(reopened.ok()) << reopened.error().message;
  ledger = std::move(*reopened);
  EXPECT_EQ(ledger->head().seq, before.seq);
  EXPECT_EQ(ledger->head().hash, before.hash);
  auto shared = ledger->execute(ModifyImageSharePermission{owner, "cn-hangzhou", "m-full0000000000000001",
                                                           {recipient}, {}, std::nullopt});
  ASSERT_TRUE(shared.ok()) << shared.error().message;
  EXPECT_EQ(shared->seq, before.seq + 1);  // the failed attempts used no seq
  auto after = ledger->view();
  auto granted = check_access(**after, recipient, "m-full0000000000000001", Viewer{true, ""});
  EXPECT_TRUE((*granted)["allowed"].get<bool>());

  // And the log and the projections agree with a replay.
  auto state = replay(ledger->store(), ScanOptions{});
  ASSERT_TRUE(state.ok()) << state.error().message;
  std::map<std::string, std::string> stored;
  (*after)->scan("", [&](std::string_view k, std::string_view v) {
    stored.emplace(std::string(k), std::string(v));
    return true;
  });
  EXPECT_EQ(stored, all_rows(*state));
  after->reset();  // views end before the ledger does
  ledger.reset();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace sl
