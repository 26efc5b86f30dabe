// Disk full / IO errors: writes fail with a 5xx JSON-able error, reads keep
// working, nothing partial becomes visible, and writes resume once space is
// back: on the same Ledger (it reopens its database in place), or after a
// restart. Nothing acknowledged is lost and no seq is burnt by the failed
// attempts.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <thread>

#include "events/catalog.h"
#include "projections/full_disk_env.h"
#include "events/codec.h"
#include "projections/ledger.h"
#include "projections/queries.h"
#include "projections/replay.h"
#include "projections/rows.h"
#include "projections/support.h"

namespace sl {
namespace {

namespace fs = std::filesystem;

const std::string kOwner = "1000000000000001", kRecipient = "1000000000000002";
const std::string kImage = "m-full0000000000000001";

bool expect_unavailable(const Result<Commit>& r) {
  EXPECT_FALSE(r.ok());
  if (r.ok()) return false;
  EXPECT_EQ(r.error().http, 503) << r.error().message;
  EXPECT_EQ(r.error().code, "ServiceUnavailable") << r.error().message;
  return true;
}

Command share() { return ModifyImageSharePermission{kOwner, "cn-hangzhou", kImage, {kRecipient}, {}, std::nullopt}; }

// Whether kRecipient may use kImage in `view`; nullopt (and a test failure) on an error.
std::optional<bool> recipient_allowed(const RowView& view) {
  auto check = check_access(view, kRecipient, kImage, Viewer{true, ""});
  EXPECT_TRUE(check.ok()) << check.error().message;
  if (!check.ok()) return std::nullopt;
  return (*check)["allowed"].get<bool>();
}

// A ledger on FullDiskEnv with an owner, a recipient and kImage (not shared yet).
class DiskFull : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("disk_full_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    options_.store.env = &env_;
    open();
    const std::string system_image = builtin_catalog(Limits{}.regions)[0].image_id;
    ASSERT_TRUE(ledger_->execute(RegisterAccount{kOwner, "cn", "LTAIowner000000000000001"}).ok());
    ASSERT_TRUE(ledger_->execute(RegisterAccount{kRecipient, "cn", "LTAIrecipient00000000001"}).ok());
    ASSERT_TRUE(ledger_->execute(RunInstances{kOwner, "cn-hangzhou", system_image, {"i-a0000000000000000001"},
                                              {"d-a0000000000000000001"}}).ok());
    ASSERT_TRUE(
        ledger_->execute(CreateImage{kOwner, "cn-hangzhou", "i-a0000000000000000001", kImage, "golden", true}).ok());
  }
  void TearDown() override {
    ledger_.reset();
    fs::remove_all(dir_);
  }

  void open() {
    auto opened = Ledger::open(dir_.string(), options_);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    ledger_ = std::move(*opened);
  }

  // Fills the disk, checks that writes fail cleanly and reads still answer, and
  // returns the head from before.
  Head fail_writes_while_full() {
    Head before = ledger_->head();
    env_.full = true;
    expect_unavailable(ledger_->execute(share()));
    // Nothing of the failed write is visible, and reads still answer.
    EXPECT_EQ(ledger_->head().seq, before.seq);
    EXPECT_EQ(ledger_->store().head()->seq, before.seq);
    EXPECT_EQ(recipient_allowed(**ledger_->view()), false);
    EXPECT_EQ(recipient_allowed(**ledger_->view(before.seq)), false);
    // Still full: still failing, still nothing half-applied.
    expect_unavailable(ledger_->execute(SetEncryptShareRole{kOwner, true}));
    EXPECT_EQ(ledger_->head().seq, before.seq);
    EXPECT_EQ(ledger_->store().head()->seq, before.seq);
    return before;
  }

