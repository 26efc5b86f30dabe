// Ledger: the write path end to end on a real RocksDB directory.
//
// Each test opens a Ledger on a fresh directory under testing::TempDir() and
// removes it afterwards. Rows are compared byte for byte: the proj family
// against all_rows(replay(...)), as-of views against a replay to that seq.
#include "projections/ledger.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "events/catalog.h"
#include "events/codec.h"
#include "projections/queries.h"
#include "projections/replay.h"
#include "projections/rows.h"
#include "projections/support.h"

namespace sl {
namespace {

using test::describe;
using test::fresh_dir;
using test::MapRows;
using test::scan_family;
using test::view_rows;

// Ids in the SPEC §1.1 forms, from a fixed-seed generator.
class Ids {
 public:
  std::string account() { return std::string(1, "123456789"[rng_() % 9]) + chars("0123456789", 15); }
  std::string access_key() { return "LTAI" + chars(kAlnum, 20); }
  std::string image() { return "m-" + chars(kLower, 20); }
  std::string instance() { return "i-" + chars(kLower, 20); }
  std::string disk() { return "d-" + chars(kLower, 20); }
  std::string directory() { return "rd-" + chars(kLower, 10); }
  std::string root() { return "r-" + chars(kLower, 6); }
  std::string folder() { return "fd-" + chars(kLower, 10); }
  std::string handshake() { return "h-" + chars(kLower, 16); }
  std::string share() { return "rs-" + chars(kLower, 10); }

 private:
  static constexpr const char* kLower = "0123456789abcdefghijklmnopqrstuvwxyz";
  static constexpr const char* kAlnum = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  std::string chars(std::string_view alphabet, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += alphabet[rng_() % alphabet.size()];
    return s;
  }
  std::mt19937_64 rng_{42};
};

constexpr const char* kRegion = "cn-hangzhou";

std::string system_image(const std::string& region) {
  for (const auto& seed : builtin_catalog(Limits{}.regions)) {
    if (seed.region == region && seed.kind == "system") return seed.image_id;
  }
  return "";
}

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fresh_dir("ledger");
    reopen();
  }
  void TearDown() override {
    ledger_.reset();
    std::filesystem::remove_all(dir_);
  }

  void reopen(LedgerOptions options = {}) {
    ledger_.reset();
    auto opened = Ledger::open(dir_, std::move(options));
    ASSERT_TRUE(opened.ok()) << describe(opened.error());
    ledger_ = std::move(*opened);
  }

  Commit ok(Command command) {
    auto r = ledger_->execute(std::move(command));
    EXPECT_TRUE(r.ok()) << describe(r.error());
    return r.ok() ? std::move(*r) : Commit{};
  }
  // Presence rows (own/, iimg/, agrant/ ...) may hold an empty value.
  bool present(const std::string& key) {
    auto view = ledger_->view();
    return view.ok() && (*view)->get(key).has_value();
  }
  Error fails(Command command) {
    auto r = ledger_->execute(std::move(command));
    EXPECT_FALSE(r.ok());
    return r.ok() ? Error{} : r.error();
  }

  std::string account(const std::string& site = "cn") {
    std::string id = ids_.account();
    ok(RegisterAccount{id, site, ids_.access_key()});
    return id;
  }
  std::string instance(const std::string& owner, const std::string& image, const std::string& region = kRegion) {
    std::string id = ids_.instance();
    ok(RunInstances{owner, region, image, {id}, {ids_.disk()}});
    return id;
  }
  std::string image_from(const std::string& owner, const std::string& instance_id,
                         const std::string& region = kRegion) {
    std::string id = ids_.image();
    ok(CreateImage{owner, region, instance_id, id, "img"});
    return id;
  }
  // owner's fresh custom image (via a system-image instance).
  std::string custom_image(const std::string& owner) {
    return image_from(owner, instance(owner, system_image(kRegion)));
  }
  Commit share(const std::string& owner, const std::string& image, std::vector<std::string> add,
               std::vector<std::string> remove = {}, std::optional<bool> is_public = std::nullopt) {
    return ok(ModifyImageSharePermission{owner, kRegion, image, std::move(add), std::move(remove), is_public});
  }

