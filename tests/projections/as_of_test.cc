// Point-in-time reads (SPEC §2.3) against an oracle: a replay of the log.
//
// A random history of more than 20 000 events is written through Ledger::submit
// (accounts on both sites, images and their shares, publicity, forced deletes,
// instances, and organization membership with resource shares). Then ONE replay
// pass stops at hundreds of random seqs and checks that rows_as_of(seq) holds
// exactly the rows all_rows(state) derives at that seq (get and scan), and that
// the queries answer the same over both. Time resolution (last event with
// time <= T) is checked against event times read back from the store.
//
// The seed is printed; set SHARELEDGER_SEED to replay a failing run.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "events/catalog.h"
#include "events/codec.h"
#include "events/time_format.h"
#include "projections/ledger.h"
#include "projections/queries.h"
#include "projections/replay.h"
#include "projections/rows.h"
#include "projections/support.h"

namespace sl {
namespace {

constexpr std::uint64_t kMinEvents = 20000;
constexpr std::size_t kCheckedSeqs = 500;
constexpr std::size_t kRoundCommands = 400;

// Every row family of projections/rows.h; a row outside them fails the test.
const std::vector<std::string> kRowPrefixes = {"acct/", "img/",  "grant/", "agrant/", "recip/", "inst/",
                                               "iimg/", "oinst/", "own/",  "cat/",    "pub/",   "disk/",
                                               "dir/",  "folder/", "hs/",  "share/",  "oshare/", "akey/"};

using test::describe;
using test::fresh_dir;
using test::MapRows;

constexpr std::uint64_t kOracleSeed = 20261202;

// A query answer as one comparable string.
std::string show(const Result<Json>& r) { return r.ok() ? r->dump() : "error " + describe(r.error()); }

template <class T>
std::vector<std::string> keys_of(const T& map) {
  std::vector<std::string> out;
  for (const auto& [k, v] : map) out.push_back(k);
  std::sort(out.begin(), out.end());
  return out;
}

// Writes a random history through the ledger. Commands are planned in rounds
// from a model State (evolved from the events the ledger returns), submitted
// without waiting, then awaited together: the writer stages them in order, so
// a round may build on itself (invite then accept, unshare then delete), and
// the big groups make generation fast. Rejections are expected and harmless.
class HistoryWriter {
 public:
  HistoryWriter(Ledger& ledger, std::uint64_t seed) : ledger_(ledger), rng_(seed) {
    auto state = replay(ledger.store(), ScanOptions{});
    EXPECT_TRUE(state.ok());
    if (state.ok()) model_ = std::move(*state);
    for (const auto& c : builtin_catalog(ledger.limits().regions)) catalog_[c.region].push_back(c.image_id);
  }

  void run_until(std::uint64_t events) {
    while (model_.head_seq < events && !testing::Test::HasFatalFailure()) round();
  }

  std::uint64_t accepted() const { return accepted_; }
  std::uint64_t rejected() const { return rejected_; }
  const std::vector<std::string>& all_images() const { return all_images_; }
  const std::vector<std::string>& all_instances() const { return all_instances_; }
  const std::vector<std::string>& all_accounts() const { return all_accounts_; }

 private:
  struct Planned {
    Command command;
    std::string caller;
  };

  // ---- randomness and ids ------------------------------------------------------
  std::size_t pick(std::size_t n) { return static_cast<std::size_t>(rng_() % n); }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  template <class V>
  const typename V::value_type& any(const V& v) {
    return v[pick(v.size())];
  }
  std::string chars(std::string_view alphabet, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += alphabet[pick(alphabet.size())];
    return s;
  }
  static constexpr std::string_view kLower = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string account_id() { return std::string(1, "123456789"[pick(9)]) + chars("0123456789", 15); }
  std::string access_key() { return "LTAI" + chars("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", 20); }
  std::string image_id() { return "m-" + chars(kLower, 20); }
  std::string instance_id() { return "i-" + chars(kLower, 20); }
  std::string disk_id() { return "d-" + chars(kLower, 20); }

