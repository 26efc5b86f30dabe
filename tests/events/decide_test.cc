// The rules of SPEC.md §1.3–1.5 and the organization commands, as
// given (events folded by evolve) / when (a command through decide) / then
// (the exact events, or the exact HTTP status and error Code).
//
// Every rule has at least one test that fails when the rule is removed from
// events/decide.cc or events/state.cc. Setup either folds hand-written events
// (`given`) or runs commands through the rules themselves (`run`), which must
// succeed.

#include "events/decide.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "events/catalog.h"
#include "events/codec.h"

namespace sl {
namespace {

using Events = std::vector<Event>;

const std::string kHz = "cn-hangzhou";
const std::string kSh = "cn-shanghai";

// prefix + zero-padded n, `length` chars in all.
std::string make_id(const std::string& prefix, long n, std::size_t length) {
  std::string digits = std::to_string(n);
  return prefix + std::string(length - prefix.size() - digits.size(), '0') + digits;
}

const std::string kA = "1000000000000001";       // cn; owns kX
const std::string kB = "1000000000000002";       // cn
const std::string kC = "2000000000000003";       // intl
const std::string kD = "1000000000000004";       // cn
const std::string kNobody = "1999999999999999";  // never registered
const std::string kX = make_id("m-x", 1, 22);    // A's custom image in cn-hangzhou
const std::string kY = make_id("m-y", 1, 22);    // per-test extra image

// ---- events -----------------------------------------------------------------

Event ev(EventData d, const std::string& region = kHz) {
  Event e;
  e.region = region;
  e.data = std::move(d);
  return e;
}
Event registered(const std::string& id, const std::string& site) { return ev(AccountRegistered{id, site}, ""); }
Event role_authorized(const std::string& id) { return ev(EncryptShareRoleAuthorized{id}, ""); }
Event custom_image(const std::string& id, const std::string& owner, Origin origin = {},
                   const std::string& status = "Available", const std::string& region = kHz) {
  return ev(ImageCreated{id, owner, region, "img " + id, "custom", "", origin, status}, region);
}
Event shared(const std::string& image, std::vector<std::string> accounts) {
  return ev(ImageShared{image, std::move(accounts)});
}
Event unshared(const std::string& image, std::vector<std::string> accounts) {
  return ev(ImageUnshared{image, std::move(accounts)});
}
Event launched(const std::string& instance, const std::string& owner, const std::string& image,
               const std::string& disk, const std::string& payer = "", const std::string& product = "") {
  return ev(InstanceCreated{instance, owner, kHz, image, disk, payer, product});
}

Origin marketplace_origin(const std::string& product_code = "", bool paid = false) {
  Origin o;
  o.marketplace_derived = true;
  o.product_code = product_code;
  o.paid = paid;
  return o;
}
Origin encrypted_origin(const std::string& kms_key, Origin o = {}) {
  o.encrypted = true;
  o.kms_key = kms_key;
  return o;
}

// ---- commands ---------------------------------------------------------------

ModifyImageSharePermission modify(const std::string& image, std::vector<std::string> add,
                                  std::vector<std::string> remove = {}, const std::string& caller = kA,
                                  const std::string& region = kHz) {
  return ModifyImageSharePermission{caller, region, image, std::move(add), std::move(remove), std::nullopt};
}
ModifyImageSharePermission publicity(const std::string& image, bool is_public, const std::string& caller = kA) {
  return ModifyImageSharePermission{caller, kHz, image, {}, {}, is_public};
}

// ---- then -------------------------------------------------------------------

// An event as type@region + canonical payload: exact, and readable in failures.
std::string show(const Event& e) { return std::string(e.type()) + "@" + e.region + " " + encode_data(e.data); }
std::string show(const Events& es) {
  std::string out;
  for (const auto& e : es) out += "\n    " + show(e);
  return es.empty() ? "(no events)" : out;
}

testing::AssertionResult Produces(const Result<Events>& r, const Events& want) {
  if (!r.ok()) {
    return testing::AssertionFailure() << "rejected with " << r.error().http << " " << r.error().code << " ("
                                       << r.error().message << "); wanted" << show(want);
  }
  if (show(*r) != show(want)) return testing::AssertionFailure() << "got" << show(*r) << "\nwanted" << show(want);
  for (const auto& e : *r) {
    if (e.seq != 0 || e.time_us != 0 || !e.hash.empty() || !e.prev_hash.empty()) {
      return testing::AssertionFailure() << "decide() must leave seq, time and hashes to storage";
    }
  }
  return testing::AssertionSuccess();
}

testing::AssertionResult Rejects(const Result<Events>& r, int http, const std::string& code) {
  if (r.ok()) return testing::AssertionFailure() << "wanted " << http << " " << code << ", got" << show(*r);
  if (r.error().http != http || r.error().code != code) {
    return testing::AssertionFailure() << "wanted " << http << " " << code << ", got " << r.error().http << " "
                                       << r.error().code << " (" << r.error().message << ")";
  }
  return testing::AssertionSuccess();
}

// ---- the fixture --------------------------------------------------------------

// The built-in catalog, four accounts (A, B, D on the cn site, C on intl) and
// A's plain custom image kX in cn-hangzhou.
class Ledger : public testing::Test {
 protected:
  void SetUp() override {
    for (const auto& seed : builtin_catalog(limits_.regions)) run(seed);
    given({registered(kA, "cn"), registered(kB, "cn"), registered(kC, "intl"), registered(kD, "cn"),
           custom_image(kX, kA)});
  }

  // Folds events with evolve(), numbering them from the current head (1..n on
  // a fresh state) with one second between them.
  void given(Events events) {
    for (auto& e : events) {
      e.seq = state_.head_seq + 1;
      e.time_us = clock_us_ += 1'000'000;
      e.prev_hash = state_.head_hash;
      e.hash = make_id("", static_cast<long>(e.seq), 64);
      evolve(state_, e);
    }
  }

  Result<Events> when(const Command& c) const { return decide(state_, c, limits_); }

  // A setup step through the rules: the command must succeed; its events are folded.
  Events run(const Command& c) {
    auto r = when(c);
    if (!r.ok()) {
      ADD_FAILURE() << "setup command rejected: " << r.error().http << " " << r.error().code << " "
                    << r.error().message;
      return {};
    }
    given(*r);
    return *r;
  }

  static const SeedCatalogImage& catalog(const std::string& kind, const std::string& site = "", bool paid = false) {
    static const std::vector<SeedCatalogImage> seeds = builtin_catalog(Limits{}.regions);
    for (const auto& s : seeds) {
      if (s.region == kHz && s.kind == kind && s.site == site && s.paid == paid) return s;
    }
    ADD_FAILURE() << "no catalog image " << kind << "/" << site << "/" << paid;
    return seeds.front();
  }

  std::string new_id(const std::string& prefix) { return make_id(prefix, ++serial_, 22); }

  std::vector<std::string> register_accounts(int n, const std::string& site = "cn") {
    std::vector<std::string> out;
    for (int k = 0; k < n; ++k) {
      out.push_back(make_id("3", ++accounts_, 16));
      given({registered(out.back(), site)});
    }
    return out;
  }

  // Shares in calls of at most 10 accounts.
  void share_with(const std::string& image, const std::vector<std::string>& accounts, const std::string& owner = kA) {
    for (std::size_t at = 0; at < accounts.size(); at += 10) {
      auto end = accounts.begin() + static_cast<long>(std::min(at + 10, accounts.size()));
      run(modify(image, {accounts.begin() + static_cast<long>(at), end}, {}, owner));
    }
  }

  std::string launch(const std::string& owner, const std::string& image, const std::string& region = kHz) {
    std::string instance = new_id("i-"), disk = new_id("d-");
    run(RunInstances{owner, region, image, {instance}, {disk}});
    return instance;
  }
  // A custom image of `owner` made from an instance launched from `source`.
  std::string image_from(const std::string& owner, const std::string& source) {
    std::string id = new_id("m-");
    run(CreateImage{owner, kHz, launch(owner, source), id, ""});
    return id;
  }

  std::string disk(const std::string& instance) const { return state_.instance(instance)->disk_id; }
  std::string blocked(const std::string& instance) const { return state_.instance(instance)->blocked_reason; }
  bool can_use(const std::string& account, const std::string& image) const {
    const Image* x = state_.image(image);
    return x && state_.can_use(account, *x);
  }
  std::set<std::string> sources(const std::string& image, const std::string& account) const {
    std::set<std::string> out;
    if (const GrantSources* g = state_.grant(image, account)) {
      for (const auto& [source, since] : *g) out.emplace(as_view(source));
    }
    return out;
  }

  State state_;
  Limits limits_;
  std::int64_t clock_us_ = 1'700'000'000'000'000;
  long serial_ = 0;
  long accounts_ = 0;