  std::optional<Json> row(const std::string& key, std::optional<std::uint64_t> as_of = std::nullopt) {
    auto view = ledger_->view(as_of);
    EXPECT_TRUE(view.ok());
    if (!view.ok()) return std::nullopt;
    return row_json(**view, key);
  }

  // A history touching every row family: shares, publicity, unshare, forced
  // delete, organization grants that come and go.
  void build_history() {
    std::string a = account("cn"), b = account("cn"), c = account("intl"), d = account("cn");
    ok(SetEncryptShareRole{a, true});
    std::string x = custom_image(a);
    share(a, x, {b, c});
    std::string on_x = instance(b, x);
    share(a, x, {}, {}, true);
    share(a, x, {}, {c}, false);
    share(a, x, {}, {b});  // blocks b's instance
    share(a, x, {b});      // unblocks it
    share(a, x, {}, {b});
    ok(DeleteImage{a, kRegion, x, true});
    std::string new_disk = ids_.disk();
    ok(ReplaceSystemDisk{b, on_x, system_image(kRegion), new_disk});  // unblocks it

    std::string y = custom_image(a);
    std::string dir = ids_.directory(), root = ids_.root(), folder = ids_.folder(), hs = ids_.handshake();
    ok(EnableResourceDirectory{a, dir, root});
    ok(CreateFolder{a, root, folder, "team"});
    ok(InviteAccount{a, d, hs});
    ok(AcceptHandshake{d, hs});
    ok(MoveAccount{a, d, folder});
    ok(EnableSharingWithDirectory{a});
    std::string rs = ids_.share();
    ok(CreateResourceShare{a, rs, "to team", {y}, {folder}, false});
    std::string on_y = instance(d, y);
    ok(RemoveAccount{a, d});  // d loses the grant: its instance is blocked
    ok(ReInitDisk{b, new_disk});
    ok(DeleteInstance{b, on_x});
    (void)on_y;
  }

  std::string dir_;
  std::unique_ptr<Ledger> ledger_;
  Ids ids_;
};

TEST_F(LedgerTest, EveryResponseSeqIsTheLastEventSeqAndSeqsAreDense) {
  std::uint64_t head = ledger_->head().seq;
  ASSERT_GT(head, 0u) << "the catalog is seeded at the first open";
  std::string a = account(), b = account();
  std::string x = custom_image(a);
  head = ledger_->head().seq;
  std::vector<Command> commands = {
      RegisterAccount{ids_.account(), "intl", ids_.access_key()},
      ModifyImageSharePermission{a, kRegion, x, {b}, {}, true},  // two events
      RunInstances{b, kRegion, x, {ids_.instance(), ids_.instance(), ids_.instance()},
                   {ids_.disk(), ids_.disk(), ids_.disk()}},
      ModifyImageSharePermission{a, kRegion, x, {}, {b}, false},
  };
  for (auto& command : commands) {
    Commit c = ok(std::move(command));
    ASSERT_FALSE(c.events.empty());
    for (std::size_t i = 0; i < c.events.size(); ++i) EXPECT_EQ(c.events[i].seq, head + 1 + i);
    EXPECT_EQ(c.seq, c.events.back().seq);
    EXPECT_EQ(ledger_->head().seq, c.seq);
    EXPECT_EQ(ledger_->head().hash, c.events.back().hash);
    head = c.seq;
  }
  auto stored = ledger_->store().head();
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->seq, head);
}

