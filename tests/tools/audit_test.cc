#include "tools/audit.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <atomic>
#include <filesystem>
#include <sstream>
#include <thread>

#include "events/catalog.h"
#include "projections/ledger.h"

namespace sl {
namespace {

namespace fs = std::filesystem;

// A ledger with some history: accounts, an image from an instance, shares.
class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("audit_" + std::to_string(::getpid()) + "_" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    auto ledger = Ledger::open(dir_.string());
    ASSERT_TRUE(ledger.ok()) << ledger.error().message;
    ledger_ = std::move(*ledger);
    system_image_ = builtin_catalog(Limits{}.regions)[0].image_id;
    owner_ = account("1000000000000001", "cn");
    for (int i = 0; i < 5; ++i) recipients_.push_back(account("20000000000000" + std::to_string(10 + i), "cn"));
    ASSERT_TRUE(ledger_->execute(RunInstances{owner_, "cn-hangzhou", system_image_, {"i-owner0000000000000001"},
                                              {"d-owner0000000000000001"}}).ok());
    ASSERT_TRUE(ledger_->execute(CreateImage{owner_, "cn-hangzhou", "i-owner0000000000000001",
                                             "m-audit00000000000000001", "golden", true}).ok());
    auto shared = ledger_->execute(ModifyImageSharePermission{owner_, "cn-hangzhou", "m-audit00000000000000001",
                                                              recipients_, {}, std::nullopt});
    ASSERT_TRUE(shared.ok()) << shared.error().code;
  }
  void TearDown() override {
    ledger_.reset();
    fs::remove_all(dir_);
  }

  std::string account(const std::string& id, const std::string& site) {
    auto r = ledger_->execute(RegisterAccount{id, site, "LTAI" + id.substr(0, 16) + "xxxx"});
    EXPECT_TRUE(r.ok());
    return id;
  }

  // How the audit tool opens a database: beside a possibly running server.
  std::unique_ptr<audit::AuditStore> audited() {
    auto store = audit::AuditStore::open(dir_.string());
    EXPECT_TRUE(store.ok()) << store.error().message;
    return std::move(*store);
  }

  // Closes the ledger and rewrites one raw key/value in a column family.
  void tamper(const std::string& cf_name, const std::string& key, const std::optional<std::string>& value) {
    ledger_.reset();
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const char* name : {"default", "events", "proj", "hist", "idx", "secrets"}) cfs.emplace_back(name, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_.string(), cfs, &handles, &db).ok());
    rocksdb::ColumnFamilyHandle* cf = nullptr;
    for (auto* h : handles) {
      if (h->GetName() == cf_name) cf = h;
    }
    if (value) {
      ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cf, key, *value).ok());
    } else {
      ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), cf, key).ok());
    }
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    delete db;
  }

  std::string raw_event(std::uint64_t seq) {
    auto store = audited();
    return **store->store().event_bytes(seq);
  }

  fs::path dir_;
  std::unique_ptr<Ledger> ledger_;
  std::string system_image_, owner_;
  std::vector<std::string> recipients_;
};

TEST_F(AuditTest, CleanDatabaseVerifiesAndReplaysWithoutDifferences) {
  std::uint64_t head = ledger_->head().seq;
  std::string hash = ledger_->head().hash;
  ledger_.reset();
  auto audit_store = audited();
  const Store& store = audit_store->store();
  auto verified = audit::verify(store, nullptr);
  EXPECT_EQ(verified.exit_code, 0) << verified.text;
  EXPECT_EQ(verified.json["head_seq"], head);
  EXPECT_EQ(verified.json["head_hash"], hash);
  auto replayed = audit::replay_diff(store, nullptr);
  EXPECT_EQ(replayed.exit_code, 0) << replayed.text;
  EXPECT_TRUE(replayed.json["differences"].empty());
  EXPECT_GT(replayed.json["rows"].get<int>(), 50);
}

TEST_F(AuditTest, FlippedByteIsReportedAtExactlyThatSeq) {
  const std::uint64_t victim = 40;
  std::string bytes = raw_event(victim);
  // Flip a byte inside the payload (the account id of the event's data).
  std::size_t at = bytes.find("\"data\":{") + 12;
  bytes[at] ^= 0x01;
  tamper("events", be64(victim), bytes);
  auto report = audit::verify(audited()->store(), nullptr);
  EXPECT_EQ(report.exit_code, 1);
  EXPECT_EQ(report.json["bad_seq"], victim) << report.text;
}

TEST_F(AuditTest, MissingEventIsReportedAsAGap) {
  const std::uint64_t victim = 41;
  tamper("events", be64(victim), std::nullopt);
  auto report = audit::verify(audited()->store(), nullptr);
  EXPECT_EQ(report.exit_code, 1);
  EXPECT_EQ(report.json["bad_seq"], victim);
  EXPECT_NE(report.json["error"].get<std::string>().find("missing"), std::string::npos) << report.text;
}

TEST_F(AuditTest, RemovingTheLastEventIsReportedThoughTheChainStillLinks) {
  const std::uint64_t head = ledger_->head().seq;
  tamper("events", be64(head), std::nullopt);
  auto report = audit::verify(audited()->store(), nullptr);
  EXPECT_EQ(report.exit_code, 1);
  EXPECT_EQ(report.json["bad_seq"], head) << report.text;
  auto reopened = Ledger::open(dir_.string());
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.error().code, "CorruptEvent");
}