  const std::string sys_ = catalog("system").image_id;
  const std::string lamp_cn_ = catalog("marketplace", "cn").image_id;
  const std::string waf_cn_ = catalog("marketplace", "cn", true).image_id;
  const std::string lamp_intl_ = catalog("marketplace", "intl").image_id;
  const std::string waf_code_ = catalog("marketplace", "cn", true).product_code;
};

// ============================================================================
// Catalog and accounts
// ============================================================================

using Catalog = Ledger;

TEST_F(Catalog, EveryRegionHasSystemImagesAndAFreeAndAPaidMarketplaceImagePerSite) {
  for (const auto& region : Limits{}.regions) {
    int system = 0, free_cn = 0, paid_cn = 0, free_intl = 0, paid_intl = 0;
    for (const auto& s : builtin_catalog(Limits{}.regions)) {
      if (s.region != region) continue;
      if (s.kind == "system") ++system;
      if (s.kind != "marketplace") continue;
      if (s.paid) {
        EXPECT_FALSE(s.product_code.empty()) << s.image_id;
      }
      (s.site == "cn" ? (s.paid ? paid_cn : free_cn) : (s.paid ? paid_intl : free_intl))++;
    }
    EXPECT_GE(system, 1) << region;
    EXPECT_GE(free_cn, 1) << region;
    EXPECT_GE(paid_cn, 1) << region;
    EXPECT_GE(free_intl, 1) << region;
    EXPECT_GE(paid_intl, 1) << region;
  }
}

TEST_F(Catalog, SeedingCreatesAvailableImagesOnceWithTheirOrigin) {
  const auto& waf = catalog("marketplace", "cn", true);
  const Image* x = state_.image(waf.image_id);
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->kind, "marketplace");
  EXPECT_EQ(x->site, "cn");
  EXPECT_EQ(x->status, "Available");
  EXPECT_EQ(x->origin, marketplace_origin(waf.product_code, true));
  EXPECT_TRUE(Produces(when(waf), {}));
}

using Accounts = Ledger;

TEST_F(Accounts, RegisteringAnAccountIssuesItsFirstAccessKey) {
  EXPECT_TRUE(Produces(when(RegisterAccount{"1000000000000099", "intl", "LTAIabcdefghijklmnopqrst"}),
                       {registered("1000000000000099", "intl"),
                        ev(AccessKeyIssued{"1000000000000099", "LTAIabcdefghijklmnopqrst"}, "")}));
}

TEST_F(Accounts, DuplicateAccountOrBadSiteIsRejected) {
  EXPECT_TRUE(Rejects(when(RegisterAccount{kA, "cn", "LTAIabcdefghijklmnopqrst"}), 409, "IdempotentParameterMismatch"));
  EXPECT_TRUE(Rejects(when(RegisterAccount{"1000000000000099", "us", "LTAIabcdefghijklmnopqrst"}), 400,
                      "InvalidParameter"));
}

TEST_F(Accounts, EncryptShareRoleIsAuthorizedAndRevokedOnce) {
  EXPECT_TRUE(Produces(when(SetEncryptShareRole{kA, true}), {role_authorized(kA)}));
  run(SetEncryptShareRole{kA, true});
  EXPECT_TRUE(Produces(when(SetEncryptShareRole{kA, true}), {}));
  EXPECT_TRUE(Produces(when(SetEncryptShareRole{kA, false}), {ev(EncryptShareRoleRevoked{kA}, "")}));
  EXPECT_TRUE(Rejects(when(SetEncryptShareRole{kNobody, true}), 404, "InvalidAccount.NotFound"));
}

// ============================================================================
// §1.3 ModifyImageSharePermission
// ============================================================================

using ShareRules = Ledger;

TEST_F(ShareRules, SharingWithAnAccountGrantsItTheImage) {
  EXPECT_TRUE(Produces(when(modify(kX, {kB})), {shared(kX, {kB})}));
  run(modify(kX, {kB}));
  EXPECT_TRUE(can_use(kB, kX));
  EXPECT_FALSE(can_use(kD, kX));
  EXPECT_EQ(sources(kX, kB), std::set<std::string>{"account"});
}

TEST_F(ShareRules, UnsharingRemovesTheGrant) {
  given({shared(kX, {kB})});
  EXPECT_TRUE(Produces(when(modify(kX, {}, {kB})), {unshared(kX, {kB})}));
  run(modify(kX, {}, {kB}));
  EXPECT_FALSE(can_use(kB, kX));
  EXPECT_EQ(state_.grant(kX, kB), nullptr);
}

TEST_F(ShareRules, FiftyFirstRecipientIsRejectedAndNothingChanges) {
  share_with(kX, register_accounts(50));
  ASSERT_EQ(state_.recipients(kX).direct, 50);
  auto fifty_first = register_accounts(1);
  EXPECT_TRUE(Rejects(when(modify(kX, fifty_first)), 403, "QuotaExceed.ShareImageUser"));
  EXPECT_EQ(state_.recipients(kX).direct, 50);
  EXPECT_FALSE(can_use(fifty_first[0], kX));
}

TEST_F(ShareRules, FiftiethRecipientIsAccepted) {
  share_with(kX, register_accounts(49));
  auto fiftieth = register_accounts(1);
  EXPECT_TRUE(Produces(when(modify(kX, fiftieth)), {shared(kX, fiftieth)}));
}

TEST_F(ShareRules, AddsThatWouldCrossFiftyAreRejectedWhole) {
  share_with(kX, register_accounts(45));
  auto nine = register_accounts(9);
  EXPECT_TRUE(Rejects(when(modify(kX, nine)), 403, "QuotaExceed.ShareImageUser"));
  // Not applied in part: the first five alone would have fitted.
  std::vector<std::string> five(nine.begin(), nine.begin() + 5);
  EXPECT_TRUE(Produces(when(modify(kX, five)), {shared(kX, five)}));
}

TEST_F(ShareRules, RemovesAreCountedBeforeAdds) {
  auto fifty = register_accounts(50);
  share_with(kX, fifty);
  auto five_new = register_accounts(5);
  std::vector<std::string> five_old(fifty.begin(), fifty.begin() + 5);
  EXPECT_TRUE(Produces(when(modify(kX, five_new, five_old)), {unshared(kX, five_old), shared(kX, five_new)}));
  std::vector<std::string> four_old(fifty.begin(), fifty.begin() + 4);
  EXPECT_TRUE(Rejects(when(modify(kX, five_new, four_old)), 403, "QuotaExceed.ShareImageUser"));
}

TEST_F(ShareRules, ReAddingCurrentRecipientsDoesNotCountTwice) {
  auto fifty = register_accounts(50);
  share_with(kX, fifty);
  std::vector<std::string> ten(fifty.begin(), fifty.begin() + 10);
  EXPECT_TRUE(Produces(when(modify(kX, ten)), {}));
}

TEST_F(ShareRules, MoreThanTenAddAccountsIsInvalidParameter) {
  auto eleven = register_accounts(11);
  EXPECT_TRUE(Rejects(when(modify(kX, eleven)), 400, "InvalidParameter"));
  eleven.pop_back();
  EXPECT_TRUE(Produces(when(modify(kX, eleven)), {shared(kX, eleven)}));
}

TEST_F(ShareRules, MoreThanTenRemoveAccountsIsInvalidParameter) {
  auto eleven = register_accounts(11);
  share_with(kX, eleven);
  EXPECT_TRUE(Rejects(when(modify(kX, {}, eleven)), 400, "InvalidParameter"));
  eleven.pop_back();
  EXPECT_TRUE(Produces(when(modify(kX, {}, eleven)), {unshared(kX, eleven)}));
}

TEST_F(ShareRules, SharingWithOneselfIsForbbiden) {
  EXPECT_TRUE(Rejects(when(modify(kX, {kA})), 404, "InvalidAccount.Forbbiden"));
}

TEST_F(ShareRules, SharingWithAnUnknownAccountIsAccountNotFound) {
  EXPECT_TRUE(Rejects(when(modify(kX, {kB, kNobody})), 404, "InvalidAccount.NotFound"));
}

TEST_F(ShareRules, SameAccountInAddAndRemoveIsInvalidParameter) {
  EXPECT_TRUE(Rejects(when(modify(kX, {kB}, {kB})), 400, "InvalidParameter"));
  given({shared(kX, {kB})});
  EXPECT_TRUE(Rejects(when(modify(kX, {kD, kB}, {kB})), 400, "InvalidParameter"));
}

TEST_F(ShareRules, RecipientCannotReshareAReceivedImage) {
  given({shared(kX, {kB})});
  EXPECT_TRUE(Rejects(when(modify(kX, {kD}, {}, kB)), 404, "InvalidImageId.NotFound"));
  EXPECT_TRUE(Rejects(when(modify(kX, {}, {kB}, kB)), 404, "InvalidImageId.NotFound"));
}

TEST_F(ShareRules, SystemAndMarketplaceImagesAreNotFound) {
  EXPECT_TRUE(Rejects(when(modify(sys_, {kB})), 404, "InvalidImageId.NotFound"));
  EXPECT_TRUE(Rejects(when(modify(lamp_cn_, {kB})), 404, "InvalidImageId.NotFound"));
  EXPECT_TRUE(Rejects(when(modify(waf_cn_, {kB})), 404, "InvalidImageId.NotFound"));
  EXPECT_TRUE(Rejects(when(publicity(sys_, true)), 404, "InvalidImageId.NotFound"));
}

TEST_F(ShareRules, ImageNamedInAnotherRegionIsNotFound) {
  EXPECT_TRUE(Rejects(when(modify(kX, {kB}, {}, kA, kSh)), 404, "InvalidImageId.NotFound"));
}

TEST_F(ShareRules, UnknownImageIsNotFound) {
  EXPECT_TRUE(Rejects(when(modify(kY, {kB})), 404, "InvalidImageId.NotFound"));
}

TEST_F(ShareRules, UnknownRegionIsRegionNotFound) {
  EXPECT_TRUE(Rejects(when(modify(kX, {kB}, {}, kA, "cn-atlantis")), 404, "InvalidRegionId.NotFound"));
}

TEST_F(ShareRules, ImageStillCreatingCannotBeShared) {
  given({custom_image(kY, kA, {}, "Creating")});
  EXPECT_TRUE(Rejects(when(modify(kY, {kB})), 403, "OperationDenied.InvalidImageStatus"));
  EXPECT_TRUE(Rejects(when(publicity(kY, true)), 403, "OperationDenied.InvalidImageStatus"));
  given({ev(ImageBecameAvailable{kY})});
  EXPECT_TRUE(Produces(when(modify(kY, {kB})), {shared(kY, {kB})}));
}

TEST_F(ShareRules, ReAddingACurrentRecipientIsANoOp) {
  given({shared(kX, {kB})});
  EXPECT_TRUE(Produces(when(modify(kX, {kB})), {}));
}

TEST_F(ShareRules, RemovingAnAccountWithoutAGrantIsANoOp) {
  EXPECT_TRUE(Produces(when(modify(kX, {}, {kB})), {}));
  EXPECT_TRUE(Produces(when(modify(kX, {}, {kNobody})), {}));
}

TEST_F(ShareRules, OnlyNewlyAddedAccountsAppearInTheEvent) {
  given({shared(kX, {kB})});
  EXPECT_TRUE(Produces(when(modify(kX, {kB, kD})), {shared(kX, {kD})}));
  EXPECT_TRUE(Produces(when(modify(kX, {}, {kB, kD})), {unshared(kX, {kB})}));
}

TEST_F(ShareRules, AnAccountNamedTwiceIsSharedOnce) {
  EXPECT_TRUE(Produces(when(modify(kX, {kB, kD, kB})), {shared(kX, {kB, kD})}));
}

TEST_F(ShareRules, AddingAndRemovingInOneCallUnsharesThenShares) {
  given({shared(kX, {kB})});
  EXPECT_TRUE(Produces(when(modify(kX, {kD}, {kB})), {unshared(kX, {kB}), shared(kX, {kD})}));
}

TEST_F(ShareRules, MakingAnImagePublicGrantsEveryAccountOfEitherSite) {
  EXPECT_TRUE(Produces(when(publicity(kX, true)), {ev(ImagePublicityChanged{kX, true})}));
  run(publicity(kX, true));
  EXPECT_TRUE(can_use(kB, kX));
  EXPECT_TRUE(can_use(kC, kX));
  EXPECT_TRUE(Produces(when(publicity(kX, true)), {}));
  EXPECT_TRUE(Produces(when(publicity(kX, false)), {ev(ImagePublicityChanged{kX, false})}));
  run(publicity(kX, false));
  EXPECT_FALSE(can_use(kB, kX));
  EXPECT_TRUE(Produces(when(publicity(kX, false)), {}));
}

// ---- §1.3 the order of the checks ------------------------------------------

using ShareOrder = Ledger;

TEST_F(ShareOrder, NotOwnedComesBeforeTooManyAccounts) {
  given({shared(kX, {kB})});
  EXPECT_TRUE(Rejects(when(modify(kX, register_accounts(11), {}, kB)), 404, "InvalidImageId.NotFound"));
}

TEST_F(ShareOrder, ImageStatusComesBeforeTooManyAccounts) {
  given({custom_image(kY, kA, {}, "Creating")});
  EXPECT_TRUE(Rejects(when(modify(kY, register_accounts(11))), 403, "OperationDenied.InvalidImageStatus"));
}

TEST_F(ShareOrder, ImageStatusComesBeforeABadAccount) {
  given({custom_image(kY, kA, {}, "Creating")});
  EXPECT_TRUE(Rejects(when(modify(kY, {kNobody})), 403, "OperationDenied.InvalidImageStatus"));
  EXPECT_TRUE(Rejects(when(modify(kY, {kA})), 403, "OperationDenied.InvalidImageStatus"));
}

TEST_F(ShareOrder, TooManyAccountsComesBeforeABadAccount) {
  auto accounts = register_accounts(10);
  accounts.insert(accounts.begin(), kNobody);
  EXPECT_TRUE(Rejects(when(modify(kX, accounts)), 400, "InvalidParameter"));
}

TEST_F(ShareOrder, FirstBadAccountInParameterOrderDecides) {
  EXPECT_TRUE(Rejects(when(modify(kX, {kB, kNobody, kA})), 404, "InvalidAccount.NotFound"));
  EXPECT_TRUE(Rejects(when(modify(kX, {kB, kA, kNobody})), 404, "InvalidAccount.Forbbiden"));
}

TEST_F(ShareOrder, BadAccountComesBeforeEncryption) {
  given({custom_image(kY, kA, encrypted_origin("service"))});
  EXPECT_TRUE(Rejects(when(modify(kY, {kNobody})), 404, "InvalidAccount.NotFound"));
  EXPECT_TRUE(Rejects(when(modify(kY, {kA})), 404, "InvalidAccount.Forbbiden"));
  EXPECT_TRUE(Rejects(when(modify(kY, {kB}, {kB})), 400, "InvalidParameter"));
}

TEST_F(ShareOrder, EncryptionComesBeforeSiteMismatch) {
  given({custom_image(kY, kA, encrypted_origin("key-1", marketplace_origin()))});
  EXPECT_TRUE(Rejects(when(modify(kY, {kC})), 403, "AssumeRoleError"));
}

TEST_F(ShareOrder, SiteMismatchComesBeforeRecipientQuota) {
  given({custom_image(kY, kA, marketplace_origin())});
  share_with(kY, register_accounts(50));
  EXPECT_TRUE(Rejects(when(modify(kY, {kC})), 403, "InvalidImageId.BidMismatch"));
}

TEST_F(ShareOrder, EncryptionComesBeforeRecipientQuota) {
  given({custom_image(kY, kA, encrypted_origin("key-1")), role_authorized(kA)});
  share_with(kY, register_accounts(50));
  run(SetEncryptShareRole{kA, false});
  EXPECT_TRUE(Rejects(when(modify(kY, {kB})), 403, "AssumeRoleError"));
}

// ---- §1.3 rule 5: encryption ------------------------------------------------

using EncryptedImages = Ledger;

TEST_F(EncryptedImages, ServiceKeyEncryptedImageCannotBeShared) {
  given({custom_image(kY, kA, encrypted_origin("service")), role_authorized(kA)});
  EXPECT_TRUE(Rejects(when(modify(kY, {kB})), 403, "InvalidOperation.ServiceKeyEncryptedImageUnsupported"));
}

TEST_F(EncryptedImages, CustomerKeyImageNeedsTheOwnersShareRole) {
  given({custom_image(kY, kA, encrypted_origin("key-1"))});
  EXPECT_TRUE(Rejects(when(modify(kY, {kB})), 403, "AssumeRoleError"));
  given({role_authorized(kB)});  // the recipient's role does not count
  EXPECT_TRUE(Rejects(when(modify(kY, {kB})), 403, "AssumeRoleError"));
  given({role_authorized(kA)});
  EXPECT_TRUE(Produces(when(modify(kY, {kB})), {shared(kY, {kB})}));
}

TEST_F(EncryptedImages, RemoveOnlyAndReAddCallsAreNotChecked) {
  given({custom_image(kY, kA, encrypted_origin("key-1")), role_authorized(kA), shared(kY, {kB, kD}),
         ev(EncryptShareRoleRevoked{kA}, "")});
  EXPECT_TRUE(Produces(when(modify(kY, {kB})), {}));
  EXPECT_TRUE(Produces(when(modify(kY, {}, {kB})), {unshared(kY, {kB})}));
  EXPECT_TRUE(Produces(when(modify(kY, {kB}, {kD})), {unshared(kY, {kD})}));
  EXPECT_TRUE(Rejects(when(modify(kY, {kC})), 403, "AssumeRoleError"));
}

TEST_F(EncryptedImages, ServiceKeyImageCanStillBeUnshared) {
  given({custom_image(kY, kA, encrypted_origin("service")), shared(kY, {kB})});
  EXPECT_TRUE(Produces(when(modify(kY, {}, {kB})), {unshared(kY, {kB})}));
}

// ---- §1.3 rule 6: sites -----------------------------------------------------

using Sites = Ledger;

TEST_F(Sites, MarketplaceDerivedImageCannotBeSharedToTheOtherSite) {
  std::string y = image_from(kA, lamp_cn_);
  EXPECT_TRUE(Rejects(when(modify(y, {kC})), 403, "InvalidImageId.BidMismatch"));
  EXPECT_TRUE(Rejects(when(modify(y, {kB, kC})), 403, "InvalidImageId.BidMismatch"));
  EXPECT_TRUE(Produces(when(modify(y, {kB})), {shared(y, {kB})}));
}

TEST_F(Sites, IntlMarketplaceDerivedImageCannotBeSharedToCn) {
  std::string y = image_from(kC, lamp_intl_);
  EXPECT_TRUE(Rejects(when(modify(y, {kB}, {}, kC)), 403, "InvalidImageId.BidMismatch"));
}

TEST_F(Sites, PlainCustomImageSharesAcrossSites) {
  EXPECT_TRUE(Produces(when(modify(kX, {kC})), {shared(kX, {kC})}));
  run(modify(kX, {kC}));
  EXPECT_TRUE(can_use(kC, kX));
}

TEST_F(Sites, MakingAMarketplaceDerivedImagePublicIsBidMismatch) {
  std::string y = image_from(kA, lamp_cn_);
  EXPECT_TRUE(Rejects(when(publicity(y, true)), 403, "InvalidImageId.BidMismatch"));
  EXPECT_TRUE(Produces(when(publicity(y, false)), {}));
}

TEST_F(Sites, RemovingOrReAddingAnOtherSiteRecipientIsNotChecked) {
  given({custom_image(kY, kA, marketplace_origin()), shared(kY, {kC})});
  EXPECT_TRUE(Produces(when(modify(kY, {kC})), {}));
  EXPECT_TRUE(Produces(when(modify(kY, {}, {kC})), {unshared(kY, {kC})}));
}

TEST_F(Sites, MarketplaceImagesAreUsableOnlyOnTheirSite) {
  EXPECT_TRUE(can_use(kB, lamp_cn_));
  EXPECT_FALSE(can_use(kC, lamp_cn_));
  EXPECT_TRUE(can_use(kC, lamp_intl_));
  EXPECT_TRUE(can_use(kC, sys_));
  EXPECT_TRUE(Rejects(when(RunInstances{kC, kHz, lamp_cn_, {new_id("i-")}, {new_id("d-")}}), 404,
                      "InvalidImageId.NotFound"));
}

// ============================================================================
// §1.4 DeleteImage
// ============================================================================

using DeleteImageRules = Ledger;

TEST_F(DeleteImageRules, UnusedUnsharedImageIsDeleted) {
  EXPECT_TRUE(Produces(when(DeleteImage{kA, kHz, kX, false}), {ev(ImageDeleted{kX, false, {}})}));
}

TEST_F(DeleteImageRules, ImageSharedByAccountIsImageUseSharedEvenWithForce) {
  given({shared(kX, {kB})});
  EXPECT_TRUE(Rejects(when(DeleteImage{kA, kHz, kX, false}), 403, "ImageUseShared"));
  EXPECT_TRUE(Rejects(when(DeleteImage{kA, kHz, kX, true}), 403, "ImageUseShared"));
  given({unshared(kX, {kB})});
  EXPECT_TRUE(Produces(when(DeleteImage{kA, kHz, kX, false}), {ev(ImageDeleted{kX, false, {}})}));
}

TEST_F(DeleteImageRules, PublicImageIsImageUseSharedEvenWithForce) {
  given({ev(ImagePublicityChanged{kX, true})});
  EXPECT_TRUE(Rejects(when(DeleteImage{kA, kHz, kX, false}), 403, "ImageUseShared"));
  EXPECT_TRUE(Rejects(when(DeleteImage{kA, kHz, kX, true}), 403, "ImageUseShared"));
}

TEST_F(DeleteImageRules, ImageInAResourceShareIsImageUseSharedEvenWithForce) {
  const std::string rs = "rs-0000000001";
  run(CreateResourceShare{kA, rs, "to-b", {kX}, {kB}, true});
  EXPECT_TRUE(Rejects(when(DeleteImage{kA, kHz, kX, true}), 403, "ImageUseShared"));
  // Still associated as a resource even with no target left.
  run(DisassociateResourceShare{kA, rs, {}, {kB}});
  EXPECT_TRUE(Rejects(when(DeleteImage{kA, kHz, kX, true}), 403, "ImageUseShared"));
  run(DeleteResourceShare{kA, rs});
  EXPECT_TRUE(Produces(when(DeleteImage{kA, kHz, kX, true}), {ev(ImageDeleted{kX, true, {}})}));
}

TEST_F(DeleteImageRules, SharingIsCheckedBeforeUse) {
  launch(kA, kX);
  given({shared(kX, {kB})});
  EXPECT_TRUE(Rejects(when(DeleteImage{kA, kHz, kX, false}), 403, "ImageUseShared"));
}

TEST_F(DeleteImageRules, ImageUsedByAnotherAccountsInstanceNeedsForce) {
  given({shared(kX, {kB})});
  std::string ib = launch(kB, kX);
  run(modify(kX, {}, {kB}));
  EXPECT_TRUE(Rejects(when(DeleteImage{kA, kHz, kX, false}), 403, "ImageUsingByInstance"));
  EXPECT_TRUE(Produces(when(DeleteImage{kA, kHz, kX, true}), {ev(ImageDeleted{kX, true, {ib}})}));
}

TEST_F(DeleteImageRules, ForcedDeleteListsEveryInstanceItBlocks) {
  given({shared(kX, {kB})});
  std::string ia = launch(kA, kX);
  std::string ib = launch(kB, kX);
  launch(kA, sys_);
  run(modify(kX, {}, {kB}));
  EXPECT_TRUE(Rejects(when(DeleteImage{kA, kHz, kX, false}), 403, "ImageUsingByInstance"));
  EXPECT_TRUE(Produces(when(DeleteImage{kA, kHz, kX, true}), {ev(ImageDeleted{kX, true, {ia, ib}})}));
}

TEST_F(DeleteImageRules, DeletedAndReplacedInstancesNoLongerUseTheImage) {
  std::string gone = launch(kA, kX);
  std::string moved = launch(kA, kX);
  run(DeleteInstance{kA, gone});
  run(ReplaceSystemDisk{kA, moved, sys_, new_id("d-")});
  EXPECT_TRUE(Produces(when(DeleteImage{kA, kHz, kX, false}), {ev(ImageDeleted{kX, false, {}})}));
}

TEST_F(DeleteImageRules, NonOwnerGetsImageNotFound) {
  EXPECT_TRUE(Rejects(when(DeleteImage{kB, kHz, kX, true}), 404, "InvalidImageId.NotFound"));
  given({shared(kX, {kB})});
  EXPECT_TRUE(Rejects(when(DeleteImage{kB, kHz, kX, true}), 404, "InvalidImageId.NotFound"));
  EXPECT_TRUE(Rejects(when(DeleteImage{kA, kHz, sys_, true}), 404, "InvalidImageId.NotFound"));
}

TEST_F(DeleteImageRules, OtherOrUnknownRegionIsNotFound) {
  EXPECT_TRUE(Rejects(when(DeleteImage{kA, kSh, kX, false}), 404, "InvalidImageId.NotFound"));
  EXPECT_TRUE(Rejects(when(DeleteImage{kA, "cn-atlantis", kX, false}), 404, "InvalidRegionId.NotFound"));
}

TEST_F(DeleteImageRules, DeletedImageIsNotFoundForEveryLaterCall) {
  std::string ia = launch(kA, kX);
  run(DeleteImage{kA, kHz, kX, true});
  const char* kNotFound = "InvalidImageId.NotFound";
  EXPECT_TRUE(Rejects(when(modify(kX, {kB})), 404, kNotFound));
  EXPECT_TRUE(Rejects(when(modify(kX, {}, {kB})), 404, kNotFound));
  EXPECT_TRUE(Rejects(when(publicity(kX, true)), 404, kNotFound));
  EXPECT_TRUE(Rejects(when(DeleteImage{kA, kHz, kX, true}), 404, kNotFound));
  EXPECT_TRUE(Rejects(when(RunInstances{kA, kHz, kX, {new_id("i-")}, {new_id("d-")}}), 404, kNotFound));
  EXPECT_TRUE(Rejects(when(CopyImage{kA, kHz, kX, kSh, new_id("m-"), "", false, "", true}), 404, kNotFound));
  EXPECT_TRUE(Rejects(when(ReplaceSystemDisk{kA, ia, kX, new_id("d-")}), 404, kNotFound));
  EXPECT_TRUE(Rejects(when(CreateResourceShare{kA, "rs-0000000001", "s", {kX}, {kB}, true}), 404, kNotFound));
  EXPECT_FALSE(can_use(kA, kX));
}

TEST_F(DeleteImageRules, DeletingFreesTheOwnersQuotaSlot) {
  limits_.image_quota = 2;
  std::string y = image_from(kA, sys_);
  std::string instance = launch(kA, sys_);
  EXPECT_TRUE(Rejects(when(CreateImage{kA, kHz, instance, new_id("m-"), ""}), 403, "QuotaExceed.Image"));
  run(DeleteImage{kA, kHz, y, false});
  std::string z = new_id("m-");
  EXPECT_TRUE(Produces(when(CreateImage{kA, kHz, instance, z, "again"}),
                       {ev(ImageCreated{z, kA, kHz, "again", "custom", "", Origin{}, "Available"})}));
}

// ============================================================================
// §1.4 reinit blocking, ReInitDisk, ReplaceSystemDisk, DeleteInstance
// ============================================================================

using Reinit = Ledger;

TEST_F(Reinit, UnshareBlocksTheRecipientsInstance) {
  given({shared(kX, {kB})});
  std::string ib = launch(kB, kX);
  EXPECT_EQ(blocked(ib), "");
  EXPECT_TRUE(Produces(when(ReInitDisk{kB, disk(ib)}), {ev(SystemDiskReinitialized{ib})}));
  run(modify(kX, {}, {kB}));
  EXPECT_EQ(blocked(ib), "image_unshared");
  EXPECT_TRUE(Rejects(when(ReInitDisk{kB, disk(ib)}), 403, "OperationDenied.ImageNotValid"));
}

TEST_F(Reinit, UnshareBlocksOnlyThatRecipientsInstances) {
  given({shared(kX, {kB, kC})});
  std::string b1 = launch(kB, kX), b2 = launch(kB, kX), ic = launch(kC, kX);
  run(modify(kX, {}, {kB}));
  EXPECT_EQ(blocked(b1), "image_unshared");
  EXPECT_EQ(blocked(b2), "image_unshared");
  EXPECT_EQ(blocked(ic), "");
  run(modify(kX, {}, {kC}));
  EXPECT_EQ(blocked(ic), "image_unshared");
}

TEST_F(Reinit, OwnersOwnInstanceIsNotBlockedByAnUnshare) {
  std::string ia = launch(kA, kX);
  given({shared(kX, {kB}), unshared(kX, {kB})});
  EXPECT_EQ(blocked(ia), "");
  EXPECT_TRUE(Produces(when(ReInitDisk{kA, disk(ia)}), {ev(SystemDiskReinitialized{ia})}));
}

TEST_F(Reinit, ReSharingUnblocks) {
  given({shared(kX, {kB})});
  std::string ib = launch(kB, kX);
  run(modify(kX, {}, {kB}));
  run(modify(kX, {kB}));
  EXPECT_EQ(blocked(ib), "");
  EXPECT_TRUE(Produces(when(ReInitDisk{kB, disk(ib)}), {ev(SystemDiskReinitialized{ib})}));
}

TEST_F(Reinit, AnotherGrantKeepsTheInstanceUnblocked) {
  given({shared(kX, {kB}), ev(ImagePublicityChanged{kX, true})});
  std::string ib = launch(kB, kX);
  run(modify(kX, {}, {kB}));
  EXPECT_EQ(blocked(ib), "");
  run(publicity(kX, false));
  EXPECT_EQ(blocked(ib), "image_unshared");
}

TEST_F(Reinit, EndingPublicityBlocksInstancesLaunchedFromThePublicImage) {
  given({ev(ImagePublicityChanged{kX, true})});
  std::string ic = launch(kC, kX);
  run(publicity(kX, false));
  EXPECT_EQ(blocked(ic), "image_unshared");
  EXPECT_TRUE(Rejects(when(ReInitDisk{kC, disk(ic)}), 403, "OperationDenied.ImageNotValid"));
}

TEST_F(Reinit, DeletionBlocksPermanently) {
  given({shared(kX, {kB})});
  std::string ib = launch(kB, kX);
  std::string ia = launch(kA, kX);
  run(modify(kX, {}, {kB}));
  ASSERT_EQ(blocked(ib), "image_unshared");
  run(DeleteImage{kA, kHz, kX, true});
  EXPECT_EQ(blocked(ib), "image_deleted");
  EXPECT_EQ(blocked(ia), "image_deleted");
  EXPECT_TRUE(Rejects(when(ReInitDisk{kB, disk(ib)}), 403, "SharedImageDeleted"));
  EXPECT_TRUE(Rejects(when(ReInitDisk{kA, disk(ia)}), 403, "SharedImageDeleted"));
  // No way back: the image cannot be shared again, and nothing else unblocks it.
  EXPECT_TRUE(Rejects(when(modify(kX, {kB})), 404, "InvalidImageId.NotFound"));
  given({shared(kX, {kB})});  // even a grant arriving from the log
  EXPECT_EQ(blocked(ib), "image_deleted");
}

TEST_F(Reinit, ReplacingTheSystemDiskWithAUsableImageUnblocks) {
  given({shared(kX, {kB})});
  std::string ib = launch(kB, kX);
  std::string old_disk = disk(ib);
  run(modify(kX, {}, {kB}));
  std::string new_disk = new_id("d-");
  EXPECT_TRUE(Rejects(when(ReplaceSystemDisk{kB, ib, kX, new_disk}), 404, "InvalidImageId.NotFound"));
  EXPECT_TRUE(Produces(when(ReplaceSystemDisk{kB, ib, sys_, new_disk}), {ev(SystemDiskReplaced{ib, sys_, new_disk})}));
  run(ReplaceSystemDisk{kB, ib, sys_, new_disk});
  EXPECT_EQ(blocked(ib), "");
  EXPECT_TRUE(Produces(when(ReInitDisk{kB, new_disk}), {ev(SystemDiskReinitialized{ib})}));
  EXPECT_TRUE(Rejects(when(ReInitDisk{kB, old_disk}), 404, "InvalidDiskId.NotFound"));
}

TEST_F(Reinit, ReplacingTheSystemDiskMovesOffADeletedImage) {
  std::string ia = launch(kA, kX);
  run(DeleteImage{kA, kHz, kX, true});
  std::string new_disk = new_id("d-");
  run(ReplaceSystemDisk{kA, ia, sys_, new_disk});
  EXPECT_EQ(blocked(ia), "");
  EXPECT_TRUE(Produces(when(ReInitDisk{kA, new_disk}), {ev(SystemDiskReinitialized{ia})}));
}

TEST_F(Reinit, ReplaceSystemDiskNeedsAnImageInTheInstancesRegion) {
  std::string ia = launch(kA, kX);
  given({custom_image(kY, kA, {}, "Available", kSh)});
  EXPECT_TRUE(Rejects(when(ReplaceSystemDisk{kA, ia, kY, new_id("d-")}), 404, "InvalidImageId.NotFound"));
}

TEST_F(Reinit, OtherAccountsDisksAndInstancesAreNotFound) {
  std::string ia = launch(kA, kX);
  EXPECT_TRUE(Rejects(when(ReInitDisk{kB, disk(ia)}), 404, "InvalidDiskId.NotFound"));
  EXPECT_TRUE(Rejects(when(ReplaceSystemDisk{kB, ia, sys_, new_id("d-")}), 404, "InvalidInstanceId.NotFound"));
  EXPECT_TRUE(Rejects(when(DeleteInstance{kB, ia}), 404, "InvalidInstanceId.NotFound"));
  EXPECT_TRUE(Rejects(when(ReInitDisk{kA, new_id("d-")}), 404, "InvalidDiskId.NotFound"));
  EXPECT_TRUE(Rejects(when(DeleteInstance{kA, new_id("i-")}), 404, "InvalidInstanceId.NotFound"));
  EXPECT_TRUE(Produces(when(DeleteInstance{kA, ia}), {ev(InstanceDeleted{ia})}));
}

TEST_F(Reinit, DeletedInstanceIsNotFound) {
  std::string ia = launch(kA, kX);
  std::string d = disk(ia);
  run(DeleteInstance{kA, ia});
  EXPECT_TRUE(Rejects(when(DeleteInstance{kA, ia}), 404, "InvalidInstanceId.NotFound"));
  EXPECT_TRUE(Rejects(when(ReInitDisk{kA, d}), 404, "InvalidDiskId.NotFound"));
}

// ============================================================================
// RunInstances, §1.5 billing
// ============================================================================

using Launch = Ledger;

TEST_F(Launch, RecipientLaunchesASharedImageUntilItIsUnshared) {
  given({shared(kX, {kB})});
  std::string i = new_id("i-"), d = new_id("d-");
  EXPECT_TRUE(Produces(when(RunInstances{kB, kHz, kX, {i}, {d}}), {launched(i, kB, kX, d)}));
  run(modify(kX, {}, {kB}));
  EXPECT_TRUE(Rejects(when(RunInstances{kB, kHz, kX, {i}, {d}}), 404, "InvalidImageId.NotFound"));
}

TEST_F(Launch, NonRecipientGetsImageNotFound) {
  EXPECT_TRUE(Rejects(when(RunInstances{kB, kHz, kX, {new_id("i-")}, {new_id("d-")}}), 404, "InvalidImageId.NotFound"));
}

TEST_F(Launch, ImageOfAnotherRegionIsNotFound) {
  EXPECT_TRUE(Rejects(when(RunInstances{kA, kSh, kX, {new_id("i-")}, {new_id("d-")}}), 404, "InvalidImageId.NotFound"));
}

TEST_F(Launch, UnknownRegionIsRegionNotFound) {
  EXPECT_TRUE(
      Rejects(when(RunInstances{kA, "cn-atlantis", kX, {new_id("i-")}, {new_id("d-")}}), 404, "InvalidRegionId.NotFound"));
}

TEST_F(Launch, ImageStillCreatingCannotBeLaunched) {
  given({custom_image(kY, kA, {}, "Creating")});
  EXPECT_TRUE(Rejects(when(RunInstances{kA, kHz, kY, {new_id("i-")}, {new_id("d-")}}), 403,
                      "OperationDenied.InvalidImageStatus"));
}

TEST_F(Launch, AmountLaunchesOneInstancePerId) {
  std::string i1 = new_id("i-"), d1 = new_id("d-"), i2 = new_id("i-"), d2 = new_id("d-");
  EXPECT_TRUE(Produces(when(RunInstances{kA, kHz, kX, {i1, i2}, {d1, d2}}),
                       {launched(i1, kA, kX, d1), launched(i2, kA, kX, d2)}));
}

using Billing = Ledger;

TEST_F(Billing, PaidMarketplaceImageBillsTheLauncher) {
  std::string i = new_id("i-"), d = new_id("d-");
  EXPECT_TRUE(Produces(when(RunInstances{kA, kHz, waf_cn_, {i}, {d}}), {launched(i, kA, waf_cn_, d, kA, waf_code_)}));
}

TEST_F(Billing, PaidOriginImageSharedToAnotherAccountBillsTheRecipient) {
  std::string y = image_from(kA, waf_cn_);
  run(modify(y, {kB}));
  std::string i = new_id("i-"), d = new_id("d-");
  EXPECT_TRUE(Produces(when(RunInstances{kB, kHz, y, {i}, {d}}), {launched(i, kB, y, d, kB, waf_code_)}));
}

TEST_F(Billing, FreeImagesHaveNoImageFeePayer) {
  std::string i = new_id("i-"), d = new_id("d-");
  EXPECT_TRUE(Produces(when(RunInstances{kA, kHz, lamp_cn_, {i}, {d}}), {launched(i, kA, lamp_cn_, d)}));
  std::string y = image_from(kA, lamp_cn_);
  EXPECT_TRUE(Produces(when(RunInstances{kA, kHz, y, {i}, {d}}), {launched(i, kA, y, d)}));
}

// ---- §1.5 custom-image quota ------------------------------------------------

using ImageQuota = Ledger;

TEST_F(ImageQuota, CreateImageAtQuotaIsQuotaExceed) {
  limits_.image_quota = 1;  // A already owns kX here
  std::string ia = launch(kA, sys_);
  EXPECT_TRUE(Rejects(when(CreateImage{kA, kHz, ia, new_id("m-"), ""}), 403, "QuotaExceed.Image"));
  // Per account: B has none yet.
  std::string ib = launch(kB, sys_);
  EXPECT_TRUE(when(CreateImage{kB, kHz, ib, new_id("m-"), ""}).ok());
}

TEST_F(ImageQuota, CopyImageIntoAFullRegionIsQuotaExceed) {
  limits_.image_quota = 1;
  EXPECT_TRUE(Rejects(when(CopyImage{kA, kHz, kX, kHz, new_id("m-"), "", false, "", true}), 403, "QuotaExceed.Image"));
  run(CopyImage{kA, kHz, kX, kSh, new_id("m-"), "", false, "", true});  // per region: Shanghai had room
  EXPECT_TRUE(Rejects(when(CopyImage{kA, kHz, kX, kSh, new_id("m-"), "", false, "", true}), 403, "QuotaExceed.Image"));
}

TEST_F(ImageQuota, SharedImagesDoNotCountAgainstTheRecipient) {
  limits_.image_quota = 1;
  given({custom_image(kY, kD), shared(kX, {kB}), shared(kY, {kB})});
  std::string ib = launch(kB, sys_);
  run(CreateImage{kB, kHz, ib, new_id("m-"), ""});  // B's one own image, despite two shared ones
  EXPECT_TRUE(Rejects(when(CreateImage{kB, kHz, ib, new_id("m-"), ""}), 403, "QuotaExceed.Image"));
  // At quota, B still launches what is shared with it.
  std::string i = new_id("i-"), d = new_id("d-");
  EXPECT_TRUE(Produces(when(RunInstances{kB, kHz, kX, {i}, {d}}), {launched(i, kB, kX, d)}));
}

TEST_F(ImageQuota, SharingWithAnAccountAtQuotaSucceeds) {
  limits_.image_quota = 1;
  given({custom_image(kY, kB)});
  EXPECT_TRUE(Produces(when(modify(kX, {kB})), {shared(kX, {kB})}));
}

// ============================================================================
// CopyImage, CreateImage
// ============================================================================

using CopyImageRules = Ledger;

TEST_F(CopyImageRules, OwnerCopiesIntoAnotherRegion) {
  std::string y = new_id("m-");
  EXPECT_TRUE(Produces(when(CopyImage{kA, kHz, kX, kSh, y, "copy", false, "", true}),
                       {ev(ImageCreated{y, kA, kSh, "copy", "custom", "", Origin{}, "Available"}, kSh)}));
}

TEST_F(CopyImageRules, RecipientCopyInTheImagesRegionIsSameRegionOnly) {
  given({shared(kX, {kB})});
  EXPECT_TRUE(Rejects(when(CopyImage{kB, kHz, kX, kSh, new_id("m-"), "", false, "", true}), 403,
                      "OperationDenied.SameRegionOnly"));
}

TEST_F(CopyImageRules, RecipientCopyNamingAnotherRegionIsImageNotFound) {
  given({shared(kX, {kB})});
  EXPECT_TRUE(Rejects(when(CopyImage{kB, kSh, kX, kHz, new_id("m-"), "", false, "", true}), 404,
                      "InvalidImageId.NotFound"));
}

TEST_F(CopyImageRules, NonRecipientCopyIsImageNotFound) {
  EXPECT_TRUE(Rejects(when(CopyImage{kB, kHz, kX, kSh, new_id("m-"), "", false, "", true}), 404,
                      "InvalidImageId.NotFound"));
}

TEST_F(CopyImageRules, UnknownRegionIsRegionNotFound) {
  EXPECT_TRUE(Rejects(when(CopyImage{kA, kHz, kX, "cn-atlantis", new_id("m-"), "", false, "", true}), 404,
                      "InvalidRegionId.NotFound"));
  EXPECT_TRUE(Rejects(when(CopyImage{kA, "cn-atlantis", kX, kSh, new_id("m-"), "", false, "", true}), 404,
                      "InvalidRegionId.NotFound"));
}

TEST_F(CopyImageRules, EncryptedCopyRecordsTheKeyAndKeepsTheOrigin) {
  std::string y = image_from(kA, waf_cn_);
  std::string with_key = new_id("m-"), with_service = new_id("m-");
  Origin paid = marketplace_origin(waf_code_, true);
  EXPECT_TRUE(Produces(when(CopyImage{kA, kHz, y, kSh, with_key, "k", true, "key-123", true}),
                       {ev(ImageCreated{with_key, kA, kSh, "k", "custom", "", encrypted_origin("key-123", paid),
                                        "Available"},
                           kSh)}));
  EXPECT_TRUE(Produces(when(CopyImage{kA, kHz, y, kSh, with_service, "s", true, "", true}),
                       {ev(ImageCreated{with_service, kA, kSh, "s", "custom", "", encrypted_origin("service", paid),
                                        "Available"},
                           kSh)}));
}

TEST_F(CopyImageRules, ImageStillCreatingCannotBeCopied) {
  given({custom_image(kY, kA, {}, "Creating")});
  EXPECT_TRUE(Rejects(when(CopyImage{kA, kHz, kY, kSh, new_id("m-"), "", false, "", true}), 403,
                      "OperationDenied.InvalidImageStatus"));
}

using CreateImageRules = Ledger;

TEST_F(CreateImageRules, InheritsThePaidMarketplaceOriginOfTheInstancesImage) {
  std::string ia = launch(kA, waf_cn_);
  std::string y = new_id("m-");
  EXPECT_TRUE(Produces(when(CreateImage{kA, kHz, ia, y, "mine"}),
                       {ev(ImageCreated{y, kA, kHz, "mine", "custom", "", marketplace_origin(waf_code_, true),
                                        "Available"})}));
}

TEST_F(CreateImageRules, InheritsEncryptionAndOriginThroughGenerations) {
  Origin origin = encrypted_origin("key-9", marketplace_origin(waf_code_, true));
  given({custom_image(kY, kA, origin)});
  std::string ia = launch(kA, kY);
  std::string z = new_id("m-");
  EXPECT_TRUE(Produces(when(CreateImage{kA, kHz, ia, z, "z"}),
                       {ev(ImageCreated{z, kA, kHz, "z", "custom", "", origin, "Available"})}));
}

TEST_F(CreateImageRules, RecipientsImageOfASharedImageKeepsTheOriginAndItsRules) {
  std::string y = image_from(kA, lamp_cn_);
  run(modify(y, {kB}));
  std::string z = image_from(kB, y);
  EXPECT_EQ(state_.image(z)->owner, kB);
  EXPECT_EQ(state_.image(z)->origin, marketplace_origin());
  EXPECT_TRUE(Rejects(when(modify(z, {kC}, {}, kB)), 403, "InvalidImageId.BidMismatch"));
  EXPECT_TRUE(Produces(when(modify(z, {kD}, {}, kB)), {shared(z, {kD})}));
}

TEST_F(CreateImageRules, OtherAccountsInstanceIsInstanceNotFound) {
  std::string ia = launch(kA, sys_);
  EXPECT_TRUE(Rejects(when(CreateImage{kB, kHz, ia, new_id("m-"), ""}), 404, "InvalidInstanceId.NotFound"));
  EXPECT_TRUE(Rejects(when(CreateImage{kA, kSh, ia, new_id("m-"), ""}), 404, "InvalidInstanceId.NotFound"));
  EXPECT_TRUE(Rejects(when(CreateImage{kA, "cn-atlantis", ia, new_id("m-"), ""}), 404, "InvalidRegionId.NotFound"));
}

TEST_F(CreateImageRules, SlowBuildStaysCreatingUntilMarkedAvailable) {
  std::string ia = launch(kA, sys_);
  std::string y = new_id("m-");
  EXPECT_TRUE(Produces(when(CreateImage{kA, kHz, ia, y, "slow", false}),
                       {ev(ImageCreated{y, kA, kHz, "slow", "custom", "", Origin{}, "Creating"})}));
  run(CreateImage{kA, kHz, ia, y, "slow", false});
  EXPECT_TRUE(Produces(when(MarkImageAvailable{y}), {ev(ImageBecameAvailable{y})}));
  run(MarkImageAvailable{y});
  EXPECT_TRUE(Produces(when(MarkImageAvailable{y}), {}));
}

// ============================================================================
// Organization: Resource Directory and resource shares
// ============================================================================

const std::string kM = "1000000000000009";  // cn; manages the directory
const std::string kRd = "rd-0000000001";
const std::string kRoot = "r-000001";
const std::string kFdApps = "fd-000000000a";  // under root
const std::string kFdProd = "fd-000000000b";  // under apps (nested)
const std::string kFdOps = "fd-000000000c";   // under root
const std::string kRs1 = "rs-0000000001";
const std::string kRs2 = "rs-0000000002";

CreateResourceShare create_share(const std::string& id, std::vector<std::string> resources,
                                 std::vector<std::string> targets, const std::string& caller = kM,
                                 bool allow_external = false) {
  return CreateResourceShare{caller, id, "share " + id, std::move(resources), std::move(targets), allow_external};
}

// Directory rd (managed by M, sharing enabled): root { apps { prod: B }, ops: D }.
// M owns the plain custom image xm_. A and C are outside the directory.
class Organization : public Ledger {
 protected:
  void SetUp() override {
    Ledger::SetUp();
    given({registered(kM, "cn")});
    run(EnableResourceDirectory{kM, kRd, kRoot});
    run(CreateFolder{kM, kRoot, kFdApps, "apps"});
    run(CreateFolder{kM, kFdApps, kFdProd, "prod"});
    run(CreateFolder{kM, kRoot, kFdOps, "ops"});
    join(kB, kFdProd);
    join(kD, kFdOps);
    run(EnableSharingWithDirectory{kM});
    xm_ = image_from(kM, sys_);
  }