TEST_F(LedgerTest, ARejectedCommandAppendsNothing) {
  std::string a = account(), b = account();
  std::string x = custom_image(a);
  Head before = ledger_->head();
  Error e = fails(ModifyImageSharePermission{b, kRegion, x, {a}, {}, std::nullopt});  // not the owner
  EXPECT_EQ(e.http, 404);
  EXPECT_EQ(e.code, "InvalidImageId.NotFound");
  // Atomic: a valid add next to an unknown account adds nothing.
  e = fails(ModifyImageSharePermission{a, kRegion, x, {b, "9999999999999999"}, {}, true});
  EXPECT_EQ(e.code, "InvalidAccount.NotFound");
  EXPECT_EQ(ledger_->head().seq, before.seq);
  EXPECT_EQ(ledger_->head().hash, before.hash);
  EXPECT_EQ(ledger_->store().head()->seq, before.seq);
  EXPECT_FALSE(row("grant/" + x + "/" + b));
  EXPECT_EQ(row("img/" + x)->at("is_public"), false);
}

TEST_F(LedgerTest, ANoOpReturnsTheHeadAndAppendsNothing) {
  std::string a = account(), b = account();
  std::string x = custom_image(a);
  share(a, x, {b});
  Head before = ledger_->head();
  for (Command command : std::vector<Command>{
           ModifyImageSharePermission{a, kRegion, x, {b}, {}, false},  // already shared, already private
           SetEncryptShareRole{a, false},                              // never authorized
           MarkImageAvailable{x},                                      // already available
       }) {
    Commit c = ok(std::move(command));
    EXPECT_TRUE(c.events.empty());
    EXPECT_EQ(c.seq, before.seq);
  }
  EXPECT_EQ(ledger_->head().seq, before.seq);
  EXPECT_EQ(ledger_->store().head()->seq, before.seq);
}

TEST_F(LedgerTest, RowsAreVisibleAsSoonAsExecuteReturns) {
  std::string a = account(), b = account();
  std::string x = custom_image(a);
  share(a, x, {b});
  auto grant = row("grant/" + x + "/" + b);
  ASSERT_TRUE(grant);
  EXPECT_TRUE((*grant)["sources"].contains("account"));
  EXPECT_TRUE(present("agrant/" + b + "/" + x));
  EXPECT_EQ(row("recip/" + x)->at("direct"), 1);

  std::string on_x = instance(b, x);
  auto inst = row("inst/" + on_x);
  ASSERT_TRUE(inst);
  EXPECT_EQ((*inst)["image_id"], x);
  EXPECT_EQ((*inst)["reinit_blocked"], false);
  EXPECT_TRUE(present("iimg/" + x + "/" + on_x));

  Commit unshared = share(a, x, {}, {b});
  EXPECT_FALSE(row("grant/" + x + "/" + b));
  EXPECT_EQ(row("recip/" + x)->at("direct"), 0);
  inst = row("inst/" + on_x);
  EXPECT_EQ((*inst)["reason"], "image_unshared");
  EXPECT_EQ((*inst)["blocked_since"]["seq"], unshared.seq);
}

TEST_F(LedgerTest, AsOfBeyondTheHeadIsInvalidParameterAsOf) {
  std::uint64_t head = ledger_->head().seq;
  auto at_head = ledger_->view(head);
  ASSERT_TRUE(at_head.ok());
  EXPECT_EQ((*at_head)->seq(), head);
  auto beyond = ledger_->view(head + 1);
  ASSERT_FALSE(beyond.ok());
  EXPECT_EQ(beyond.error().http, 400);
  EXPECT_EQ(beyond.error().code, "InvalidParameter.AsOf");
}

TEST_F(LedgerTest, ReopenKeepsTheHeadAndRowsEqualAReplay) {
  build_history();
  Head before = ledger_->head();
  reopen();
  EXPECT_EQ(ledger_->head().seq, before.seq);
  EXPECT_EQ(ledger_->head().hash, before.hash);
  auto state = replay(ledger_->store(), ScanOptions{});
  ASSERT_TRUE(state.ok()) << describe(state.error());
  EXPECT_EQ(state->head_seq, before.seq);
  EXPECT_EQ(all_rows(*state), scan_family(ledger_->store(), ledger_->store().proj()));
  // And the ledger keeps appending after the reopen.
  Commit c = ok(RegisterAccount{ids_.account(), "cn", ids_.access_key()});
  EXPECT_EQ(c.events.front().seq, before.seq + 1);
  EXPECT_EQ(c.events.front().prev_hash, before.hash);
}