  // ---- the model at the start of a round, as sorted id lists -------------------
  void snapshot() {
    accounts_ = keys_of(model_.accounts);
    live_images_.clear();
    for (const auto& [id, x] : model_.images) {
      if (x.custom() && !x.deleted()) live_images_.push_back(id);
    }
    std::sort(live_images_.begin(), live_images_.end());
    instances_ = keys_of(model_.instances);
    managers_ = keys_of(model_.directory_of_manager);
    live_shares_.clear();
    for (const auto& [id, rs] : model_.shares) {
      if (!rs.deleted) live_shares_.push_back(id);
    }
    std::sort(live_shares_.begin(), live_shares_.end());
    folders_of_.clear();
    for (const auto& [id, f] : model_.folders) folders_of_[f.directory_id].push_back(id);
    for (auto& [dir, folders] : folders_of_) std::sort(folders.begin(), folders.end());
    members_of_.clear();
    for (const auto& id : accounts_) {
      std::string dir = model_.directory_of(id);
      if (!dir.empty() && !model_.directory_of_manager.count(id)) members_of_[dir].push_back(id);
    }
  }

  std::vector<std::string> images_owned_by(const std::string& owner) {
    std::vector<std::string> out;
    for (const auto& id : live_images_) {
      if (model_.images.at(id).owner == owner) out.push_back(id);
    }
    return out;
  }

  // Images `account` may launch in `region`: catalog ones and custom ones it can use.
  std::string usable_image(const std::string& account, const std::string& region) {
    if (chance(0.5)) {
      std::vector<std::string> custom;
      for (const auto& id : live_images_) {
        const Image& x = model_.images.at(id);
        if (x.region == region && model_.can_use(account, x)) custom.push_back(id);
      }
      if (!custom.empty()) return any(custom);
    }
    return any(catalog_[region]);
  }