  void join(const std::string& account, const std::string& folder) {
    std::string handshake = new_id("h-");
    run(InviteAccount{kM, account, handshake});
    run(AcceptHandshake{account, handshake});
    run(MoveAccount{kM, account, folder});
  }

  std::string xm_;
};

TEST_F(Organization, FolderTargetCoversMembersOfNestedFolders) {
  EXPECT_TRUE(Produces(when(create_share(kRs1, {xm_}, {kFdApps})),
                       {ev(ResourceShareCreated{kRs1, kM, "share " + kRs1, false}, ""),
                        ev(ResourceShareAssociated{kRs1, {xm_}, {kFdApps}}, "")}));
  run(create_share(kRs1, {xm_}, {kFdApps}));
  EXPECT_TRUE(can_use(kB, xm_));
  EXPECT_EQ(sources(xm_, kB), std::set<std::string>{"resource-share:" + kRs1});
  EXPECT_FALSE(can_use(kD, xm_));
  EXPECT_FALSE(can_use(kA, xm_));
  EXPECT_EQ(state_.grant(xm_, kM), nullptr);  // the owner needs no grant
}

TEST_F(Organization, DirectoryTargetCoversEveryMember) {
  run(create_share(kRs1, {xm_}, {kRd}));
  EXPECT_TRUE(can_use(kB, xm_));
  EXPECT_TRUE(can_use(kD, xm_));
  EXPECT_FALSE(can_use(kA, xm_));
  EXPECT_FALSE(can_use(kC, xm_));
}

TEST_F(Organization, MovingAnAccountOutOfTheFolderRevokesExactlyThatGrant) {
  run(create_share(kRs1, {xm_}, {kFdApps}));
  run(create_share(kRs2, {xm_}, {kRd}));
  ASSERT_EQ(sources(xm_, kB), (std::set<std::string>{"resource-share:" + kRs1, "resource-share:" + kRs2}));
  run(MoveAccount{kM, kB, kFdOps});
  EXPECT_EQ(sources(xm_, kB), std::set<std::string>{"resource-share:" + kRs2});
  EXPECT_TRUE(can_use(kB, xm_));
  EXPECT_EQ(sources(xm_, kD), std::set<std::string>{"resource-share:" + kRs2});
}

TEST_F(Organization, MovingTheOnlyCoveredAccountOutRemovesItsAccess) {
  run(create_share(kRs1, {xm_}, {kFdApps}));
  run(MoveAccount{kM, kB, kFdOps});
  EXPECT_EQ(state_.grant(xm_, kB), nullptr);
  EXPECT_FALSE(can_use(kB, xm_));
  run(MoveAccount{kM, kD, kFdProd});  // and moving in grants it
  EXPECT_TRUE(can_use(kD, xm_));
}

TEST_F(Organization, JoiningTheDirectoryGrantsAccess) {
  run(create_share(kRs1, {xm_}, {kRd}));
  EXPECT_FALSE(can_use(kA, xm_));
  std::string handshake = new_id("h-");
  run(InviteAccount{kM, kA, handshake});
  EXPECT_FALSE(can_use(kA, xm_));  // an invitation alone grants nothing
  run(AcceptHandshake{kA, handshake});
  EXPECT_TRUE(can_use(kA, xm_));
}

TEST_F(Organization, LeavingTheDirectoryRevokesAccessAndBlocksReinit) {
  run(create_share(kRs1, {xm_}, {kFdApps}));
  std::string ib = launch(kB, xm_);
  run(RemoveAccount{kM, kB});
  EXPECT_FALSE(can_use(kB, xm_));
  EXPECT_EQ(blocked(ib), "image_unshared");
  EXPECT_TRUE(Rejects(when(ReInitDisk{kB, disk(ib)}), 403, "OperationDenied.ImageNotValid"));
  EXPECT_TRUE(Rejects(when(RunInstances{kB, kHz, xm_, {new_id("i-")}, {new_id("d-")}}), 404, "InvalidImageId.NotFound"));
}

TEST_F(Organization, AccountGrantOutlivesTheShareGrantAndViceVersa) {
  run(create_share(kRs1, {xm_}, {kFdApps}));
  run(modify(xm_, {kB}, {}, kM));
  ASSERT_EQ(sources(xm_, kB), (std::set<std::string>{"account", "resource-share:" + kRs1}));
  std::string ib = launch(kB, xm_);

  run(modify(xm_, {}, {kB}, kM));  // account grant gone, share grant left
  EXPECT_TRUE(can_use(kB, xm_));
  EXPECT_EQ(blocked(ib), "");
  run(modify(xm_, {kB}, {}, kM));
  run(DisassociateResourceShare{kM, kRs1, {}, {kFdApps}});  // share grant gone, account grant left
  EXPECT_TRUE(can_use(kB, xm_));
  EXPECT_EQ(sources(xm_, kB), std::set<std::string>{"account"});
  EXPECT_EQ(blocked(ib), "");
  run(modify(xm_, {}, {kB}, kM));  // both gone
  EXPECT_FALSE(can_use(kB, xm_));
  EXPECT_EQ(blocked(ib), "image_unshared");
}

TEST_F(Organization, AccountIdGrantSurvivesLeavingTheFolder) {
  run(create_share(kRs1, {xm_}, {kFdApps}));
  run(modify(xm_, {kB}, {}, kM));
  run(MoveAccount{kM, kB, kFdOps});
  EXPECT_EQ(sources(xm_, kB), std::set<std::string>{"account"});
  EXPECT_TRUE(can_use(kB, xm_));
}

TEST_F(Organization, DeletingTheShareRevokesItsGrants) {
  run(create_share(kRs1, {xm_}, {kRd}));
  EXPECT_TRUE(Produces(when(DeleteResourceShare{kM, kRs1}), {ev(ResourceShareDeleted{kRs1}, "")}));
  run(DeleteResourceShare{kM, kRs1});
  EXPECT_FALSE(can_use(kB, xm_));
  EXPECT_FALSE(can_use(kD, xm_));
  EXPECT_TRUE(Rejects(when(DeleteResourceShare{kM, kRs1}), 404, "EntityNotExists.ResourceShare"));
}

TEST_F(Organization, NonMemberCannotTargetADirectoryOrFolder) {
  EXPECT_TRUE(Rejects(when(create_share(kRs1, {kX}, {kRd}, kA)), 403, "OperationDenied.ResourceDirectoryNotEnabled"));
  EXPECT_TRUE(
      Rejects(when(create_share(kRs1, {kX}, {kFdApps}, kA, true)), 403, "OperationDenied.ResourceDirectoryNotEnabled"));
}

TEST_F(Organization, SharingNotEnabledIsResourceDirectoryNotEnabled) {
  const std::string manager = "1000000000000010", rd = "rd-0000000002", root = "r-000002";
  given({registered(manager, "cn")});
  run(EnableResourceDirectory{manager, rd, root});
  std::string y = image_from(manager, sys_);
  EXPECT_TRUE(Rejects(when(create_share(kRs1, {y}, {rd}, manager)), 403, "OperationDenied.ResourceDirectoryNotEnabled"));
  EXPECT_TRUE(Rejects(when(create_share(kRs1, {y}, {root}, manager)), 403, "OperationDenied.ResourceDirectoryNotEnabled"));
  EXPECT_TRUE(Produces(when(EnableSharingWithDirectory{manager}), {ev(SharingWithDirectoryEnabled{rd}, "")}));
  run(EnableSharingWithDirectory{manager});
  EXPECT_TRUE(Produces(when(EnableSharingWithDirectory{manager}), {}));
  EXPECT_TRUE(when(create_share(kRs1, {y}, {rd}, manager)).ok());
}

TEST_F(Organization, AnotherDirectorysFolderIsResourceDirectoryNotEnabled) {
  const std::string manager = "1000000000000010", rd = "rd-0000000002", root = "r-000002";
  given({registered(manager, "cn")});
  run(EnableResourceDirectory{manager, rd, root});
  run(EnableSharingWithDirectory{manager});
  EXPECT_TRUE(Rejects(when(create_share(kRs1, {xm_}, {rd})), 403, "OperationDenied.ResourceDirectoryNotEnabled"));
  EXPECT_TRUE(Rejects(when(create_share(kRs1, {xm_}, {root})), 403, "OperationDenied.ResourceDirectoryNotEnabled"));
}

TEST_F(Organization, OnlyTheManagerEnablesSharing) {
  EXPECT_TRUE(Rejects(when(EnableSharingWithDirectory{kA}), 403, "OperationDenied.ResourceDirectoryNotEnabled"));
  EXPECT_TRUE(Rejects(when(EnableSharingWithDirectory{kB}), 403, "OperationDenied.ResourceDirectoryNotEnabled"));
}

TEST_F(Organization, MemberSharesWithItsDirectory) {
  std::string yb = image_from(kB, sys_);
  run(create_share(kRs1, {yb}, {kFdOps}, kB));
  EXPECT_TRUE(can_use(kD, yb));
  EXPECT_FALSE(can_use(kM, yb));
}

TEST_F(Organization, ExternalAccountTargetNeedsAllowExternalTargets) {
  EXPECT_TRUE(Rejects(when(create_share(kRs1, {xm_}, {kA})), 400, "InvalidParameter.Targets"));
  EXPECT_TRUE(when(create_share(kRs1, {xm_}, {kA}, kM, true)).ok());
  EXPECT_TRUE(when(create_share(kRs1, {xm_}, {kB})).ok());  // a member is internal
  // Without a directory every account is external.
  EXPECT_TRUE(Rejects(when(create_share(kRs1, {kX}, {kB}, kA)), 400, "InvalidParameter.Targets"));
  EXPECT_TRUE(when(create_share(kRs1, {kX}, {kB}, kA, true)).ok());
}

TEST_F(Organization, AssociatingAnExternalAccountFollowsTheSharesSetting) {
  run(create_share(kRs1, {xm_}, {}));
  EXPECT_TRUE(Rejects(when(AssociateResourceShare{kM, kRs1, {}, {kA}}), 400, "InvalidParameter.Targets"));
  run(create_share(kRs2, {xm_}, {}, kM, true));
  EXPECT_TRUE(Produces(when(AssociateResourceShare{kM, kRs2, {}, {kA}}),
                       {ev(ResourceShareAssociated{kRs2, {}, {kA}}, "")}));
}

TEST_F(Organization, MoreThanFiveTargetsOrResourcesIsInvalidParameter) {
  std::vector<std::string> images;
  for (int k = 0; k < 6; ++k) images.push_back(image_from(kM, sys_));
  auto externals = register_accounts(6);
  EXPECT_TRUE(Rejects(when(create_share(kRs1, images, {kRd})), 400, "InvalidParameter"));
  EXPECT_TRUE(Rejects(when(create_share(kRs1, {xm_}, externals, kM, true)), 400, "InvalidParameter"));
  std::vector<std::string> five_images(images.begin(), images.begin() + 5);
  std::vector<std::string> five_accounts(externals.begin(), externals.begin() + 5);
  run(create_share(kRs1, five_images, five_accounts, kM, true));
  EXPECT_TRUE(Rejects(when(AssociateResourceShare{kM, kRs1, images, {}}), 400, "InvalidParameter"));
  EXPECT_TRUE(Rejects(when(AssociateResourceShare{kM, kRs1, {}, externals}), 400, "InvalidParameter"));
  EXPECT_TRUE(Rejects(when(DisassociateResourceShare{kM, kRs1, images, {}}), 400, "InvalidParameter"));
}

TEST_F(Organization, ResourceMustBeTheCallersAvailableCustomImage) {
  EXPECT_TRUE(Rejects(when(create_share(kRs1, {kX}, {kRd})), 404, "InvalidImageId.NotFound"));
  EXPECT_TRUE(Rejects(when(create_share(kRs1, {sys_}, {kRd})), 404, "InvalidImageId.NotFound"));
  EXPECT_TRUE(Rejects(when(create_share(kRs1, {kY}, {kRd})), 404, "InvalidImageId.NotFound"));
  given({custom_image(kY, kM, {}, "Creating")});
  EXPECT_TRUE(Rejects(when(create_share(kRs1, {kY}, {kRd})), 403, "OperationDenied.InvalidImageStatus"));
}

TEST_F(Organization, OwnershipIsCheckedBeforeTheFiveItemLimit) {
  std::vector<std::string> images{kX};  // A's image, not M's
  for (int k = 0; k < 5; ++k) images.push_back(image_from(kM, sys_));
  EXPECT_TRUE(Rejects(when(create_share(kRs1, images, {kRd})), 404, "InvalidImageId.NotFound"));
}

TEST_F(Organization, EncryptedImagesFollowRuleFive) {
  given({custom_image(kY, kM, encrypted_origin("service"))});
  EXPECT_TRUE(Rejects(when(create_share(kRs1, {kY}, {kRd})), 403, "InvalidOperation.ServiceKeyEncryptedImageUnsupported"));
  const std::string kZ = make_id("m-z", 1, 22);
  given({custom_image(kZ, kM, encrypted_origin("key-1"))});
  EXPECT_TRUE(Rejects(when(create_share(kRs1, {kZ}, {kRd})), 403, "AssumeRoleError"));
  given({role_authorized(kM)});
  EXPECT_TRUE(when(create_share(kRs1, {kZ}, {kRd})).ok());
}

TEST_F(Organization, NewTargetsOnExistingEncryptedResourcesAreChecked) {
  const std::string kZ = make_id("m-z", 1, 22);
  given({custom_image(kZ, kM, encrypted_origin("key-1")), role_authorized(kM)});
  run(create_share(kRs1, {kZ}, {kFdApps}));
  run(SetEncryptShareRole{kM, false});
  EXPECT_TRUE(Rejects(when(AssociateResourceShare{kM, kRs1, {}, {kFdOps}}), 403, "AssumeRoleError"));
  EXPECT_FALSE(can_use(kD, kZ));
  EXPECT_TRUE(Produces(when(AssociateResourceShare{kM, kRs1, {kZ}, {kFdApps}}), {}));  // nothing new
}

TEST_F(Organization, MarketplaceDerivedImageCannotReachTheOtherSite) {
  join(kC, kFdOps);  // an intl member
  std::string ym = image_from(kM, lamp_cn_);
  EXPECT_TRUE(Rejects(when(create_share(kRs1, {ym}, {kFdOps})), 403, "InvalidImageId.BidMismatch"));
  EXPECT_TRUE(Rejects(when(create_share(kRs1, {ym}, {kRd})), 403, "InvalidImageId.BidMismatch"));
  EXPECT_TRUE(Rejects(when(create_share(kRs1, {ym}, {kC})), 403, "InvalidImageId.BidMismatch"));
  EXPECT_TRUE(when(create_share(kRs1, {ym}, {kFdApps})).ok());
  EXPECT_TRUE(when(create_share(kRs1, {xm_}, {kFdOps})).ok());  // a plain image crosses sites
}

TEST_F(Organization, AssociatingAnOtherSiteTargetWithAMarketplaceDerivedResourceIsBidMismatch) {
  join(kC, kFdOps);
  std::string ym = image_from(kM, lamp_cn_);
  run(create_share(kRs1, {ym}, {kFdApps}));
  EXPECT_TRUE(Rejects(when(AssociateResourceShare{kM, kRs1, {}, {kFdOps}}), 403, "InvalidImageId.BidMismatch"));
  run(create_share(kRs2, {xm_}, {kFdOps}));
  EXPECT_TRUE(Rejects(when(AssociateResourceShare{kM, kRs2, {ym}, {}}), 403, "InvalidImageId.BidMismatch"));
  EXPECT_FALSE(can_use(kC, ym));
}

TEST_F(Organization, AssociateAddsOnlyWhatIsNew) {
  run(create_share(kRs1, {xm_}, {kFdApps}));
  EXPECT_TRUE(Produces(when(AssociateResourceShare{kM, kRs1, {xm_}, {kFdApps}}), {}));
  EXPECT_TRUE(Produces(when(AssociateResourceShare{kM, kRs1, {xm_}, {kFdApps, kFdOps}}),
                       {ev(ResourceShareAssociated{kRs1, {}, {kFdOps}}, "")}));
  run(AssociateResourceShare{kM, kRs1, {}, {kFdOps}});
  EXPECT_TRUE(can_use(kD, xm_));
}

TEST_F(Organization, DisassociateRemovesOnlyWhatIsAssociated) {
  run(create_share(kRs1, {xm_}, {kFdApps}));
  EXPECT_TRUE(Produces(when(DisassociateResourceShare{kM, kRs1, {}, {kFdOps}}), {}));
  EXPECT_TRUE(Produces(when(DisassociateResourceShare{kM, kRs1, {xm_}, {kFdOps, kFdApps}}),
                       {ev(ResourceShareDisassociated{kRs1, {xm_}, {kFdApps}}, "")}));
  run(DisassociateResourceShare{kM, kRs1, {xm_}, {}});
  EXPECT_FALSE(can_use(kB, xm_));
}

TEST_F(Organization, OnlyTheOwnerManagesAShare) {
  run(create_share(kRs1, {xm_}, {kFdApps}));
  EXPECT_TRUE(Rejects(when(AssociateResourceShare{kB, kRs1, {}, {kFdOps}}), 404, "EntityNotExists.ResourceShare"));
  EXPECT_TRUE(Rejects(when(DisassociateResourceShare{kB, kRs1, {}, {kFdApps}}), 404, "EntityNotExists.ResourceShare"));
  EXPECT_TRUE(Rejects(when(DeleteResourceShare{kB, kRs1}), 404, "EntityNotExists.ResourceShare"));
  EXPECT_TRUE(Rejects(when(create_share(kRs1, {}, {})), 409, "IdempotentParameterMismatch"));
}

// ---- recipient counts ---------------------------------------------------------

TEST_F(Organization, RecipientCountsSeparateDirectDirectoryPublicAndEffective) {
  run(create_share(kRs1, {xm_}, {kRd}));  // B and D via the directory
  run(modify(xm_, {kB, kA}, {}, kM));     // B also direct; A direct only
  State::Recipients r = state_.recipients(xm_);
  EXPECT_EQ(r.direct, 2);
  EXPECT_EQ(r.via_directory, 2);
  EXPECT_EQ(r.is_public, 0);
  EXPECT_EQ(r.effective, 3);
  run(publicity(xm_, true, kM));
  r = state_.recipients(xm_);
  EXPECT_EQ(r.is_public, 1);
  EXPECT_EQ(r.effective, 3);
}

TEST_F(Organization, FiftyLimitCountsOnlyDirectShares) {
  run(create_share(kRs1, {xm_}, {kRd}));
  auto fifty = register_accounts(50);
  share_with(xm_, fifty, kM);
  State::Recipients r = state_.recipients(xm_);
  EXPECT_EQ(r.direct, 50);
  EXPECT_EQ(r.via_directory, 2);
  EXPECT_EQ(r.effective, 52);
  // B already holds a directory grant, but an account grant would be the 51st.
  EXPECT_TRUE(Rejects(when(modify(xm_, {kB}, {}, kM)), 403, "QuotaExceed.ShareImageUser"));
  EXPECT_TRUE(Produces(when(modify(xm_, {kB}, {fifty[0]}, kM)), {unshared(xm_, {fifty[0]}), shared(xm_, {kB})}));
}

// ---- directory structure -------------------------------------------------------

TEST_F(Organization, DirectoryStructureCommandsNeedTheManager) {
  EXPECT_TRUE(Rejects(when(EnableResourceDirectory{kM, "rd-0000000009", "r-000009"}), 409,
                      "EntityAlreadyExists.ResourceDirectory"));
  EXPECT_TRUE(Rejects(when(EnableResourceDirectory{kB, "rd-0000000009", "r-000009"}), 409,
                      "EntityAlreadyExists.ResourceDirectory"));
  EXPECT_TRUE(Rejects(when(EnableResourceDirectory{kNobody, "rd-0000000009", "r-000009"}), 404,
                      "InvalidAccount.NotFound"));
  EXPECT_TRUE(Rejects(when(CreateFolder{kB, kRoot, "fd-00000000zz", "x"}), 404, "EntityNotExists.ResourceDirectory"));
  EXPECT_TRUE(Rejects(when(CreateFolder{kM, "fd-0000000099", "fd-00000000zz", "x"}), 404, "EntityNotExists.Folder"));
  EXPECT_TRUE(Rejects(when(CreateFolder{kM, kRoot, "fd-00000000zz", ""}), 400, "MissingParameter"));
  EXPECT_TRUE(Rejects(when(InviteAccount{kM, kB, "h-x"}), 409, "EntityAlreadyExists.Account"));
  EXPECT_TRUE(Rejects(when(InviteAccount{kM, kNobody, "h-x"}), 404, "InvalidAccount.NotFound"));
  EXPECT_TRUE(Rejects(when(MoveAccount{kM, kA, kFdOps}), 404, "EntityNotExists.Account"));
  EXPECT_TRUE(Rejects(when(MoveAccount{kM, kB, "fd-0000000099"}), 404, "EntityNotExists.Folder"));
  EXPECT_TRUE(Produces(when(MoveAccount{kM, kB, kFdProd}), {}));
  EXPECT_TRUE(Rejects(when(RemoveAccount{kM, kM}), 404, "EntityNotExists.Account"));
  EXPECT_TRUE(Rejects(when(RemoveAccount{kM, kA}), 404, "EntityNotExists.Account"));
  EXPECT_TRUE(Rejects(when(RemoveAccount{kB, kD}), 404, "EntityNotExists.ResourceDirectory"));
}

TEST_F(Organization, OnlyTheInviteeAcceptsAHandshake) {
  run(InviteAccount{kM, kA, "h-a"});
  EXPECT_TRUE(Rejects(when(AcceptHandshake{kC, "h-a"}), 404, "EntityNotExists.Handshake"));
  EXPECT_TRUE(Produces(when(AcceptHandshake{kA, "h-a"}), {ev(AccountJoinedDirectory{kA, kRoot}, "")}));
  run(AcceptHandshake{kA, "h-a"});
  EXPECT_TRUE(Rejects(when(AcceptHandshake{kA, "h-a"}), 404, "EntityNotExists.Handshake"));
}

}  // namespace
}  // namespace sl