TEST_F(LedgerTest, ConcurrentWritersGetDenseUniqueSeqsInFewerSyncs) {
  constexpr int kThreads = 16, kPerThread = 200;
  std::vector<std::string> owners;
  for (int t = 0; t < kThreads; ++t) owners.push_back(account(t % 2 ? "cn" : "intl"));
  std::vector<std::vector<RegisterAccount>> registrations(kThreads);
  std::vector<std::vector<std::pair<std::string, std::string>>> launches(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    for (int k = 0; k < kPerThread; ++k) {
      if (k % 4 == 0) registrations[t].push_back({ids_.account(), "cn", ids_.access_key()});
      else launches[t].emplace_back(ids_.instance(), ids_.disk());
    }
  }
  const std::string image = system_image(kRegion);
  const std::uint64_t head0 = ledger_->head().seq;
  const std::uint64_t groups0 = ledger_->stats().groups, jobs0 = ledger_->stats().jobs;

  std::vector<std::vector<Result<Commit>>> results(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::size_t r = 0, l = 0;
      for (int k = 0; k < kPerThread; ++k) {
        Command c = k % 4 == 0 ? Command(registrations[t][r++])
                               : Command(RunInstances{owners[t], kRegion, image, {launches[t][l].first},
                                                      {launches[t][l].second}});
        if (k % 4 != 0) ++l;
        results[t].push_back(ledger_->execute(std::move(c)));
      }
    });
  }
  for (auto& th : threads) th.join();

  std::vector<std::uint64_t> seqs;
  for (const auto& per_thread : results) {
    std::uint64_t last = 0;
    for (const auto& r : per_thread) {
      ASSERT_TRUE(r.ok()) << describe(r.error());
      ASSERT_FALSE(r->events.empty());
      for (std::size_t i = 0; i < r->events.size(); ++i) {
        EXPECT_EQ(r->events[i].seq, r->events.front().seq + i) << "one command's events are contiguous";
        seqs.push_back(r->events[i].seq);
      }
      EXPECT_EQ(r->seq, r->events.back().seq);
      EXPECT_GT(r->seq, last) << "a thread's later command gets a later seq";
      last = r->seq;
    }
  }
  std::sort(seqs.begin(), seqs.end());
  const std::uint64_t head1 = ledger_->head().seq;
  ASSERT_EQ(seqs.size(), head1 - head0);
  for (std::size_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], head0 + 1 + i) << "dense and unique";
  const std::uint64_t groups = ledger_->stats().groups - groups0, jobs = ledger_->stats().jobs - jobs0;
  EXPECT_EQ(jobs, std::uint64_t{kThreads * kPerThread});
  EXPECT_LT(groups, jobs) << "group commit never grouped";
  std::cout << "concurrent: " << jobs << " jobs in " << groups << " groups\n";

  // The rows still equal a replay of the log.
  auto state = replay(ledger_->store(), ScanOptions{});
  ASSERT_TRUE(state.ok()) << describe(state.error());
  EXPECT_EQ(all_rows(*state), scan_family(ledger_->store(), ledger_->store().proj()));
}