  std::vector<std::string> some_accounts(std::size_t max, const std::string& except) {
    std::vector<std::string> out;
    std::size_t n = 1 + pick(max);
    for (std::size_t i = 0; i < n; ++i) {
      const std::string& a = any(accounts_);
      if (a != except && std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
    }
    return out;
  }

  std::vector<std::string> account_recipients(const std::string& image) {
    std::vector<std::string> out;
    const ImageLinks* links = model_.links_of(image);
    if (!links) return out;
    for (const auto& [account, sources] : links->grants) {
      if (sources.count(std::string_view("account"))) out.emplace_back(as_view(account));
    }
    return out;
  }

  // ---- planning ----------------------------------------------------------------
  // Appends one or more commands; appends nothing when the model cannot support
  // any yet (the first round, before accounts exist), which ends the round.
  void plan(std::vector<Planned>& out) {
    const auto& regions = ledger_.limits().regions;
    if (accounts_.empty() && planned_accounts_ >= 40) return;
    if (planned_accounts_ < 40 || chance(0.003)) {
      ++planned_accounts_;
      std::string id = account_id();
      out.push_back({RegisterAccount{id, chance(0.3) ? "intl" : "cn", access_key()}, ""});
      return;
    }
    double r = std::uniform_real_distribution<double>(0, 1)(rng_);
    bool many_instances = instances_.size() > 300, many_images = live_images_.size() > 150;
    if ((r -= 0.10) < 0 || instances_.empty()) {  // launch
      const std::string& owner = any(accounts_);
      std::string region = chance(0.7) ? "cn-hangzhou" : any(regions);
      RunInstances run{owner, region, usable_image(owner, region), {}, {}};
      for (std::size_t n = 1 + pick(2); n > 0; --n) {
        run.instance_ids.push_back(instance_id());
        run.disk_ids.push_back(disk_id());
        all_instances_.push_back(run.instance_ids.back());
      }
      out.push_back({std::move(run), owner});
    } else if ((r -= 0.04) < 0 || live_images_.empty()) {  // image from an instance
      const Instance& i = model_.instances.at(any(instances_));
      std::string id = image_id();
      all_images_.push_back(id);
      out.push_back({CreateImage{i.owner, i.region, i.id, id, "img-" + id.substr(2, 6)}, i.owner});
    } else if ((r -= 0.38) < 0) {  // share / unshare / publicity
      const Image& x = model_.images.at(any(live_images_));
      ModifyImageSharePermission m{x.owner, x.region, x.id, {}, {}, std::nullopt};
      if (chance(0.7)) m.add_accounts = some_accounts(5, x.owner);
      std::vector<std::string> current = account_recipients(x.id);
      std::shuffle(current.begin(), current.end(), rng_);
      for (const auto& a : current) {
        if (m.remove_accounts.size() < 3 && chance(0.5) &&
            std::find(m.add_accounts.begin(), m.add_accounts.end(), a) == m.add_accounts.end()) {
          m.remove_accounts.push_back(a);
        }
      }
      if (chance(0.12)) m.is_public = chance(0.5);
      out.push_back({std::move(m), x.owner});
    } else if ((r -= (many_images ? 0.06 : 0.02)) < 0) {  // unshare everything, then delete with Force
      const Image& x = model_.images.at(any(live_images_));
      std::vector<std::string> recipients = account_recipients(x.id);
      for (std::size_t at = 0; at < recipients.size() || at == 0; at += 10) {
        std::vector<std::string> chunk(recipients.begin() + std::min(at, recipients.size()),
                                       recipients.begin() + std::min(at + 10, recipients.size()));
        out.push_back({ModifyImageSharePermission{x.owner, x.region, x.id, {}, chunk, false}, x.owner});
      }
      for (const auto& share : live_shares_) {
        if (model_.shares.at(share).resources.count(x.id)) {
          out.push_back({DisassociateResourceShare{x.owner, share, {x.id}, {}}, x.owner});
        }
      }
      out.push_back({DeleteImage{x.owner, x.region, x.id, chance(0.85)}, x.owner});
    } else if ((r -= 0.06) < 0) {  // replace the system disk
      const Instance& i = model_.instances.at(any(instances_));
      out.push_back({ReplaceSystemDisk{i.owner, i.id, usable_image(i.owner, i.region), disk_id()}, i.owner});
    } else if ((r -= 0.04) < 0) {  // reinit (fails when blocked)
      const Instance& i = model_.instances.at(any(instances_));
      out.push_back({ReInitDisk{i.owner, i.disk_id}, i.owner});
    } else if ((r -= (many_instances ? 0.12 : 0.04)) < 0) {
      const Instance& i = model_.instances.at(any(instances_));
      out.push_back({DeleteInstance{i.owner, i.id}, i.owner});
    } else if ((r -= 0.02) < 0) {
      const Account& a = model_.accounts.at(any(accounts_));
      out.push_back({SetEncryptShareRole{a.id, !a.encrypt_role}, ""});
    } else if ((r -= 0.01) < 0) {  // copy, sometimes encrypted (then sharing hits rule 5)
      const Image& x = model_.images.at(any(live_images_));
      std::string id = image_id();
      all_images_.push_back(id);
      CopyImage copy{x.owner, x.region, x.id, any(regions), id, "copy", chance(0.3), chance(0.5) ? "" : "key-1", true};
      out.push_back({std::move(copy), x.owner});
    } else {
      plan_organization(out);
    }
  }

  void plan_organization(std::vector<Planned>& out) {
    double r = std::uniform_real_distribution<double>(0, 1)(rng_);
    // Three directories (a few more if an attempt is rejected: the account was
    // already a member). One attempt per round until one exists.
    if (managers_.empty() ? !directory_this_round_ : planned_directories_ < 3 && chance(0.1)) {
      ++planned_directories_;
      directory_this_round_ = true;
      const std::string& a = any(accounts_);
      out.push_back({EnableResourceDirectory{a, "rd-" + chars(kLower, 10), "r-" + chars(kLower, 6)}, a});
      return;
    }
    if (managers_.empty()) return;
    const std::string& manager = any(managers_);
    const std::string dir = model_.directory_of_manager.at(manager);
    const Directory& d = model_.directories.at(dir);
    const std::vector<std::string>& folders = folders_of_[dir];
    std::vector<std::string>& members = members_of_[dir];
    if ((r -= 0.05) < 0 || !d.sharing_enabled) {
      out.push_back({EnableSharingWithDirectory{manager}, manager});
    } else if ((r -= 0.04) < 0 || folders.size() < 3) {  // nested folders
      out.push_back({CreateFolder{manager, any(folders), "fd-" + chars(kLower, 10), "team"}, manager});
    } else if ((r -= 0.20) < 0 || members.size() < 3) {  // invite and (mostly) accept
      const std::string& a = any(accounts_);
      std::string hs = "h-" + chars(kLower, 16);
      out.push_back({InviteAccount{manager, a, hs}, manager});
      if (chance(0.85)) out.push_back({AcceptHandshake{a, hs}, a});
    } else if ((r -= 0.20) < 0) {
      out.push_back({MoveAccount{manager, any(members), any(folders)}, manager});
    } else if ((r -= 0.08) < 0) {
      out.push_back({RemoveAccount{manager, any(members)}, manager});
    } else if ((r -= 0.12) < 0 || live_shares_.empty()) {  // a share by the manager or a member
      std::string owner = chance(0.5) ? manager : any(members);
      std::vector<std::string> mine = images_owned_by(owner);
      CreateResourceShare c{owner, "rs-" + chars(kLower, 10), "share", {}, {}, chance(0.5)};
      for (std::size_t n = pick(3); n > 0 && !mine.empty(); --n) c.resources.push_back(any(mine));
      c.targets = share_targets(dir, folders, members, owner);
      out.push_back({std::move(c), owner});
    } else {
      const ResourceShare& rs = model_.shares.at(any(live_shares_));
      std::string share_dir = model_.directory_of(rs.owner);
      double s = std::uniform_real_distribution<double>(0, 1)(rng_);
      if ((s -= 0.5) < 0) {
        AssociateResourceShare a{rs.owner, rs.id, {}, {}};
        std::vector<std::string> mine = images_owned_by(rs.owner);
        if (!mine.empty() && chance(0.6)) a.resources.push_back(any(mine));
        if (chance(0.6) || a.resources.empty()) {
          a.targets = share_dir.empty() ? some_accounts(2, rs.owner)
                                        : share_targets(share_dir, folders_of_[share_dir], members_of_[share_dir],
                                                        rs.owner);
        }
        out.push_back({std::move(a), rs.owner});
      } else if ((s -= 0.4) < 0) {
        DisassociateResourceShare dis{rs.owner, rs.id, {}, {}};
        for (const auto& x : rs.resources) {
          if (chance(0.3)) dis.resources.push_back(x);
        }
        for (const auto& t : rs.targets) {
          if (chance(0.3) && dis.targets.size() < 5) dis.targets.push_back(t);
        }
        if (dis.resources.size() > 5) dis.resources.resize(5);
        out.push_back({std::move(dis), rs.owner});
      } else {
        out.push_back({DeleteResourceShare{rs.owner, rs.id}, rs.owner});
      }
    }
  }

  std::vector<std::string> share_targets(const std::string& dir, const std::vector<std::string>& folders,
                                         const std::vector<std::string>& members, const std::string& owner) {
    std::vector<std::string> targets;
    for (std::size_t n = 1 + pick(3); n > 0; --n) {
      double r = std::uniform_real_distribution<double>(0, 1)(rng_);
      std::string t = r < 0.2 ? dir : r < 0.6 ? any(folders) : r < 0.85 && !members.empty() ? any(members) : any(accounts_);
      if (t != owner && std::find(targets.begin(), targets.end(), t) == targets.end()) targets.push_back(t);
    }
    return targets;
  }

  // ---- one round: plan, submit all, wait for all, fold the events ---------------
  void round() {
    snapshot();
    std::vector<Planned> planned;
    directory_this_round_ = false;
    while (planned.size() < kRoundCommands) {
      std::size_t before = planned.size();
      plan(planned);
      if (planned.size() == before && accounts_.empty()) break;
    }
    std::mutex mu;
    std::condition_variable cv;
    std::size_t done = 0;
    std::vector<Event> events;
    std::uint64_t ok = 0, bad = 0;
    for (auto& p : planned) {
      CommandContext context{Actor{p.caller, ""}, "req-" + std::to_string(++requests_), ""};
      ledger_.submit(std::move(p.command), std::move(context), [&](Result<Commit> r) {
        std::lock_guard lock(mu);
        if (r.ok()) {
          ++ok;
          for (auto& e : r->events) events.push_back(std::move(e));
        } else {
          ++bad;
          if (r.error().http >= 500) ADD_FAILURE() << describe(r.error());
        }
        ++done;
        cv.notify_one();
      });
    }
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return done == planned.size(); });
    }
    std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) { return a.seq < b.seq; });
    for (const Event& e : events) {
      ASSERT_EQ(e.seq, model_.head_seq + 1) << "events of a round must be dense";
      evolve(model_, e);
      if (const auto* a = std::get_if<AccountRegistered>(&e.data)) all_accounts_.push_back(a->account_id);
    }
    accepted_ += ok;
    rejected_ += bad;
  }

  Ledger& ledger_;
  std::mt19937_64 rng_;
  State model_;
  std::map<std::string, std::vector<std::string>> catalog_;  // region -> catalog image ids
  std::uint64_t requests_ = 0, accepted_ = 0, rejected_ = 0;
  std::size_t planned_accounts_ = 0, planned_directories_ = 0;
  bool directory_this_round_ = false;
  std::vector<std::string> all_images_, all_instances_, all_accounts_;  // every id ever planned
  // Snapshot of the model at the start of the round.
  std::vector<std::string> accounts_, live_images_, instances_, managers_, live_shares_;
  std::map<std::string, std::vector<std::string>> folders_of_, members_of_;
};

class AsOfTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    seed_ = test::env_number("SHARELEDGER_SEED", kOracleSeed);
    std::cout << "seed=" << seed_ << " (set SHARELEDGER_SEED to reproduce)" << std::endl;
    dir_ = new std::string(fresh_dir("as_of"));
    auto opened = Ledger::open(*dir_);
    ASSERT_TRUE(opened.ok()) << describe(opened.error());
    ledger_ = opened->release();
    auto t0 = std::chrono::steady_clock::now();
    writer_ = new HistoryWriter(*ledger_, seed_);
    writer_->run_until(kMinEvents);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << "history: " << ledger_->head().seq << " events from " << writer_->accepted() << " accepted and "
              << writer_->rejected() << " rejected commands in " << secs << " s, "
              << ledger_->stats().groups.load() << " groups" << std::endl;
  }
  static void TearDownTestSuite() {
    delete writer_;
    delete ledger_;
    if (dir_) std::filesystem::remove_all(*dir_);
    delete dir_;
    writer_ = nullptr;
    ledger_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(ledger_, nullptr); }

  static std::uint64_t seed_;
  static std::string* dir_;
  static Ledger* ledger_;
  static HistoryWriter* writer_;
};

std::uint64_t AsOfTest::seed_ = 0;
std::string* AsOfTest::dir_ = nullptr;
Ledger* AsOfTest::ledger_ = nullptr;
HistoryWriter* AsOfTest::writer_ = nullptr;