TEST_F(AuditTest, TamperedProjectionIsReportedWithItsKey) {
  const std::string key = "grant/m-audit00000000000000001/" + recipients_[2];
  tamper("proj", key, std::string("{\"forged\":true}"));
  auto report = audit::replay_diff(audited()->store(), nullptr);
  EXPECT_EQ(report.exit_code, 1);
  ASSERT_EQ(report.json["differences"].size(), 1u) << report.text;
  EXPECT_EQ(report.json["differences"][0]["key"], key);
  EXPECT_EQ(report.json["differences"][0]["projection"], "grant");
  EXPECT_EQ(report.json["differences"][0]["stored"], "{\"forged\":true}");
}

TEST_F(AuditTest, DeletedProjectionRowIsReportedAsAbsent) {
  const std::string key = "recip/m-audit00000000000000001";
  tamper("proj", key, std::nullopt);
  auto report = audit::replay_diff(audited()->store(), nullptr);
  EXPECT_EQ(report.exit_code, 1);
  ASSERT_EQ(report.json["differences"].size(), 1u);
  EXPECT_TRUE(report.json["differences"][0]["stored"].is_null());
}

TEST_F(AuditTest, ExportThenImportYieldsTheSameHeadHash) {
  std::string hash = ledger_->head().hash;
  ledger_.reset();
  std::stringstream log;
  auto exported = audit::export_log(audited()->store(), 0, log, nullptr);
  ASSERT_EQ(exported.exit_code, 0);
  fs::path copy = dir_.string() + "_copy";
  fs::remove_all(copy);
  auto imported = audit::import_log(copy.string(), log, nullptr);
  ASSERT_EQ(imported.exit_code, 0) << imported.text;
  auto store = Store::open(copy.string(), OpenMode::kReadOnly);
  ASSERT_TRUE(store.ok());
  auto verified = audit::verify(**store, nullptr);
  EXPECT_EQ(verified.exit_code, 0);
  EXPECT_EQ(verified.json["head_hash"], hash);
  EXPECT_EQ(audit::replay_diff(**store, nullptr).exit_code, 0);
  store->reset();
  fs::remove_all(copy);
}

TEST_F(AuditTest, ImportRefusesANonEmptyTargetAndABrokenChain) {
  std::stringstream empty;
  EXPECT_EQ(audit::import_log(dir_.string(), empty, nullptr).exit_code, 2);

  ledger_.reset();
  std::stringstream log;
  audit::export_log(audited()->store(), 0, log, nullptr);
  std::string text = log.str();
  // Break the link of event 7 by altering event 6's region text (hash no longer matches).
  std::size_t line6 = 0;
  for (int i = 0; i < 5; ++i) line6 = text.find('\n', line6) + 1;
  std::size_t name = text.find("\"name\":\"", line6) + 8;
  text[name] = text[name] == 'x' ? 'y' : 'x';
  std::stringstream broken(text);
  fs::path copy = dir_.string() + "_broken";
  fs::remove_all(copy);
  auto report = audit::import_log(copy.string(), broken, nullptr);
  EXPECT_EQ(report.exit_code, 1);
  EXPECT_EQ(report.json["bad_seq"], 6) << report.text;
  fs::remove_all(copy);
}

TEST_F(AuditTest, HistoryAndAsOfExplainAGrant) {
  const std::string image = "m-audit00000000000000001";
  std::uint64_t shared_at = ledger_->head().seq;
  auto unshared = ledger_->execute(ModifyImageSharePermission{owner_, "cn-hangzhou", image, {}, {recipients_[0]}, std::nullopt});
  ASSERT_TRUE(unshared.ok());
  ledger_.reset();
  auto audit_store = audited();
  const Store& store = audit_store->store();
  auto timeline = audit::history(store, image);
  ASSERT_EQ(timeline.exit_code, 0);
  std::vector<std::string> types;
  for (const auto& e : timeline.json["events"]) types.push_back(e["type"]);
  EXPECT_EQ(types, (std::vector<std::string>{"ImageCreated", "ImageShared", "ImageUnshared"}));

  auto before = audit::as_of(store, shared_at, "account", recipients_[0]);
  ASSERT_EQ(before.json["grants"].size(), 1u);
  auto after = audit::as_of(store, unshared->seq, "account", recipients_[0]);
  EXPECT_TRUE(after.json["grants"].empty());
  auto image_then = audit::as_of(store, shared_at, "image", image);
  EXPECT_EQ(image_then.json["recipients"]["direct"], 5);
}

TEST_F(AuditTest, VerifyAndReplayRunBesideALiveWriterWithoutStoppingIt) {
  std::atomic<bool> stop{false};
  std::atomic<int> acknowledged{0};
  std::thread writer([&] {
    bool on = true;
    while (!stop) {
      auto r = ledger_->execute(SetEncryptShareRole{owner_, on});
      if (r.ok()) ++acknowledged;
      on = !on;
    }
  });
  while (acknowledged < 50) std::this_thread::yield();
  for (int round = 0; round < 3; ++round) {
    auto audit_store = audited();
  const Store& store = audit_store->store();
    auto verified = audit::verify(store, nullptr);
    EXPECT_EQ(verified.exit_code, 0) << verified.text;
    auto replayed = audit::replay_diff(store, nullptr);
    EXPECT_EQ(replayed.exit_code, 0) << replayed.text;
  }
  int before = acknowledged;
  while (acknowledged < before + 50) std::this_thread::yield();  // the writer kept acknowledging
  stop = true;
  writer.join();
}

}  // namespace
}  // namespace sl