TEST_F(LedgerTest, ANewProjectionVersionRebuildsIdenticalRows) {
  build_history();
  const Store& s = ledger_->store();
  auto proj = scan_family(s, s.proj());
  auto hist = scan_family(s, s.hist());
  auto idx = scan_family(s, s.idx());
  ledger_.reset();
  {
    auto store = Store::open(dir_, OpenMode::kReadWrite);
    ASSERT_TRUE(store.ok()) << describe(store.error());
    rocksdb::WriteBatch batch;
    batch.Put((*store)->meta(), "proj_version", "0-older-layout");
    batch.Put((*store)->proj(), "zz/stale-row", "{}");  // a row of the old layout
    batch.Put((*store)->hist(), hist_key("zz/stale-row", 1), "P{}");
    ASSERT_TRUE((*store)->write(batch, true).ok());
  }
  reopen();
  const Store& t = ledger_->store();
  auto version = t.get(t.meta(), "proj_version");
  ASSERT_TRUE(version.ok() && *version);
  EXPECT_EQ(**version, kProjectionVersion);
  EXPECT_EQ(scan_family(t, t.proj()), proj);
  EXPECT_EQ(scan_family(t, t.hist()), hist);
  EXPECT_EQ(scan_family(t, t.idx()), idx);
}

TEST_F(LedgerTest, AsOfReadsEqualAReplayToThatSeq) {
  const std::uint64_t start = ledger_->head().seq;
  build_history();
  const std::uint64_t head = ledger_->head().seq;
  // Every seq of the history: the whole as-of row set equals a replay's rows.
  std::map<std::uint64_t, Rows> replayed;
  auto state = replay(ledger_->store(), ScanOptions{}, [&](const State& s, const Event& e) {
    if (e.seq >= start) replayed[e.seq] = all_rows(s);
  });
  ASSERT_TRUE(state.ok()) << describe(state.error());
  ASSERT_EQ(replayed.size(), head - start + 1);
  for (const auto& [seq, rows] : replayed) {
    auto view = ledger_->view(seq);
    ASSERT_TRUE(view.ok());
    ASSERT_EQ(view_rows(**view), rows) << "as of seq " << seq;
  }
  auto empty = ledger_->view(0);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(view_rows(**empty).empty());

  // The queries over view(seq) answer like the same queries over the replay.
  std::vector<std::string> accounts, images;
  for (const auto& [key, value] : replayed.rbegin()->second) {
    if (key.starts_with("acct/")) accounts.push_back(key.substr(5));
    if (key.starts_with("img/")) images.push_back(key.substr(4));
  }
  const Viewer admin{true, ""};
  int compared = 0;
  for (std::uint64_t seq = start; seq <= head; seq += 3) {
    auto view = ledger_->view(seq);
    ASSERT_TRUE(view.ok());
    ScanOptions to;
    to.to_seq = seq;
    auto at = replay(ledger_->store(), to);
    ASSERT_TRUE(at.ok());
    MapRows fresh(all_rows(*at), seq);
    for (const auto& image : images) {
      auto live = image_permissions(**view, image, admin);
      auto want = image_permissions(fresh, image, admin);
      ASSERT_EQ(live.ok(), want.ok()) << image << " as of " << seq;
      if (live.ok()) {
        EXPECT_EQ(*live, *want) << image << " as of " << seq;
      }
      for (const auto& account : accounts) {
        auto got = check_access(**view, account, image, admin);
        auto expected = check_access(fresh, account, image, admin);
        ASSERT_TRUE(got.ok() && expected.ok());
        EXPECT_EQ(*got, *expected) << account << " on " << image << " as of " << seq;
        ++compared;
      }
    }
  }
  EXPECT_GT(compared, 100);
}

// A crash between two catalog seed writes leaves the log holding only the first
// seeds; that is exactly the log a ledger with fewer regions writes. The next
// open must still give every region its catalog.
TEST_F(LedgerTest, ACatalogCutShortBySeedingCrashIsCompletedAtTheNextOpen) {
  ledger_.reset();
  std::filesystem::remove_all(dir_);
  LedgerOptions first_region_only;
  first_region_only.limits.regions = {Limits{}.regions.front()};
  reopen(first_region_only);
  reopen();
  auto view = ledger_->view();
  ASSERT_TRUE(view.ok());
  for (const auto& seed : builtin_catalog(Limits{}.regions)) {
    EXPECT_TRUE(live_image(**view, seed.image_id)) << seed.region << " " << seed.name << " missing";
  }
}