// Compares the as-of view at `seq` with the rows `state` (replayed to seq) derives.
// Returns the differences found (empty when equal); at most a few are described.
std::vector<std::string> compare_at(const Ledger& ledger, const State& state, std::uint64_t seq,
                                    const HistoryWriter& writer, std::mt19937_64& rng, std::size_t& row_count) {
  std::vector<std::string> problems;
  auto note = [&](std::string what) {
    if (problems.size() < 8) problems.push_back("seq " + std::to_string(seq) + ": " + std::move(what));
  };
  const MapRows expected(all_rows(state), seq);  // also what the queries below are compared with
  const Rows& rows = expected.rows();
  row_count = rows.size();
  auto opened = ledger.view(seq);
  if (!opened.ok()) {
    note("view: " + describe(opened.error()));
    return problems;
  }
  const RowView& view = **opened;
  if (view.seq() != seq) note("view reports seq " + std::to_string(view.seq()));

  // Every expected row, by point get.
  for (const auto& [key, value] : rows) {
    auto got = view.get(key);
    if (!got) {
      note("get " + key + ": absent, expected " + value);
    } else if (*got != value) {
      note("get " + key + ": " + *got + " != expected " + value);
    }
    if (std::none_of(kRowPrefixes.begin(), kRowPrefixes.end(), [&k = key](const std::string& p) { return k.starts_with(p); })) {
      note("row " + key + " is in no known family");
    }
  }
  // Scans over every row family: exactly the expected rows, nothing extra.
  Rows scanned;
  for (const auto& prefix : kRowPrefixes) {
    view.scan(prefix, [&](std::string_view k, std::string_view v) {
      scanned.emplace_back(std::string(k), std::string(v));
      return true;
    });
  }
  std::sort(scanned.begin(), scanned.end());
  for (std::size_t i = 1; i < scanned.size(); ++i) {
    if (scanned[i].first == scanned[i - 1].first) note("scan yields " + scanned[i].first + " twice");
  }
  auto want = rows.begin();
  for (const auto& [key, value] : scanned) {
    for (; want != rows.end() && want->first < key; ++want) note("scan misses " + want->first);
    if (want == rows.end() || want->first != key) {
      note("scan has extra row " + key + " = " + value);
    } else if (want->second != value) {
      note("scan " + key + ": " + value + " != expected " + want->second);
    }
    if (want != rows.end() && want->first == key) ++want;
  }
  for (; want != rows.end(); ++want) note("scan misses " + want->first);
  // A row never written by then must be absent.
  for (const auto& key : {std::string("img/m-nosuchimage000000000"), std::string("acct/0000000000000000")}) {
    if (view.get(key)) note("get " + key + " is present");
  }

  // Queries over the as-of view equal the same queries over the expected rows.
  Viewer admin{true, ""};
  const auto& images = writer.all_images();
  const auto& accounts = writer.all_accounts();
  const auto& instances = writer.all_instances();
  auto any = [&](const std::vector<std::string>& v) -> std::string {
    return v.empty() ? std::string("none") : v[rng() % v.size()];
  };
  for (int n = 0; n < 6; ++n) {
    std::string image = any(images), account = any(accounts), instance = any(instances);
    // Half the time ask about an account that holds a grant on the image then.
    if (n % 2 == 0) {
      if (const ImageLinks* links = state.links_of(image); links && !links->grants.empty()) {
        auto g = links->grants.begin();
        std::advance(g, static_cast<long>(rng() % links->grants.size()));
        account = as_view(g->first);
      }
    }
    auto same = [&](const std::string& what, const Result<Json>& got, const Result<Json>& want) {
      if (show(got) != show(want)) note(what + ": " + show(got) + " != expected " + show(want));
    };
    same("check_access " + account + " " + image, check_access(view, account, image, admin),
         check_access(expected, account, image, admin));
    same("image_permissions " + image, image_permissions(view, image, admin), image_permissions(expected, image, admin));
    same("image_launchers " + image, image_launchers(view, image, admin), image_launchers(expected, image, admin));
    same("image_recipients " + image, image_recipients(view, image, admin), image_recipients(expected, image, admin));
    same("instance_status " + instance, instance_status(view, instance, admin),
         instance_status(expected, instance, admin));
  }
  return problems;
}