  // Retries the share until it is acknowledged; every refusal must be a 503.
  Result<Commit> share_until_accepted(std::chrono::seconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      auto r = ledger_->execute(share());
      if (r.ok() || std::chrono::steady_clock::now() > deadline) return r;
      if (!expect_unavailable(r)) return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  // The log verifies (dense seqs, hashes, links), ends at the head, and the
  // stored rows equal a replay.
  void expect_consistent() {
    std::uint64_t expected = 1;
    auto verified = scan_verified(ledger_->store(), ScanOptions{}, [&](const Event& e, std::string_view) {
      EXPECT_EQ(e.seq, expected++);
      return true;
    });
    ASSERT_TRUE(verified.ok()) << verified.error().message;
    EXPECT_EQ(expected - 1, ledger_->head().seq);
    EXPECT_EQ(*ledger_->store().recorded_head(), ledger_->head().seq);
    auto state = replay(ledger_->store(), ScanOptions{});
    ASSERT_TRUE(state.ok()) << state.error().message;
    EXPECT_EQ(test::view_rows(**ledger_->view()), all_rows(*state));
  }

  fs::path dir_;
  testing::FullDiskEnv env_{rocksdb::Env::Default()};
  LedgerOptions options_;
  std::unique_ptr<Ledger> ledger_;
};

TEST_F(DiskFull, WritesFailCleanlyAndResumeAfterARestartOnceSpaceReturns) {
  Head before = fail_writes_while_full();
  env_.full = false;  // space is back
  ledger_.reset();
  open();
  EXPECT_EQ(ledger_->head().seq, before.seq);
  EXPECT_EQ(ledger_->head().hash, before.hash);
  auto shared = ledger_->execute(share());
  ASSERT_TRUE(shared.ok()) << shared.error().message;
  EXPECT_EQ(shared->seq, before.seq + 1);  // the failed attempts used no seq
  EXPECT_EQ(recipient_allowed(**ledger_->view()), true);
  expect_consistent();
}

TEST_F(DiskFull, WritesResumeOnTheSameLedgerOnceSpaceReturns) {
  Head before = fail_writes_while_full();
  env_.full = false;  // space is back: no restart, just keep writing
  auto t0 = std::chrono::steady_clock::now();
  auto shared = share_until_accepted(std::chrono::seconds(10));
  auto recovered_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(shared.ok()) << shared.error().message;
  std::cout << "disk_full: writes back " << recovered_ms << " ms after space returned\n";
  EXPECT_EQ(shared->seq, before.seq + 1);  // the failed attempts used no seq
  EXPECT_EQ(shared->events.front().prev_hash, before.hash);
  EXPECT_EQ(recipient_allowed(**ledger_->view()), true);
  EXPECT_EQ(recipient_allowed(**ledger_->view(before.seq)), false);
  auto role = ledger_->execute(SetEncryptShareRole{kOwner, true});
  ASSERT_TRUE(role.ok()) << role.error().message;
  EXPECT_EQ(role->seq, before.seq + 2);
  expect_consistent();

  // And it survives a restart, and a second disk-full episode on the same ledger.
  ledger_.reset();
  open();
  EXPECT_EQ(ledger_->head().seq, before.seq + 2);
  Head second = ledger_->head();
  env_.full = true;
  expect_unavailable(ledger_->execute(SetEncryptShareRole{kOwner, false}));
  env_.full = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  Result<Commit> r = make_error(503, "ServiceUnavailable", "not tried");
  while (!r.ok() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    r = ledger_->execute(SetEncryptShareRole{kOwner, false});
  }
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->seq, second.seq + 1);
  expect_consistent();
}

// A reader runs throughout: during the failure, across the reopen and after.
// It must never see an error, a head going backwards, or an as-of view or
// stored event that disagrees with the head it read.
TEST_F(DiskFull, ReadersKeepAnsweringWhileTheLedgerReopens) {
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> reads{0}, errors{0};
  std::thread reader([&] {
    std::uint64_t last = 0;
    while (!stop) {
      Head h = ledger_->head();
      if (h.seq < last) errors++;
      last = h.seq;
      auto now = ledger_->view();
      auto then = ledger_->view(h.seq);
      auto bytes = ledger_->store().event_bytes(h.seq);
      if (!now.ok() || !then.ok() || !bytes.ok() || !*bytes) {
        errors++;
        continue;
      }
      // The as-of view at this head and the event stored there agree with it.
      auto e = decode_event(**bytes);
      if (!e.ok() || e->hash != h.hash || (*then)->seq() != h.seq || (*now)->seq() < h.seq) errors++;
      if (!recipient_allowed(**now) || !recipient_allowed(**then)) errors++;
      reads++;
    }
  });
  Head before = fail_writes_while_full();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // reads while full
  std::uint64_t reads_while_full = reads;
  env_.full = false;
  auto shared = share_until_accepted(std::chrono::seconds(10));
  for (int i = 0; shared.ok() && i < 20; ++i) {
    auto r = ledger_->execute(SetEncryptShareRole{kOwner, i % 2 == 0});
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // reads after
  stop = true;
  reader.join();
  ASSERT_TRUE(shared.ok()) << shared.error().message;
  EXPECT_EQ(shared->seq, before.seq + 1);
  EXPECT_EQ(errors, 0u);
  EXPECT_GT(reads_while_full, 0u);
  EXPECT_GT(reads, reads_while_full);
  expect_consistent();
}

}  // namespace
}  // namespace sl