// Rows are written without building a json tree; they must still be exactly
// what nlohmann renders for the same value (sorted keys, compact), so that
// their bytes do not depend on which code wrote them.
TEST_F(LedgerTest, EveryStoredRowIsCanonicalJson) {
  build_history();
  // A name that needs escaping, non-ASCII included.
  std::string odd = account("cn");
  ok(CreateImage{odd, kRegion, instance(odd, system_image(kRegion)), ids_.image(),
                 "tab\there \"quoted\" \\ caf\xc3\xa9 \x01"});
  std::size_t objects = 0;
  for (const auto& [key, value] : scan_family(ledger_->store(), ledger_->store().proj())) {
    if (value.empty() || value[0] != '{') continue;
    ++objects;
    EXPECT_EQ(Json::parse(value).dump(), value) << key;
  }
  EXPECT_GT(objects, 50u);
}

// ---- corruption: the open names the first bad seq --------------------------

class CorruptLogTest : public LedgerTest {
 protected:
  // Builds a history, closes the ledger, lets `damage` edit the raw database,
  // and returns the error of the next open.
  Error open_after(const std::function<void(Store&, std::uint64_t head)>& damage) {
    build_history();
    std::uint64_t head = ledger_->head().seq;
    ledger_.reset();
    {
      auto store = Store::open(dir_, OpenMode::kReadWrite);
      EXPECT_TRUE(store.ok());
      if (!store.ok()) return Error{};
      damage(**store, head);
    }
    auto opened = Ledger::open(dir_);
    EXPECT_FALSE(opened.ok()) << "a damaged log opened";
    return opened.ok() ? Error{} : opened.error();
  }

  static void flip_byte(Store& store, std::uint64_t seq, std::size_t at_fraction_num, std::size_t at_fraction_den) {
    auto bytes = store.event_bytes(seq);
    ASSERT_TRUE(bytes.ok() && *bytes);
    std::string value = **bytes;
    std::size_t at = value.size() * at_fraction_num / at_fraction_den;
    value[at] = static_cast<char>(value[at] ^ 0x01);
    ASSERT_TRUE(store.db()->Put(rocksdb::WriteOptions(), store.events(), be64(seq), value).ok());
  }

  static void expect_names_seq(const Error& e, std::uint64_t seq) {
    EXPECT_EQ(e.http, 500) << describe(e);
    EXPECT_EQ(e.code, "CorruptEvent") << describe(e);
    EXPECT_TRUE(e.message.starts_with("seq " + std::to_string(seq) + ":")) << describe(e);
  }
};

TEST_F(CorruptLogTest, AFlippedByteInAnEventNamesItsSeq) {
  std::uint64_t bad = 0;
  Error e = open_after([&](Store& s, std::uint64_t head) {
    bad = head / 2;
    flip_byte(s, bad, 1, 2);
  });
  expect_names_seq(e, bad);
}

TEST_F(CorruptLogTest, AFlippedByteInTheFirstEventNamesSeqOne) {
  Error e = open_after([&](Store& s, std::uint64_t) { flip_byte(s, 1, 1, 3); });
  expect_names_seq(e, 1);
}

TEST_F(CorruptLogTest, AFlippedByteInTheHeadEventNamesItsSeq) {
  std::uint64_t bad = 0;
  Error e = open_after([&](Store& s, std::uint64_t head) {
    bad = head;
    flip_byte(s, bad, 0, 1);  // the opening '{': no longer JSON at all
  });
  expect_names_seq(e, bad);
}

TEST_F(CorruptLogTest, AFlippedHashByteNamesItsSeq) {
  std::uint64_t bad = 0;
  Error e = open_after([&](Store& s, std::uint64_t head) {
    bad = head - 3;
    auto bytes = s.event_bytes(bad);
    ASSERT_TRUE(bytes.ok() && *bytes);
    std::string value = **bytes;
    std::size_t at = value.find("\"hash\":\"") + 10;
    value[at] = value[at] == 'a' ? 'b' : 'a';
    ASSERT_TRUE(s.db()->Put(rocksdb::WriteOptions(), s.events(), be64(bad), value).ok());
  });
  expect_names_seq(e, bad);
}