TEST_F(AsOfTest, AsOfViewsEqualAReplayToThatSeqAtRandomSeqs) {
  const std::uint64_t head = ledger_->head().seq;
  ASSERT_GE(head, kMinEvents);
  std::mt19937_64 rng(seed_ ^ 0x5eed);
  std::set<std::uint64_t> chosen = {0, 1, head};
  while (chosen.size() < kCheckedSeqs + 3) chosen.insert(rng() % (head + 1));

  std::vector<std::string> problems;
  std::size_t checked = 0, max_rows = 0;
  auto check = [&](const State& state, std::uint64_t seq) {
    std::size_t rows = 0;
    auto found = compare_at(*ledger_, state, seq, *writer_, rng, rows);
    problems.insert(problems.end(), found.begin(), found.end());
    max_rows = std::max(max_rows, rows);
    ++checked;
  };
  check(State{}, 0);  // seq 0: the empty state
  auto t0 = std::chrono::steady_clock::now();
  auto replayed = replay(ledger_->store(), ScanOptions{}, [&](const State& state, const Event& e) {
    if (problems.size() < 20 && chosen.count(e.seq)) check(state, e.seq);
  });
  ASSERT_TRUE(replayed.ok()) << describe(replayed.error());
  EXPECT_EQ(replayed->head_seq, head);
  EXPECT_EQ(checked, chosen.size()) << "every chosen seq is checked";
  std::cout << "checked " << checked << " seqs (up to " << max_rows << " rows each) in "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s" << std::endl;
  for (const auto& p : problems) ADD_FAILURE() << p;
}

TEST_F(AsOfTest, TheHistoryCoversEveryRowFamily) {
  // The oracle above is only as strong as the history: make sure it holds
  // organization grants, blocked instances, pending handshakes and the rest.
  std::map<std::string, std::size_t> families;  // family -> versions
  std::size_t org_grants = 0, blocked = 0;
  rocksdb::ReadOptions whole_family;
  whole_family.total_order_seek = true;
  std::unique_ptr<rocksdb::Iterator> it(ledger_->store().db()->NewIterator(whole_family, ledger_->store().hist()));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string key = it->key().ToString();
    ++families[key.substr(0, key.find('/') + 1)];
    if (key.starts_with("grant/") && it->value().ToString().find("resource-share:") != std::string::npos) ++org_grants;
    if (key.starts_with("inst/") && it->value().ToString().find("\"reinit_blocked\":true") != std::string::npos) {
      ++blocked;
    }
  }
  for (const auto& prefix : kRowPrefixes) EXPECT_TRUE(families.count(prefix)) << "no " << prefix << " rows";
  EXPECT_GT(org_grants, 0u);
  EXPECT_GT(blocked, 0u);
  std::map<std::string, std::size_t> rows;  // family -> rows now
  auto now = ledger_->view();
  ASSERT_TRUE(now.ok());
  (*now)->scan("", [&](std::string_view key, std::string_view) {
    ++rows[std::string(key.substr(0, key.find('/') + 1))];
    return true;
  });
  std::cout << "row versions (rows at head):";
  for (const auto& [family, versions] : families) std::cout << " " << family << versions << " (" << rows[family] << ")";
  std::cout << "; " << org_grants << " organization grant versions, " << blocked << " blocked-instance versions"
            << std::endl;
}

// Event times as stored: (seq, time) in seq order.
std::vector<std::int64_t> stored_times(const Store& store) {
  std::vector<std::int64_t> times;
  auto s = store.scan_events(1, [&](std::uint64_t seq, std::string_view bytes) {
    auto st = peek_seq_time(bytes);
    EXPECT_TRUE(st.ok());
    EXPECT_EQ(st->first, seq);
    times.push_back(st->second);
    return true;
  });
  EXPECT_TRUE(s.ok());
  return times;
}

// The last seq whose time <= t, by brute force over the stored times.
std::uint64_t expected_seq_at(const std::vector<std::int64_t>& times, std::int64_t t) {
  return static_cast<std::uint64_t>(std::upper_bound(times.begin(), times.end(), t) - times.begin());
}