TEST_F(CorruptLogTest, AMissingEventNamesItsSeq) {
  std::uint64_t bad = 0;
  Error e = open_after([&](Store& s, std::uint64_t head) {
    bad = head / 3;
    ASSERT_TRUE(s.db()->Delete(rocksdb::WriteOptions(), s.events(), be64(bad)).ok());
  });
  expect_names_seq(e, bad);
}

TEST_F(CorruptLogTest, AnEventStoredUnderAnotherSeqNamesThatSeq) {
  std::uint64_t bad = 0;
  Error e = open_after([&](Store& s, std::uint64_t head) {
    bad = head / 2;
    auto other = s.event_bytes(bad + 1);  // a valid event, under the wrong key
    ASSERT_TRUE(other.ok() && *other);
    ASSERT_TRUE(s.db()->Put(rocksdb::WriteOptions(), s.events(), be64(bad), **other).ok());
  });
  expect_names_seq(e, bad);
}

// scan_verified reads, verifies and delivers the log in batches of a few
// hundred events on several threads: damage at and around batch edges must be
// named exactly as a one-by-one check would, after every event before it.
TEST_F(CorruptLogTest, DamageAtBatchEdgesNamesItsSeqAfterEveryEarlierEvent) {
  while (ledger_->head().seq < 1300) account();
  const std::uint64_t head = ledger_->head().seq;
  ledger_.reset();
  auto opened = Store::open(dir_, OpenMode::kReadWrite);
  ASSERT_TRUE(opened.ok());
  Store& store = **opened;

  std::uint64_t delivered = 0;
  auto count = [&](const Event& e, std::string_view bytes) {
    EXPECT_EQ(e.seq, delivered + 1);
    EXPECT_EQ(stored_hash(bytes), e.hash);
    ++delivered;
    return true;
  };
  ASSERT_TRUE(scan_verified(store, {}, count).ok());
  EXPECT_EQ(delivered, head);
  delivered = 0;
  ScanOptions hash_only;
  hash_only.hash_only = true;
  ASSERT_TRUE(scan_verified(store, hash_only, count).ok());
  EXPECT_EQ(delivered, head);

  for (std::uint64_t to_seq : {std::uint64_t{512}, std::uint64_t{777}, std::uint64_t{1024}}) {  // batch edges too
    delivered = 0;
    ScanOptions up_to;
    up_to.to_seq = to_seq;
    ASSERT_TRUE(scan_verified(store, up_to, count).ok());
    EXPECT_EQ(delivered, to_seq);
  }
  std::uint64_t calls = 0;
  ASSERT_TRUE(scan_verified(store, {}, [&](const Event&, std::string_view) { return ++calls < 700; }).ok());
  EXPECT_EQ(calls, 700u);

  for (std::uint64_t bad : {std::uint64_t{1}, std::uint64_t{511}, std::uint64_t{512}, std::uint64_t{513},
                            std::uint64_t{1024}, std::uint64_t{1025}, head}) {
    SCOPED_TRACE("damaged seq " + std::to_string(bad));
    std::string original = **store.event_bytes(bad);
    for (bool gap : {false, true}) {
      if (gap) {
        ASSERT_TRUE(store.db()->Delete(rocksdb::WriteOptions(), store.events(), be64(bad)).ok());
      } else {
        flip_byte(store, bad, 1, 2);
      }
      delivered = 0;
      Status st = scan_verified(store, {}, count);
      ASSERT_FALSE(st.ok());
      expect_names_seq(st.error(), bad);
      EXPECT_EQ(delivered, bad - 1);
      ASSERT_TRUE(store.db()->Put(rocksdb::WriteOptions(), store.events(), be64(bad), original).ok());
    }
  }
  ASSERT_TRUE(scan_verified(store, {}, [](const Event&, std::string_view) { return true; }).ok());
}

}  // namespace
}  // namespace sl