TEST_F(AsOfTest, TimeResolvesToTheLastEventAtOrBeforeIt) {
  const std::vector<std::int64_t> times = stored_times(ledger_->store());
  const std::uint64_t head = ledger_->head().seq;
  ASSERT_EQ(times.size(), head);
  ASSERT_TRUE(std::is_sorted(times.begin(), times.end())) << "event time never decreases";
  auto resolve = [&](std::int64_t t) {
    auto seq = ledger_->seq_at_time(t);
    EXPECT_TRUE(seq.ok());
    // The native API's path: RFC 3339 text, parsed, then resolved.
    auto parsed = parse_rfc3339(rfc3339_micros(t));
    EXPECT_EQ(parsed, t);
    if (parsed) {
      EXPECT_EQ(ledger_->seq_at_time(*parsed).value(), seq.value());
    }
    return seq.ok() ? *seq : ~0ull;
  };
  EXPECT_EQ(resolve(times.front() - 1), 0u) << "before the first event";
  EXPECT_EQ(resolve(times.front() - 3600'000'000ll), 0u);
  EXPECT_EQ(resolve(times.back()), head) << "at the last event";
  EXPECT_EQ(resolve(times.back() + 1), head) << "after the last event";
  EXPECT_EQ(resolve(times.back() + 86400'000'000ll), head);

  std::mt19937_64 rng(seed_ ^ 0x7173);
  std::size_t equal = 0, between = 0, ties = 0;
  for (int n = 0; n < 3000 && (equal < 300 || between < 300); ++n) {
    std::size_t i = rng() % times.size();  // event seq i+1
    std::int64_t t = times[i];
    std::uint64_t want = expected_seq_at(times, t);
    ASSERT_GE(want, i + 1);
    if (want > i + 1) ++ties;  // later events share this microsecond: the last of them wins
    EXPECT_EQ(resolve(t), want) << "T equal to the time of seq " << i + 1;
    ++equal;
    if (i + 1 < times.size() && times[i + 1] - times[i] >= 2) {
      std::int64_t gap = times[i + 1] - times[i];
      std::int64_t between_t = times[i] + 1 + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(gap - 1));
      EXPECT_EQ(resolve(between_t), i + 1) << "T strictly between seq " << i + 1 << " and " << i + 2;
      EXPECT_EQ(resolve(times[i + 1] - 1), i + 1);
      ++between;
    }
  }
  EXPECT_GE(between, 100u) << "the history has gaps between group commits";
  std::cout << "time checks: " << equal << " at event times (" << ties << " shared a microsecond), " << between
            << " between events" << std::endl;

  // The resolved seq's view is the state at T.
  std::int64_t mid = times[times.size() / 2];
  auto at = ledger_->view(resolve(mid));
  ASSERT_TRUE(at.ok());
  EXPECT_EQ((*at)->seq(), expected_seq_at(times, mid));
}

TEST_F(AsOfTest, AsOfBeyondTheHeadIsInvalidParameterAsOf) {
  const std::uint64_t head = ledger_->head().seq;
  auto beyond = ledger_->view(head + 1);
  ASSERT_FALSE(beyond.ok());
  EXPECT_EQ(beyond.error().http, 400);
  EXPECT_EQ(beyond.error().code, "InvalidParameter.AsOf");
  auto far = ledger_->view(~0ull);
  ASSERT_FALSE(far.ok());
  EXPECT_EQ(far.error().code, "InvalidParameter.AsOf");
  auto at_head = ledger_->view(head);
  ASSERT_TRUE(at_head.ok());
  EXPECT_EQ((*at_head)->seq(), head);
  auto empty = ledger_->view(0);
  ASSERT_TRUE(empty.ok());
  std::size_t rows = 0;
  (*empty)->scan("", [&](std::string_view, std::string_view) {
    ++rows;
    return true;
  });
  EXPECT_EQ(rows, 0u) << "seq 0 is the empty state";
}

}  // namespace
}  // namespace sl
