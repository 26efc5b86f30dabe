// Model-based randomized test of the whole write path.
//
// A small reference model, written here from SPEC.md §1 and independent of
// events/state.cc and events/decide.cc, predicts for every random command
// whether it succeeds (and with which error), how many events it appends, and
// what the projections must then answer: who can use which image via which
// sources, recipient counts, and each instance's reinit state. After every
// command the ledger's outcome and its rows (read through projections/queries.h)
// are compared with the model: the pairs and instances the command changed, the
// instances on its images, plus a random sample. Every kRowCheckEvery commands
// all grant rows, recipient counts and instances are compared, every
// kCheckpointEvery also check_access for every (account, image) pair. At the end
// a replay of the log must equal the stored proj family exactly.
//
// Where SPEC.md is silent the model takes these readings: IsPublic=true newly
// shares (rules 5 and 6 apply; public reaches both sites); for resource shares,
// rules 5 and 6 cover what the call newly shares (a newly associated resource
// is checked even with no targets), and when rule 5 fails on one resource and
// rule 6 on another either code is accepted; CopyImage of a usable image the
// caller does not own (catalog images too) is SameRegionOnly; organization
// error codes are the ones the ResourceManager/ResourceSharing APIs use.
//
// Seed: printed at start; SHARELEDGER_SEED overrides it. SHARELEDGER_MODEL_STEPS
// overrides the number of commands. The database goes to /dev/shm when it has
// room (this test is about the rules, not fsync latency; crash_test covers
// durability), else to testing::TempDir(); TEST_TMPDIR, when set, wins.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "events/catalog.h"
#include "projections/ledger.h"
#include "projections/queries.h"
#include "projections/replay.h"
#include "projections/rows.h"
#include "projections/support.h"

namespace sl {
namespace {

constexpr std::uint64_t kDefaultSeed = 20240611;
constexpr int kDefaultSteps = 10000;
constexpr int kCheckpointEvery = 2500;  // every check_access pair
constexpr int kRowCheckEvery = 200;     // every grant row, recipient count and instance
constexpr int kImageQuota = 4;
constexpr std::size_t kMaxAccounts = 72;
constexpr std::size_t kMaxDirectories = 4;
const std::vector<std::string> kRegions = {"cn-hangzhou", "cn-shanghai", "ap-southeast-1"};
const std::string kUnknownRegion = "cn-beijing";  // a real region, not configured here

std::string scratch_root() {
  if (std::getenv("TEST_TMPDIR")) return testing::TempDir();
  std::error_code ec;
  auto space = std::filesystem::space("/dev/shm", ec);
  if (!ec && space.available > (std::uintmax_t{512} << 20)) return "/dev/shm/";
  return testing::TempDir();
}

using test::describe;
using test::env_number;

// ---- describing commands in failure messages -------------------------------

constexpr const char* kCommandNames[] = {
    "RegisterAccount", "SetEncryptShareRole", "SeedCatalogImage", "CreateImage", "MarkImageAvailable",
    "CopyImage", "DeleteImage", "ModifyImageSharePermission", "RunInstances", "ReplaceSystemDisk",
    "ReInitDisk", "DeleteInstance", "EnableResourceDirectory", "CreateFolder", "InviteAccount",
    "AcceptHandshake", "MoveAccount", "RemoveAccount", "EnableSharingWithDirectory", "CreateResourceShare",
    "AssociateResourceShare", "DisassociateResourceShare", "DeleteResourceShare"};
static_assert(std::size(kCommandNames) == std::variant_size_v<Command>);

std::string name_of(const Command& c) { return kCommandNames[c.index()]; }

template <class T>
void describe_fields(std::ostream& o, const T& c) {
  auto str = [&](const char* name, const std::string& v) {
    if (!v.empty()) o << ' ' << name << '=' << v;
  };
  auto list = [&](const char* name, const std::vector<std::string>& v) {
    o << ' ' << name << "=[";
    for (std::size_t i = 0; i < v.size(); ++i) o << (i ? "," : "") << v[i];
    o << ']';
  };
  if constexpr (requires { c.caller; }) str("caller", c.caller);
  if constexpr (requires { c.account_id; }) str("account", c.account_id);
  if constexpr (requires { c.site; }) str("site", c.site);
  if constexpr (requires { c.region; }) str("region", c.region);
  if constexpr (requires { c.image_id; }) str("image", c.image_id);
  if constexpr (requires { c.destination_region; }) str("to", c.destination_region);
  if constexpr (requires { c.new_image_id; }) str("new_image", c.new_image_id);
  if constexpr (requires { c.instance_id; }) str("instance", c.instance_id);
  if constexpr (requires { c.instance_ids; }) list("instances", c.instance_ids);
  if constexpr (requires { c.disk_id; }) str("disk", c.disk_id);
  if constexpr (requires { c.directory_id; }) str("directory", c.directory_id);
  if constexpr (requires { c.parent_folder_id; }) str("parent", c.parent_folder_id);
  if constexpr (requires { c.folder_id; }) str("folder", c.folder_id);
  if constexpr (requires { c.handshake_id; }) str("handshake", c.handshake_id);
  if constexpr (requires { c.share_id; }) str("share", c.share_id);
  if constexpr (requires { c.add_accounts; }) list("add", c.add_accounts);
  if constexpr (requires { c.remove_accounts; }) list("remove", c.remove_accounts);
  if constexpr (requires { c.is_public; }) {
    if (c.is_public) o << " is_public=" << *c.is_public;
  }
  if constexpr (requires { c.resources; }) list("resources", c.resources);
  if constexpr (requires { c.targets; }) list("targets", c.targets);
  if constexpr (requires { c.force; }) o << " force=" << c.force;
  if constexpr (requires { c.encrypted; }) o << " encrypted=" << c.encrypted << " kms=" << c.kms_key_id;
  if constexpr (requires { c.allow_external; }) o << " external=" << c.allow_external;
  if constexpr (requires { c.authorized; }) o << " authorized=" << c.authorized;
  if constexpr (requires { c.available_now; }) o << " available_now=" << c.available_now;
}

std::string describe(const Command& c) {
  std::ostringstream o;
  o << name_of(c);
  std::visit([&](const auto& x) { describe_fields(o, x); }, c);
  return o.str();
}

// ---- the reference model -----------------------------------------------------

struct MAccount {
  std::string site;
  bool role = false;   // AliyunECSShareEncryptImageDefaultRole authorized
  std::string folder;  // "" when in no resource directory
};

struct MImage {
  std::string kind, owner, region, site, status, product_code, kms;
  bool derived = false, paid = false, encrypted = false, is_public = false;
  std::set<std::string> direct;  // accounts holding an account-id share
  bool live() const { return status != "Deleted"; }
};

struct MInstance {
  std::string owner, region, image, disk, payer, product_code;
};

struct MDirectory {
  std::string root, manager;
  bool sharing = false;
};

struct MFolder {
  std::string parent, directory;
};

struct MShare {
  std::string owner;
  bool external = false, deleted = false;
  std::set<std::string> resources, targets;
};

struct MHandshake {
  std::string directory, account;
};

struct Outcome {
  bool ok = true;
  int http = 0;
  std::string code;
  std::string alt_code;  // also acceptable (two rules fail on different resources)
  int events = 0;
  std::vector<std::string> blocked;  // DeleteImage: instances named by the event
  std::function<void()> apply;       // the model's own state change
  bool organization = false;         // may change resource-share coverage
};

Outcome failure(int http, std::string code) {
  Outcome o;
  o.ok = false;
  o.http = http;
  o.code = std::move(code);
  return o;
}

Outcome success(int events, std::function<void()> apply = {}) {
  Outcome o;
  o.events = events;
  o.apply = std::move(apply);
  return o;
}

using Pair = std::pair<std::string, std::string>;  // (image, account)

class Model {
 public:
  explicit Model(const Limits& limits) : limits_(limits) {
    for (const auto& seed : builtin_catalog(limits.regions)) {
      MImage& x = images[seed.image_id];
      x.kind = seed.kind;
      x.region = seed.region;
      x.site = seed.site;
      x.status = "Available";
      x.derived = seed.kind == "marketplace";
      x.paid = seed.paid;
      x.product_code = seed.product_code;
    }
  }

  Outcome decide(const Command& c) {
    return std::visit([this](const auto& x) { return on(x); }, c);
  }

  // Recomputes every resource-share grant; pairs whose sources changed go to `touched_pairs`.
  void refresh_organization_grants() {
    std::map<Pair, std::set<std::string>> next;
    for (const auto& [id, rs] : shares) {
      if (rs.deleted) continue;
      std::set<std::string> reached;
      for (const auto& t : rs.targets) {
        for (const auto& a : covered(t)) reached.insert(a);
      }
      for (const auto& image_id : rs.resources) {
        const MImage& x = images.at(image_id);
        if (!x.live()) continue;
        for (const auto& a : reached) {
          if (a != x.owner) next[{image_id, a}].insert("resource-share:" + id);
        }
      }
    }
    for (const auto& [pair, sources] : organization_) {
      auto it = next.find(pair);
      if (it == next.end() || it->second != sources) touched_pairs.insert(pair);
    }
    for (const auto& [pair, sources] : next) {
      if (!organization_.count(pair)) touched_pairs.insert(pair);
    }
    organization_ = std::move(next);
  }

  // ---- what the projections must answer ----

  std::string directory_of(const std::string& account) const {
    for (const auto& [id, d] : directories) {
      if (d.manager == account) return id;
    }
    auto a = accounts.find(account);
    if (a == accounts.end() || a->second.folder.empty()) return "";
    return folders.at(a->second.folder).directory;
  }

  bool folder_within(std::string folder, const std::string& outer) const {
    while (!folder.empty()) {
      if (folder == outer) return true;
      folder = folders.at(folder).parent;
    }
    return false;
  }

  // Accounts a resource-share target reaches (SPEC §1.2, source 3).
  std::set<std::string> covered(const std::string& target) const {
    if (accounts.count(target)) return {target};
    std::set<std::string> out;
    for (const auto& [id, a] : accounts) {
      if (a.folder.empty()) continue;
      if (directories.count(target) ? folders.at(a.folder).directory == target : folder_within(a.folder, target)) {
        out.insert(id);
      }
    }
    return out;
  }

  // Grant sources of `account` on the image, public excluded: "account", "resource-share:<id>".
  std::set<std::string> grant_sources(const std::string& image_id, const std::string& account) const {
    std::set<std::string> out;
    const MImage& x = images.at(image_id);
    if (x.direct.count(account)) out.insert("account");
    if (auto it = organization_.find({image_id, account}); it != organization_.end()) {
      out.insert(it->second.begin(), it->second.end());
    }
    return out;
  }

  bool can_use(const std::string& account, const std::string& image_id) const {
    return !access_sources(account, image_id).empty();
  }

  // What check_access must list, in its order.
  std::vector<std::string> access_sources(const std::string& account, const std::string& image_id) const {
    auto it = images.find(image_id);
    if (it == images.end() || !it->second.live()) return {};
    const MImage& x = it->second;
    if (x.kind == "system") return {"system"};
    if (x.kind == "marketplace") {
      auto a = accounts.find(account);
      if (a != accounts.end() && a->second.site == x.site) return {"marketplace"};
      return {};
    }
    if (x.owner == account) return {"owner"};
    auto sources = grant_sources(image_id, account);
    std::vector<std::string> out(sources.begin(), sources.end());
    if (x.is_public) out.push_back("public");
    return out;
  }

  struct Counts {
    int direct = 0, via_directory = 0, is_public = 0, effective = 0;
  };
  Counts recipients(const std::string& image_id) const {
    Counts c;
    const MImage& x = images.at(image_id);
    c.is_public = x.is_public ? 1 : 0;
    std::set<std::string> effective = x.direct, via;
    for (const auto& [pair, sources] : organization_) {
      if (pair.first == image_id) via.insert(pair.second), effective.insert(pair.second);
    }
    c.direct = static_cast<int>(x.direct.size());
    c.via_directory = static_cast<int>(via.size());
    c.effective = static_cast<int>(effective.size());
    return c;
  }

  // SPEC §1.4: deleted image, or the owner (not the image's owner) holds no grant.
  std::string reinit_reason(const MInstance& i) const {
    const MImage& x = images.at(i.image);
    if (!x.live()) return "image_deleted";
    if (x.kind == "custom" && x.owner != i.owner && !x.is_public && grant_sources(i.image, i.owner).empty()) {
      return "image_unshared";
    }
    return "";
  }

  // Every (image, account) -> sources the grant rows must hold.
  std::map<Pair, std::set<std::string>> all_grants() const {
    std::map<Pair, std::set<std::string>> out = organization_;
    for (const auto& [id, x] : images) {
      for (const auto& a : x.direct) out[{id, a}].insert("account");
    }
    return out;
  }

  std::map<std::string, MAccount> accounts;
  std::set<std::string> access_keys;
  std::map<std::string, MImage> images;
  std::map<std::string, MInstance> instances;
  std::map<std::string, std::string> disks;  // disk -> instance
  std::map<std::string, MDirectory> directories;
  std::map<std::string, MFolder> folders;
  std::map<std::string, MShare> shares;
  std::map<std::string, MHandshake> handshakes;

  // What the last applied command changed, for focused verification.
  std::set<Pair> touched_pairs;
  std::set<std::string> touched_images;  // every account's access to these changed

 private:
  bool region_ok(const std::string& region) const {
    return std::find(limits_.regions.begin(), limits_.regions.end(), region) != limits_.regions.end();
  }

  int live_custom(const std::string& owner, const std::string& region) const {
    int n = 0;
    for (const auto& [id, x] : images) n += x.kind == "custom" && x.live() && x.owner == owner && x.region == region;
    return n;
  }

  // The caller's live custom image in the region (rule 1), or nullptr.
  MImage* owned(const std::string& caller, const std::string& region, const std::string& image_id) {
    auto it = images.find(image_id);
    if (it == images.end()) return nullptr;
    MImage& x = it->second;
    if (x.kind != "custom" || !x.live() || x.owner != caller || x.region != region) return nullptr;
    return &x;
  }

  // Rule 5 for an image about to reach new accounts; "" when fine.
  std::string encryption_error(const MImage& x) const {
    if (!x.encrypted) return "";
    if (x.kms == "service") return "InvalidOperation.ServiceKeyEncryptedImageUnsupported";
    if (!accounts.at(x.owner).role) return "AssumeRoleError";
    return "";
  }

  std::string managed_directory(const std::string& caller) const {
    for (const auto& [id, d] : directories) {
      if (d.manager == caller) return id;
    }
    return "";
  }

  static bool has_prefix(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

  // ---- accounts ----

  Outcome on(const RegisterAccount& c) {
    if (accounts.count(c.account_id) || access_keys.count(c.access_key_id)) {
      return failure(409, "IdempotentParameterMismatch");
    }
    return success(2, [=, this] {
      accounts[c.account_id].site = c.site;
      access_keys.insert(c.access_key_id);
    });
  }

  Outcome on(const SetEncryptShareRole& c) {
    if (!accounts.count(c.account_id)) return failure(404, "InvalidAccount.NotFound");
    bool change = accounts.at(c.account_id).role != c.authorized;
    return success(change ? 1 : 0, [=, this] { accounts[c.account_id].role = c.authorized; });
  }

  Outcome on(const SeedCatalogImage&) { return failure(0, "not generated"); }

  // ---- images ----

  Outcome on(const CreateImage& c) {
    if (!region_ok(c.region)) return failure(404, "InvalidRegionId.NotFound");
    auto i = instances.find(c.instance_id);
    if (i == instances.end() || i->second.owner != c.caller || i->second.region != c.region) {
      return failure(404, "InvalidInstanceId.NotFound");
    }
    if (live_custom(c.caller, c.region) >= kImageQuota) return failure(403, "QuotaExceed.Image");
    MImage x = images.at(i->second.image);  // the origin is inherited from the instance's image
    x.kind = "custom";
    x.owner = c.caller;
    x.region = c.region;
    x.site.clear();
    x.status = c.available_now ? "Available" : "Creating";
    x.is_public = false;
    x.direct.clear();
    return success(1, [=, this] {
      images[c.image_id] = x;
      touched_images.insert(c.image_id);
    });
  }

  Outcome on(const MarkImageAvailable& c) {
    auto it = images.find(c.image_id);
    if (it == images.end() || it->second.status != "Creating") return success(0);
    return success(1, [=, this] { images[c.image_id].status = "Available"; });
  }

  Outcome on(const CopyImage& c) {
    if (!region_ok(c.region) || !region_ok(c.destination_region)) return failure(404, "InvalidRegionId.NotFound");
    auto it = images.find(c.image_id);
    if (it == images.end() || !it->second.live() || it->second.region != c.region) {
      return failure(404, "InvalidImageId.NotFound");
    }
    const MImage& source = it->second;
    if (source.kind != "custom" || source.owner != c.caller) {
      // SPEC §1.4: a recipient (or anyone, for a catalog image) may not copy it.
      if (can_use(c.caller, c.image_id)) return failure(403, "OperationDenied.SameRegionOnly");
      return failure(404, "InvalidImageId.NotFound");
    }
    if (source.status != "Available") return failure(403, "OperationDenied.InvalidImageStatus");
    if (live_custom(c.caller, c.destination_region) >= kImageQuota) return failure(403, "QuotaExceed.Image");
    MImage x = source;
    x.region = c.destination_region;
    x.status = c.available_now ? "Available" : "Creating";
    x.is_public = false;
    x.direct.clear();
    if (c.encrypted) {
      x.encrypted = true;
      x.kms = c.kms_key_id.empty() ? "service" : c.kms_key_id;
    }
    return success(1, [=, this] {
      images[c.new_image_id] = x;
      touched_images.insert(c.new_image_id);
    });
  }

  Outcome on(const DeleteImage& c) {
    if (!region_ok(c.region)) return failure(404, "InvalidRegionId.NotFound");
    MImage* x = owned(c.caller, c.region, c.image_id);
    if (!x) return failure(404, "InvalidImageId.NotFound");
    bool shared = !x->direct.empty() || x->is_public;
    for (const auto& [id, rs] : shares) shared = shared || (!rs.deleted && rs.resources.count(c.image_id));
    if (shared) return failure(403, "ImageUseShared");
    std::vector<std::string> users;
    for (const auto& [id, i] : instances) {
      if (i.image == c.image_id) users.push_back(id);
    }
    if (!users.empty() && !c.force) return failure(403, "ImageUsingByInstance");
    Outcome o = success(1, [=, this] {
      images[c.image_id].status = "Deleted";
      touched_images.insert(c.image_id);
    });
    o.blocked = users;
    return o;
  }

  // SPEC §1.3 rules 1-7, in order.
  Outcome on(const ModifyImageSharePermission& c) {
    if (!region_ok(c.region)) return failure(404, "InvalidRegionId.NotFound");
    MImage* x = owned(c.caller, c.region, c.image_id);
    if (!x) return failure(404, "InvalidImageId.NotFound");
    if (x->status != "Available") return failure(403, "OperationDenied.InvalidImageStatus");
    if (c.add_accounts.size() > 10 || c.remove_accounts.size() > 10) return failure(400, "InvalidParameter");
    for (const auto& a : c.add_accounts) {
      if (!accounts.count(a)) return failure(404, "InvalidAccount.NotFound");
      if (a == c.caller) return failure(404, "InvalidAccount.Forbbiden");
    }
    std::set<std::string> removing(c.remove_accounts.begin(), c.remove_accounts.end());
    for (const auto& a : c.add_accounts) {
      if (removing.count(a)) return failure(400, "InvalidParameter");
    }
    std::set<std::string> added, removed;
    for (const auto& a : c.add_accounts) {
      if (!x->direct.count(a)) added.insert(a);
    }
    for (const auto& a : removing) {
      if (x->direct.count(a)) removed.insert(a);
    }
    const bool goes_public = c.is_public.value_or(false) && !x->is_public;
    if (!added.empty() || goes_public) {
      if (auto e = encryption_error(*x); !e.empty()) return failure(403, e);
      if (x->derived) {
        // Public reaches both sites; an account on the other site is refused.
        bool mismatch = goes_public;
        for (const auto& a : added) mismatch = mismatch || accounts.at(a).site != accounts.at(x->owner).site;
        if (mismatch) return failure(403, "InvalidImageId.BidMismatch");
      }
    }
    if (x->direct.size() - removed.size() + added.size() > 50) return failure(403, "QuotaExceed.ShareImageUser");
    const bool publicity = c.is_public.has_value() && *c.is_public != x->is_public;
    int events = !removed.empty() + !added.empty() + publicity;
    return success(events, [=, this] {
      MImage& y = images[c.image_id];
      for (const auto& a : removed) y.direct.erase(a), touched_pairs.insert({c.image_id, a});
      for (const auto& a : added) y.direct.insert(a), touched_pairs.insert({c.image_id, a});
      if (publicity) {
        y.is_public = *c.is_public;
        touched_images.insert(c.image_id);
      }
    });
  }

  // ---- instances ----

  Outcome on(const RunInstances& c) {
    if (!region_ok(c.region)) return failure(404, "InvalidRegionId.NotFound");
    auto it = images.find(c.image_id);
    if (it == images.end() || it->second.region != c.region || !can_use(c.caller, c.image_id)) {
      return failure(404, "InvalidImageId.NotFound");
    }
    const MImage& x = it->second;
    if (x.status != "Available") return failure(403, "OperationDenied.InvalidImageStatus");
    MInstance i{c.caller, c.region, c.image_id, "", x.paid ? c.caller : "", x.product_code};
    return success(static_cast<int>(c.instance_ids.size()), [=, this] {
      for (std::size_t n = 0; n < c.instance_ids.size(); ++n) {
        MInstance& made = instances[c.instance_ids[n]] = i;
        made.disk = c.disk_ids[n];
        disks[made.disk] = c.instance_ids[n];
      }
    });
  }

  Outcome on(const ReplaceSystemDisk& c) {
    auto it = instances.find(c.instance_id);
    if (it == instances.end() || it->second.owner != c.caller) return failure(404, "InvalidInstanceId.NotFound");
    auto x = images.find(c.image_id);
    if (x == images.end() || x->second.region != it->second.region || !can_use(c.caller, c.image_id)) {
      return failure(404, "InvalidImageId.NotFound");
    }
    if (x->second.status != "Available") return failure(403, "OperationDenied.InvalidImageStatus");
    const bool paid = x->second.paid;
    const std::string product = x->second.product_code;
    return success(1, [=, this] {
      MInstance& i = instances[c.instance_id];
      disks.erase(i.disk);
      i.image = c.image_id;
      i.disk = c.new_disk_id;
      i.payer = paid ? i.owner : "";
      i.product_code = product;
      disks[i.disk] = c.instance_id;
    });
  }

  Outcome on(const ReInitDisk& c) {
    auto d = disks.find(c.disk_id);
    if (d == disks.end() || instances.at(d->second).owner != c.caller) return failure(404, "InvalidDiskId.NotFound");
    std::string reason = reinit_reason(instances.at(d->second));
    if (reason == "image_deleted") return failure(403, "SharedImageDeleted");
    if (reason == "image_unshared") return failure(403, "OperationDenied.ImageNotValid");
    return success(1);
  }

  Outcome on(const DeleteInstance& c) {
    auto it = instances.find(c.instance_id);
    if (it == instances.end() || it->second.owner != c.caller) return failure(404, "InvalidInstanceId.NotFound");
    return success(1, [=, this] {
      disks.erase(instances.at(c.instance_id).disk);
      instances.erase(c.instance_id);
    });
  }

  // ---- organization ----

  Outcome org(Outcome o) {
    o.organization = true;
    return o;
  }

  Outcome on(const EnableResourceDirectory& c) {
    if (!accounts.count(c.caller)) return failure(404, "InvalidAccount.NotFound");
    if (!directory_of(c.caller).empty()) return failure(409, "EntityAlreadyExists.ResourceDirectory");
    return org(success(1, [=, this] {
      directories[c.directory_id] = MDirectory{c.root_folder_id, c.caller, false};
      folders[c.root_folder_id] = MFolder{"", c.directory_id};
      accounts[c.caller].folder = c.root_folder_id;  // the manager sits in the root folder
    }));
  }

  Outcome on(const CreateFolder& c) {
    std::string d = managed_directory(c.caller);
    if (d.empty()) return failure(404, "EntityNotExists.ResourceDirectory");
    auto parent = folders.find(c.parent_folder_id);
    if (parent == folders.end() || parent->second.directory != d) return failure(404, "EntityNotExists.Folder");
    if (c.name.empty()) return failure(400, "MissingParameter");
    return org(success(1, [=, this] { folders[c.folder_id] = MFolder{c.parent_folder_id, d}; }));
  }

  Outcome on(const InviteAccount& c) {
    std::string d = managed_directory(c.caller);
    if (d.empty()) return failure(404, "EntityNotExists.ResourceDirectory");
    if (!accounts.count(c.account_id)) return failure(404, "InvalidAccount.NotFound");
    if (!directory_of(c.account_id).empty()) return failure(409, "EntityAlreadyExists.Account");
    return org(success(1, [=, this] { handshakes[c.handshake_id] = MHandshake{d, c.account_id}; }));
  }

  Outcome on(const AcceptHandshake& c) {
    auto h = handshakes.find(c.handshake_id);
    if (h == handshakes.end() || h->second.account != c.caller) return failure(404, "EntityNotExists.Handshake");
    if (!directory_of(c.caller).empty()) return failure(409, "EntityAlreadyExists.Account");
    const std::string root = directories.at(h->second.directory).root;
    return org(success(1, [=, this] {
      accounts[c.caller].folder = root;
      std::erase_if(handshakes, [&](const auto& kv) { return kv.second.account == c.caller; });
    }));
  }

  Outcome on(const MoveAccount& c) {
    std::string d = managed_directory(c.caller);
    if (d.empty()) return failure(404, "EntityNotExists.ResourceDirectory");
    if (directory_of(c.account_id) != d) return failure(404, "EntityNotExists.Account");
    auto f = folders.find(c.folder_id);
    if (f == folders.end() || f->second.directory != d) return failure(404, "EntityNotExists.Folder");
    if (accounts.at(c.account_id).folder == c.folder_id) return org(success(0));
    return org(success(1, [=, this] { accounts[c.account_id].folder = c.folder_id; }));
  }

  Outcome on(const RemoveAccount& c) {
    std::string d = managed_directory(c.caller);
    if (d.empty()) return failure(404, "EntityNotExists.ResourceDirectory");
    if (c.account_id == c.caller || directory_of(c.account_id) != d) return failure(404, "EntityNotExists.Account");
    return org(success(1, [=, this] { accounts[c.account_id].folder.clear(); }));
  }

  Outcome on(const EnableSharingWithDirectory& c) {
    std::string d = managed_directory(c.caller);
    if (d.empty()) return failure(403, "OperationDenied.ResourceDirectoryNotEnabled");
    if (directories.at(d).sharing) return org(success(0));
    return org(success(1, [=, this] { directories[d].sharing = true; }));
  }

  // SPEC §1.3 for resource shares. `rs` is the share as it is (empty for a new
  // one); the call adds `resources` and `targets`.
  std::optional<Outcome> check_association(const MShare& rs, const std::vector<std::string>& resources,
                                           const std::vector<std::string>& targets) const {
    for (const auto& id : resources) {  // rule 1
      auto it = images.find(id);
      if (it == images.end() || it->second.kind != "custom" || !it->second.live() || it->second.owner != rs.owner) {
        return failure(404, "InvalidImageId.NotFound");
      }
    }
    for (const auto& id : resources) {  // rule 2
      if (images.at(id).status != "Available") return failure(403, "OperationDenied.InvalidImageStatus");
    }
    if (resources.size() > 5 || targets.size() > 5) return failure(400, "InvalidParameter");  // rule 3
    const std::string mine = directory_of(rs.owner);
    for (const auto& t : targets) {
      if (directories.count(t) || folders.count(t)) {
        std::string theirs = directories.count(t) ? t : folders.at(t).directory;
        if (mine.empty() || theirs != mine || !directories.at(mine).sharing) {
          return failure(403, "OperationDenied.ResourceDirectoryNotEnabled");
        }
      } else if (accounts.count(t)) {
        if (t == rs.owner) return failure(404, "InvalidAccount.Forbbiden");
        bool internal = !mine.empty() && directory_of(t) == mine;
        if (!internal && !rs.external) return failure(400, "InvalidParameter.Targets");
      } else if (has_prefix(t, "rd-") || has_prefix(t, "fd-") || has_prefix(t, "r-")) {
        return failure(403, "OperationDenied.ResourceDirectoryNotEnabled");
      } else {
        return failure(400, "InvalidParameter.Targets");
      }
    }
    // Rules 5 and 6 for what the call newly shares: a newly associated resource
    // reaches every target, an associated one only the new targets.
    std::set<std::string> all_resources = rs.resources, all_targets = rs.targets, new_targets;
    all_resources.insert(resources.begin(), resources.end());
    for (const auto& t : targets) {
      if (all_targets.insert(t).second) new_targets.insert(t);
    }
    const std::string owner_site = accounts.at(rs.owner).site;
    std::string rule5, rule6;
    for (const auto& id : all_resources) {
      const bool fresh = !rs.resources.count(id);
      if (!fresh && new_targets.empty()) continue;
      const MImage& x = images.at(id);
      if (rule5.empty()) rule5 = encryption_error(x);
      if (!x.derived || !rule6.empty()) continue;
      for (const auto& t : fresh ? all_targets : new_targets) {
        for (const auto& a : covered(t)) {
          if (a != rs.owner && accounts.at(a).site != owner_site) rule6 = "InvalidImageId.BidMismatch";
        }
      }
    }
    if (!rule5.empty()) {
      // Rule 5 comes first; when another resource fails rule 6, either answer names a real refusal.
      Outcome o = failure(403, rule5);
      o.alt_code = rule6;
      return o;
    }
    if (!rule6.empty()) return failure(403, rule6);
    return std::nullopt;
  }

  const MShare* owned_share(const std::string& caller, const std::string& id) const {
    auto it = shares.find(id);
    if (it == shares.end() || it->second.deleted || it->second.owner != caller) return nullptr;
    return &it->second;
  }

  Outcome on(const CreateResourceShare& c) {
    if (c.name.empty()) return failure(400, "MissingParameter");
    if (shares.count(c.share_id)) return failure(409, "IdempotentParameterMismatch");
    MShare draft;
    draft.owner = c.caller;
    draft.external = c.allow_external;
    if (auto e = check_association(draft, c.resources, c.targets)) return *e;
    draft.resources.insert(c.resources.begin(), c.resources.end());
    draft.targets.insert(c.targets.begin(), c.targets.end());
    int events = 1 + (!c.resources.empty() || !c.targets.empty());
    return org(success(events, [=, this] { shares[c.share_id] = draft; }));
  }

  Outcome on(const AssociateResourceShare& c) {
    const MShare* rs = owned_share(c.caller, c.share_id);
    if (!rs) return failure(404, "EntityNotExists.ResourceShare");
    if (auto e = check_association(*rs, c.resources, c.targets)) return *e;
    bool adds = false;
    for (const auto& r : c.resources) adds = adds || !rs->resources.count(r);
    for (const auto& t : c.targets) adds = adds || !rs->targets.count(t);
    return org(success(adds ? 1 : 0, [=, this] {
      MShare& s = shares[c.share_id];
      s.resources.insert(c.resources.begin(), c.resources.end());
      s.targets.insert(c.targets.begin(), c.targets.end());
    }));
  }

  Outcome on(const DisassociateResourceShare& c) {
    const MShare* rs = owned_share(c.caller, c.share_id);
    if (!rs) return failure(404, "EntityNotExists.ResourceShare");
    if (c.resources.size() > 5 || c.targets.size() > 5) return failure(400, "InvalidParameter");
    bool removes = false;
    for (const auto& r : c.resources) removes = removes || rs->resources.count(r);
    for (const auto& t : c.targets) removes = removes || rs->targets.count(t);
    return org(success(removes ? 1 : 0, [=, this] {
      MShare& s = shares[c.share_id];
      for (const auto& r : c.resources) s.resources.erase(r);
      for (const auto& t : c.targets) s.targets.erase(t);
    }));
  }

  Outcome on(const DeleteResourceShare& c) {
    if (!owned_share(c.caller, c.share_id)) return failure(404, "EntityNotExists.ResourceShare");
    return org(success(1, [=, this] {
      MShare& s = shares[c.share_id];
      s.deleted = true;
      s.resources.clear();
      s.targets.clear();
    }));
  }

  Limits limits_;
  std::map<Pair, std::set<std::string>> organization_;  // resource-share grants
};

// ---- random commands -----------------------------------------------------------

class Random {
 public:
  explicit Random(std::uint64_t seed) : g_(seed) {}
  int between(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(g_); }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(g_) < p; }
  template <class V>
  const typename V::value_type& pick(const V& v) {
    return *std::next(v.begin(), between(0, static_cast<int>(v.size()) - 1));
  }
  std::string chars(std::string_view alphabet, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += alphabet[between(0, static_cast<int>(alphabet.size()) - 1)];
    return s;
  }
  std::mt19937_64& engine() { return g_; }

 private:
  std::mt19937_64 g_;
};

constexpr std::string_view kLower = "0123456789abcdefghijklmnopqrstuvwxyz";
constexpr std::string_view kAlnum = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

class ModelRun {
 public:
  ModelRun(std::uint64_t seed, Ledger& ledger, const Limits& limits)
      : rng_(seed), ledger_(ledger), model_(limits) {
    for (const auto& [id, x] : model_.images) catalog_.push_back(id);
  }

  // Runs `steps` commands; stops at the first disagreement.
  void run(int steps) {
    for (step_ = 1; step_ <= steps; ++step_) {
      one_step();
      if (::testing::Test::HasFailure()) return;
      auto t0 = std::chrono::steady_clock::now();
      if (step_ % kCheckpointEvery == 0 || step_ == steps) {
        verify_everything();
      } else if (step_ % kRowCheckEvery == 0) {
        verify_rows();
      }
      checkpoint_time_ += std::chrono::steady_clock::now() - t0;
      if (::testing::Test::HasFailure()) return;
    }
    step_ = steps;
  }

  void print_summary(std::ostream& o) const {
    o << "pairs checked " << pairs_checked_ << ", recipient counts " << recipients_checked_ << ", instances "
      << instances_checked_ << "; accounts " << model_.accounts.size() << ", images " << model_.images.size()
      << ", instances live " << model_.instances.size() << ", shares " << model_.shares.size() << ", directories "
      << model_.directories.size() << ", pairs with both an account and a resource-share grant seen "
      << overlapping_grants_ << "\n";
    auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
    o << "time: execute " << ms(execute_time_) << " ms, per-step checks " << ms(verify_time_) << " ms, checkpoints "
      << ms(checkpoint_time_) << " ms\n";
    for (const auto& [key, n] : outcomes_) o << "  " << key << ": " << n << "\n";
  }

  const std::map<std::string, int>& outcomes() const { return outcomes_; }

 private:
  // ---- ids ----
  std::string new_account() { return std::string(1, "123456789"[rng_.between(0, 8)]) + rng_.chars("0123456789", 15); }
  std::string new_key() { return "LTAI" + rng_.chars(kAlnum, 20); }
  std::string new_image() { return "m-" + rng_.chars(kLower, 20); }
  std::string new_instance() { return "i-" + rng_.chars(kAlnum, 20); }
  std::string new_disk() { return "d-" + rng_.chars(kAlnum, 20); }

  // ---- picks ----
  const std::string& any_account() { return rng_.pick(accounts_); }
  std::vector<std::string> custom_images(bool live_only) const {
    std::vector<std::string> out;
    for (const auto& [id, x] : model_.images) {
      if (x.kind == "custom" && (!live_only || x.live())) out.push_back(id);
    }
    return out;
  }
  std::vector<std::string> images_of(const std::string& owner) const {
    std::vector<std::string> out;
    for (const auto& [id, x] : model_.images) {
      if (x.kind == "custom" && x.live() && x.owner == owner) out.push_back(id);
    }
    return out;
  }
  std::vector<std::string> usable_by(const std::string& account, const std::string& region) const {
    std::vector<std::string> out;
    for (const auto& [id, x] : model_.images) {
      if ((region.empty() || x.region == region) && model_.can_use(account, id)) out.push_back(id);
    }
    return out;
  }
  std::vector<std::string> members_of(const std::string& directory) const {
    std::vector<std::string> out;
    for (const auto& [id, a] : model_.accounts) {
      if (model_.directory_of(id) == directory) out.push_back(id);
    }
    return out;
  }
  std::vector<std::string> folders_of(const std::string& directory) const {
    std::vector<std::string> out;
    for (const auto& [id, f] : model_.folders) {
      if (f.directory == directory) out.push_back(id);
    }
    return out;
  }
  std::string pick_region(const std::string& usual, double other = 0.04, double unknown = 0.02) {
    double r = std::uniform_real_distribution<double>(0, 1)(rng_.engine());
    if (r < unknown) return kUnknownRegion;
    if (r < unknown + other) return rng_.pick(kRegions);
    return usual;
  }

  // ---- generators ----
  Command next() {
    if (accounts_.size() < 24) return gen_register();
    struct Weighted {
      int weight;
      Command (ModelRun::*gen)();
    };
    static const Weighted kMix[] = {
        {2, &ModelRun::gen_register},     {3, &ModelRun::gen_role},           {10, &ModelRun::gen_create_image},
        {2, &ModelRun::gen_mark},         {5, &ModelRun::gen_copy},           {6, &ModelRun::gen_delete_image},
        {18, &ModelRun::gen_share},       {2, &ModelRun::gen_bulk_share},     {3, &ModelRun::gen_unshare_all},
        {12, &ModelRun::gen_run},
        {5, &ModelRun::gen_replace},      {7, &ModelRun::gen_reinit},         {4, &ModelRun::gen_delete_instance},
        {1, &ModelRun::gen_enable_dir},   {2, &ModelRun::gen_folder},         {3, &ModelRun::gen_invite},
        {3, &ModelRun::gen_accept},       {3, &ModelRun::gen_move},           {2, &ModelRun::gen_remove},
        {1, &ModelRun::gen_enable_sharing}, {3, &ModelRun::gen_create_share}, {5, &ModelRun::gen_associate},
        {3, &ModelRun::gen_disassociate}, {1, &ModelRun::gen_delete_share},
    };
    int total = 0;
    for (const auto& w : kMix) total += w.weight;
    int r = rng_.between(0, total - 1);
    for (const auto& w : kMix) {
      if ((r -= w.weight) < 0) return (this->*w.gen)();
    }
    return gen_share();
  }

  Command gen_register() {
    if (accounts_.size() >= kMaxAccounts || (!accounts_.empty() && rng_.chance(0.03))) {
      return RegisterAccount{any_account(), "cn", new_key()};  // already registered
    }
    return RegisterAccount{new_account(), rng_.chance(0.5) ? "cn" : "intl", new_key()};
  }

  Command gen_role() { return SetEncryptShareRole{any_account(), rng_.chance(0.6)}; }

  Command gen_create_image() {
    if (model_.instances.empty()) return gen_run();
    const auto& [id, i] = rng_.pick(model_.instances);
    std::string caller = rng_.chance(0.05) ? any_account() : i.owner;
    std::string instance = rng_.chance(0.03) ? rng_.pick(all_instances_) : id;
    return CreateImage{caller, pick_region(i.region), instance, new_image(), "image", rng_.chance(0.9)};
  }

  Command gen_mark() {
    std::vector<std::string> creating;
    for (const auto& [id, x] : model_.images) {
      if (x.status == "Creating") creating.push_back(id);
    }
    return MarkImageAvailable{creating.empty() ? rng_.pick(model_.images).first : rng_.pick(creating)};
  }

  Command gen_copy() {
    auto mine = custom_images(true);
    std::string caller, image;
    if (!mine.empty() && rng_.chance(0.7)) {
      image = rng_.pick(mine);
      caller = model_.images.at(image).owner;
    } else {
      image = rng_.pick(model_.images).first;
      caller = any_account();
    }
    std::string key = rng_.chance(0.5) ? "" : "key-" + rng_.chars(kLower, 8);
    return CopyImage{caller, pick_region(model_.images.at(image).region), image,
                     pick_region(rng_.pick(kRegions), 0, 0.03), new_image(), "copy", rng_.chance(0.4), key,
                     rng_.chance(0.95)};
  }

  Command gen_delete_image() {
    std::vector<std::string> candidates;
    if (rng_.chance(0.5)) {  // images instances run from (so deleting blocks them)
      for (const auto& [id, i] : model_.instances) {
        if (model_.images.at(i.image).kind == "custom" && model_.images.at(i.image).live()) candidates.push_back(i.image);
      }
    }
    if (candidates.empty()) candidates = custom_images(false);
    if (candidates.empty()) return gen_create_image();
    const std::string& image = rng_.pick(candidates);
    const MImage& x = model_.images.at(image);
    return DeleteImage{rng_.chance(0.9) ? x.owner : any_account(), pick_region(x.region), image, rng_.chance(0.6)};
  }

  // Takes every account share (and publicity) off an image, so it can be deleted.
  Command gen_unshare_all() {
    std::vector<std::string> shared;
    for (const auto& [id, x] : model_.images) {
      if (x.live() && (!x.direct.empty() || x.is_public)) shared.push_back(id);
    }
    if (shared.empty()) return gen_share();
    const std::string& image = rng_.pick(shared);
    const MImage& x = model_.images.at(image);
    ModifyImageSharePermission c{x.owner, x.region, image, {}, {}, std::nullopt};
    for (const auto& a : x.direct) {
      if (c.remove_accounts.size() < 10) c.remove_accounts.push_back(a);
    }
    if (x.is_public) c.is_public = false;
    return c;
  }

  Command gen_share() {
    auto live = custom_images(rng_.chance(0.95));
    if (live.empty()) return gen_create_image();
    const std::string& image = rng_.pick(live);
    const MImage& x = model_.images.at(image);
    std::string caller = rng_.chance(0.93) ? x.owner : any_account();
    ModifyImageSharePermission c{caller, pick_region(x.region, 0.03, 0.01), image, {}, {}, std::nullopt};
    int adds = rng_.chance(0.04) ? 11 : rng_.between(0, 4);
    for (int n = 0; n < adds; ++n) {
      double r = std::uniform_real_distribution<double>(0, 1)(rng_.engine());
      if (r < 0.80 || (r < 0.88 && x.direct.empty())) c.add_accounts.push_back(any_account());
      else if (r < 0.88) c.add_accounts.push_back(rng_.pick(x.direct));
      else if (r < 0.93) c.add_accounts.push_back(new_account());  // unknown
      else if (r < 0.97) c.add_accounts.push_back(caller);
      else if (!c.add_accounts.empty()) c.add_accounts.push_back(c.add_accounts.back());  // a duplicate
    }
    int removes = rng_.chance(0.03) ? 11 : rng_.between(0, 3);
    for (int n = 0; n < removes; ++n) {
      bool current = !x.direct.empty() && rng_.chance(0.7);
      c.remove_accounts.push_back(current ? rng_.pick(x.direct) : any_account());
    }
    if (!c.remove_accounts.empty() && rng_.chance(0.04)) c.add_accounts.push_back(c.remove_accounts.front());
    if (x.is_public && rng_.chance(0.3)) c.is_public = false;  // a public image goes private again
    else if (rng_.chance(0.08)) c.is_public = true;
    else if (rng_.chance(0.05)) c.is_public = false;
    return c;
  }

  // Pushes one image toward the 50-recipient limit.
  Command gen_bulk_share() {
    std::string best;
    std::size_t most = 0;
    for (const auto& [id, x] : model_.images) {
      if (x.kind == "custom" && x.live() && x.status == "Available" && !x.encrypted && !x.derived &&
          (best.empty() || x.direct.size() > most)) {
        best = id;
        most = x.direct.size();
      }
    }
    if (best.empty()) return gen_share();
    const MImage& x = model_.images.at(best);
    ModifyImageSharePermission c{x.owner, x.region, best, {}, {}, std::nullopt};
    for (int tries = 0; tries < 40 && c.add_accounts.size() < 10; ++tries) {
      const std::string& a = any_account();
      if (a != x.owner && !x.direct.count(a) &&
          std::find(c.add_accounts.begin(), c.add_accounts.end(), a) == c.add_accounts.end()) {
        c.add_accounts.push_back(a);
      }
    }
    return c;
  }

  std::string image_for(const std::string& account, const std::string& region) {
    double r = std::uniform_real_distribution<double>(0, 1)(rng_.engine());
    if (r < 0.5) {
      auto usable = usable_by(account, region);
      std::erase_if(usable, [&](const std::string& id) { return model_.images.at(id).kind != "custom"; });
      if (!usable.empty()) return rng_.pick(usable);
    }
    if (r < 0.8) return rng_.pick(catalog_);
    return rng_.pick(model_.images).first;
  }

  Command gen_run() {
    const std::string& caller = any_account();
    std::string image = image_for(caller, rng_.chance(0.7) ? rng_.pick(kRegions) : "");
    RunInstances c{caller, pick_region(model_.images.at(image).region, 0.05, 0.03), image, {}, {}};
    int n = rng_.chance(0.8) ? 1 : 2;
    for (int k = 0; k < n; ++k) c.instance_ids.push_back(new_instance()), c.disk_ids.push_back(new_disk());
    return c;
  }

  Command gen_replace() {
    if (model_.instances.empty()) return gen_run();
    const auto& [id, i] = rng_.pick(model_.instances);
    std::string caller = rng_.chance(0.92) ? i.owner : any_account();
    return ReplaceSystemDisk{caller, rng_.chance(0.03) ? rng_.pick(all_instances_) : id,
                             image_for(i.owner, rng_.chance(0.9) ? i.region : ""), new_disk()};
  }

  Command gen_reinit() {
    if (model_.instances.empty()) return gen_run();
    double r = std::uniform_real_distribution<double>(0, 1)(rng_.engine());
    if (r < 0.35) {
      std::vector<std::string> blocked;
      for (const auto& [id, reason] : reasons_) {
        if (!reason.empty()) blocked.push_back(id);
      }
      if (!blocked.empty()) {
        const MInstance& i = model_.instances.at(rng_.pick(blocked));
        return ReInitDisk{i.owner, i.disk};
      }
    }
    if (r < 0.85 || all_disks_.empty()) {
      const MInstance& i = rng_.pick(model_.instances).second;
      return ReInitDisk{r < 0.8 ? i.owner : any_account(), i.disk};
    }
    return ReInitDisk{any_account(), rng_.pick(all_disks_)};  // often replaced or deleted
  }

  Command gen_delete_instance() {
    if (model_.instances.empty() || rng_.chance(0.08)) {
      return DeleteInstance{any_account(), all_instances_.empty() ? new_instance() : rng_.pick(all_instances_)};
    }
    const auto& [id, i] = rng_.pick(model_.instances);
    return DeleteInstance{rng_.chance(0.9) ? i.owner : any_account(), id};
  }

  std::string some_directory() { return rng_.pick(model_.directories).first; }
  std::string manager_or_not(const std::string& directory, double p = 0.93) {
    return rng_.chance(p) ? model_.directories.at(directory).manager : any_account();
  }

  Command gen_enable_dir() {
    std::string caller = any_account();
    if (model_.directories.size() >= kMaxDirectories) {  // then only refusals
      auto members = members_of(some_directory());
      if (!members.empty()) caller = rng_.pick(members);
      else return gen_folder();
    }
    return EnableResourceDirectory{caller, "rd-" + rng_.chars(kLower, 10), "r-" + rng_.chars(kLower, 6)};
  }

  Command gen_folder() {
    if (model_.directories.empty()) return gen_enable_dir();
    std::string d = some_directory();
    double r = std::uniform_real_distribution<double>(0, 1)(rng_.engine());
    std::string parent = r < 0.85 ? rng_.pick(folders_of(d))
                       : r < 0.95 ? rng_.pick(model_.folders).first
                                  : "fd-" + rng_.chars(kLower, 10);
    return CreateFolder{manager_or_not(d), parent, "fd-" + rng_.chars(kLower, 10), rng_.chance(0.97) ? "team" : ""};
  }

  Command gen_invite() {
    if (model_.directories.empty()) return gen_enable_dir();
    std::string d = some_directory();
    std::string account = rng_.chance(0.93) ? any_account() : new_account();
    return InviteAccount{manager_or_not(d, 0.95), account, "h-" + rng_.chars(kLower, 16)};
  }

  Command gen_accept() {
    if (model_.handshakes.empty() || rng_.chance(0.08)) {
      return AcceptHandshake{any_account(), "h-" + rng_.chars(kLower, 16)};
    }
    const auto& [id, h] = rng_.pick(model_.handshakes);
    return AcceptHandshake{rng_.chance(0.92) ? h.account : any_account(), id};
  }

  Command gen_move() {
    if (model_.directories.empty()) return gen_enable_dir();
    std::string d = some_directory();
    auto members = members_of(d);
    std::string account = !members.empty() && rng_.chance(0.88) ? rng_.pick(members) : any_account();
    std::string folder = rng_.chance(0.9) ? rng_.pick(folders_of(d)) : rng_.pick(model_.folders).first;
    return MoveAccount{manager_or_not(d, 0.95), account, folder};
  }

  Command gen_remove() {
    if (model_.directories.empty()) return gen_enable_dir();
    std::string d = some_directory();
    auto members = members_of(d);
    std::erase(members, model_.directories.at(d).manager);
    std::string account = !members.empty() && rng_.chance(0.85) ? rng_.pick(members) : any_account();
    return RemoveAccount{manager_or_not(d, 0.95), account};
  }

  Command gen_enable_sharing() {
    if (model_.directories.empty()) return gen_enable_dir();
    return EnableSharingWithDirectory{manager_or_not(some_directory(), 0.85)};
  }

  std::string gen_target(const std::string& caller) {
    std::string d = model_.directory_of(caller);
    double r = std::uniform_real_distribution<double>(0, 1)(rng_.engine());
    if (!d.empty() && r < 0.2) return d;
    if (!d.empty() && r < 0.45) return rng_.pick(folders_of(d));
    if (!d.empty() && r < 0.6) return rng_.pick(members_of(d));
    if (r < 0.8) return any_account();
    if (r < 0.85) return rng_.chance(0.5) ? "rd-" + rng_.chars(kLower, 10) : "fd-" + rng_.chars(kLower, 10);
    if (r < 0.9) return new_account();  // no such account
    if (!model_.folders.empty()) return rng_.pick(model_.folders).first;  // maybe another directory's
    return any_account();
  }

  std::vector<std::string> gen_resources(const std::string& caller, int most) {
    std::vector<std::string> out;
    auto mine = images_of(caller);
    int n = rng_.between(0, most);
    for (int k = 0; k < n; ++k) {
      out.push_back(!mine.empty() && rng_.chance(0.88) ? rng_.pick(mine) : rng_.pick(model_.images).first);
    }
    return out;
  }

  std::string org_caller() {
    if (!model_.directories.empty() && rng_.chance(0.75)) {
      auto members = members_of(some_directory());
      if (!members.empty()) return rng_.pick(members);
    }
    return any_account();
  }

  Command gen_create_share() {
    std::string caller = org_caller();
    CreateResourceShare c{caller, "rs-" + rng_.chars(kLower, 10), rng_.chance(0.98) ? "share" : "", {}, {},
                          rng_.chance(0.5)};
    c.resources = gen_resources(caller, 2);
    int n = rng_.chance(0.02) ? 6 : rng_.between(0, 3);
    for (int k = 0; k < n; ++k) c.targets.push_back(gen_target(caller));
    return c;
  }

  const std::pair<const std::string, MShare>* some_share() {
    std::vector<const std::pair<const std::string, MShare>*> live;
    for (const auto& kv : model_.shares) {
      if (!kv.second.deleted) live.push_back(&kv);
    }
    if (!live.empty() && rng_.chance(0.92)) return rng_.pick(live);
    if (model_.shares.empty()) return nullptr;
    return &rng_.pick(model_.shares);
  }

  Command gen_associate() {
    auto* rs = some_share();
    if (!rs) return gen_create_share();
    std::string caller = rng_.chance(0.93) ? rs->second.owner : any_account();
    AssociateResourceShare c{caller, rs->first, gen_resources(rs->second.owner, 2), {}};
    int n = rs->second.targets.size() >= 8 ? 0 : rng_.between(0, 2);
    for (int k = 0; k < n; ++k) c.targets.push_back(gen_target(rs->second.owner));
    return c;
  }

  Command gen_disassociate() {
    auto* rs = some_share();
    if (!rs) return gen_create_share();
    const MShare& s = rs->second;
    DisassociateResourceShare c{rng_.chance(0.93) ? s.owner : any_account(), rs->first, {}, {}};
    if (!s.resources.empty() && rng_.chance(0.6)) c.resources.push_back(rng_.pick(s.resources));
    if (!s.targets.empty() && rng_.chance(0.6)) c.targets.push_back(rng_.pick(s.targets));
    if (rng_.chance(0.15)) c.targets.push_back(gen_target(s.owner));
    if (rng_.chance(0.02)) c.resources.assign(6, rng_.pick(model_.images).first);
    return c;
  }

  Command gen_delete_share() {
    auto* rs = some_share();
    if (!rs) return gen_create_share();
    return DeleteResourceShare{rng_.chance(0.9) ? rs->second.owner : any_account(), rs->first};
  }

  // The model's and the ledger's view of the images a command names (for failure messages).
  std::string context(const Command& c) {
    std::set<std::string> ids;
    std::visit(
        [&](const auto& x) {
          if constexpr (requires { x.image_id; }) ids.insert(x.image_id);
          if constexpr (requires { x.resources; }) ids.insert(x.resources.begin(), x.resources.end());
        },
        c);
    std::ostringstream o;
    auto view = ledger_.view();
    for (const auto& id : ids) {
      auto it = model_.images.find(id);
      if (it == model_.images.end()) continue;
      const MImage& x = it->second;
      o << "\n  model " << id << ": kind=" << x.kind << " owner=" << x.owner << " status=" << x.status
        << " encrypted=" << x.encrypted << " kms=" << x.kms << " derived=" << x.derived << " public=" << x.is_public
        << " direct=" << x.direct.size();
      if (!x.owner.empty()) o << " owner_role=" << model_.accounts.at(x.owner).role;
      if (view.ok()) {
        auto row = row_json(**view, "img/" + id);
        o << "\n  row   " << (row ? row->dump() : "absent");
        if (!x.owner.empty()) {
          auto owner = row_json(**view, "acct/" + x.owner);
          o << "\n  owner " << (owner ? owner->dump() : "absent");
        }
      }
    }
    return o.str();
  }

  // ---- one step ----

  void one_step() {
    Command c = next();
    const std::string what = "step " + std::to_string(step_) + ": " + describe(c) + context(c);
    Outcome want = model_.decide(c);
    const std::uint64_t before = ledger_.head().seq;
    auto t0 = std::chrono::steady_clock::now();
    auto got = ledger_.execute(c);
    execute_time_ += std::chrono::steady_clock::now() - t0;
    ++outcomes_[name_of(c) + " " + (got.ok() ? "ok" : got.error().code)];
    model_.touched_pairs.clear();
    model_.touched_images.clear();
    if (!want.ok) {
      ASSERT_FALSE(got.ok()) << what << "\n  succeeded; the model expected " << want.http << " " << want.code;
      if (got.error().code != want.alt_code || want.alt_code.empty()) {
        EXPECT_EQ(got.error().code, want.code) << what << "\n  " << describe(got.error());
      }
      EXPECT_EQ(got.error().http, want.http) << what << "\n  " << describe(got.error());
      EXPECT_EQ(ledger_.head().seq, before) << what << ": a rejected command appended";
    } else {
      ASSERT_TRUE(got.ok()) << what << "\n  failed with " << describe(got.error()) << "; the model expected success";
      EXPECT_EQ(got->events.size(), static_cast<std::size_t>(want.events)) << what;
      EXPECT_EQ(got->seq, before + want.events) << what;
      if (std::holds_alternative<DeleteImage>(c)) {
        ASSERT_EQ(got->events.size(), 1u);
        auto blocked = std::get<ImageDeleted>(got->events[0].data).blocked_instances;
        std::sort(blocked.begin(), blocked.end());
        EXPECT_EQ(blocked, want.blocked) << what;
      }
      if (want.apply) want.apply();
      if (want.organization) model_.refresh_organization_grants();
      remember(c);
    }
    auto t1 = std::chrono::steady_clock::now();
    verify_step(c);
    verify_time_ += std::chrono::steady_clock::now() - t1;
  }

  // Keeps the generator's id pools in step with what now exists.
  void remember(const Command& c) {
    if (auto* r = std::get_if<RegisterAccount>(&c)) accounts_.push_back(r->account_id);
    if (auto* r = std::get_if<RunInstances>(&c)) {
      all_instances_.insert(all_instances_.end(), r->instance_ids.begin(), r->instance_ids.end());
      all_disks_.insert(all_disks_.end(), r->disk_ids.begin(), r->disk_ids.end());
    }
    if (auto* r = std::get_if<ReplaceSystemDisk>(&c)) all_disks_.push_back(r->new_disk_id);
  }

  // ---- comparing the projections with the model ----

  void check_pair(const RowView& view, const std::string& account, const std::string& image) {
    ++pairs_checked_;
    auto got = check_access(view, account, image, Viewer{true, ""});
    ASSERT_TRUE(got.ok()) << describe(got.error());
    auto want = model_.access_sources(account, image);
    EXPECT_EQ((*got)["sources"].get<std::vector<std::string>>(), want)
        << "step " << step_ << ": check_access(" << account << ", " << image << ")";
    EXPECT_EQ((*got)["allowed"].get<bool>(), !want.empty());
    if (pairs_checked_ % 16 == 0) {  // an account asking about itself sees the same
      auto own = check_access(view, account, image, Viewer{false, account});
      ASSERT_TRUE(own.ok());
      EXPECT_EQ(*own, *got);
    }
    const auto grants = std::count_if(want.begin(), want.end(), [](const std::string& s) {
      return s == "account" || s.starts_with("resource-share:");
    });
    if (grants > 1 && std::count(want.begin(), want.end(), "account")) ++overlapping_grants_;
  }

  void check_recipients(const RowView& view, const std::string& image) {
    ++recipients_checked_;
    auto got = image_recipients(view, image, Viewer{true, ""});
    const MImage& x = model_.images.at(image);
    if (!x.live()) {
      ASSERT_FALSE(got.ok()) << "step " << step_ << ": recipients of deleted " << image;
      EXPECT_EQ(got.error().code, "InvalidImageId.NotFound");
      return;
    }
    ASSERT_TRUE(got.ok()) << describe(got.error());
    auto want = model_.recipients(image);
    const std::string where = "step " + std::to_string(step_) + ": recipients of " + image + " " + got->dump();
    EXPECT_EQ((*got)["direct"], want.direct) << where;
    EXPECT_EQ((*got)["via_directory"], want.via_directory) << where;
    EXPECT_EQ((*got)["public"], want.is_public) << where;
    EXPECT_EQ((*got)["effective"], want.effective) << where;
    if (x.kind == "custom") {  // the owner sees them; anyone else gets NotFound
      EXPECT_TRUE(image_recipients(view, image, Viewer{false, x.owner}).ok());
      const std::string& other = any_account();
      if (other != x.owner) {
        EXPECT_FALSE(image_recipients(view, image, Viewer{false, other}).ok());
      }
    }
  }

  void check_instance(const RowView& view, const std::string& id) {
    ++instances_checked_;
    auto got = instance_status(view, id, Viewer{true, ""});
    auto it = model_.instances.find(id);
    if (it == model_.instances.end()) {
      ASSERT_FALSE(got.ok()) << "step " << step_ << ": deleted instance " << id << " still answers";
      EXPECT_EQ(got.error().code, "InvalidInstanceId.NotFound");
      return;
    }
    ASSERT_TRUE(got.ok()) << "step " << step_ << ": instance " << id << ": " << describe(got.error());
    const MInstance& i = it->second;
    const std::string reason = model_.reinit_reason(i);
    const std::string where = "step " + std::to_string(step_) + ": instance " + id + " " + got->dump();
    EXPECT_EQ((*got)["owner"], i.owner) << where;
    EXPECT_EQ((*got)["region"], i.region) << where;
    EXPECT_EQ((*got)["image_id"], i.image) << where;
    EXPECT_EQ((*got)["disk_id"], i.disk) << where;
    EXPECT_EQ((*got)["image_fee_payer"], i.payer) << where;
    EXPECT_EQ((*got)["product_code"], i.product_code) << where;
    EXPECT_EQ((*got)["reason"], reason) << where;
    EXPECT_EQ((*got)["reinit_blocked"], !reason.empty()) << where;
  }

  // Instances whose expected reinit state changed in this step.
  std::vector<std::string> changed_reasons() {
    std::vector<std::string> changed;
    std::map<std::string, std::string> now;
    for (const auto& [id, i] : model_.instances) {
      now[id] = model_.reinit_reason(i);
      auto before = reasons_.find(id);
      if (before == reasons_.end() || before->second != now[id]) changed.push_back(id);
    }
    for (const auto& [id, reason] : reasons_) {
      if (!now.count(id)) changed.push_back(id);
    }
    reasons_ = std::move(now);
    return changed;
  }

  void verify_step(const Command& c) {
    auto view = ledger_.view();
    ASSERT_TRUE(view.ok());
    const RowView& v = **view;
    std::set<std::string> images = model_.touched_images, instances;
    std::visit(
        [&](const auto& x) {
          if constexpr (requires { x.image_id; }) images.insert(x.image_id);
          if constexpr (requires { x.new_image_id; }) images.insert(x.new_image_id);
          if constexpr (requires { x.resources; }) images.insert(x.resources.begin(), x.resources.end());
          if constexpr (requires { x.instance_id; }) instances.insert(x.instance_id);
          if constexpr (requires { x.instance_ids; }) instances.insert(x.instance_ids.begin(), x.instance_ids.end());
        },
        c);
    for (const auto& [image, account] : model_.touched_pairs) check_pair(v, account, image);
    for (const auto& image : model_.touched_images) {
      for (const auto& account : accounts_) check_pair(v, account, image);
    }
    for (const auto& image : images) {
      if (!model_.images.count(image)) continue;  // never created
      check_recipients(v, image);
      for (int k = 0; k < 4; ++k) check_pair(v, any_account(), image);
    }
    for (const auto& id : changed_reasons()) instances.insert(id);
    for (const auto& [id, i] : model_.instances) {  // the command's images' instances
      if (images.count(i.image)) instances.insert(id);
    }
    for (const auto& id : instances) {
      if (model_.instances.count(id) || std::count(all_instances_.begin(), all_instances_.end(), id)) {
        check_instance(v, id);
      }
    }
    for (int k = 0; k < 8; ++k) check_pair(v, any_account(), rng_.pick(model_.images).first);
    if (!model_.instances.empty()) check_instance(v, rng_.pick(model_.instances).first);
    check_recipients(v, rng_.pick(model_.images).first);
  }

  // Every check_access pair, then verify_rows().
  void verify_everything() {
    auto view = ledger_.view();
    ASSERT_TRUE(view.ok());
    for (const auto& [image, x] : model_.images) {
      for (const auto& account : accounts_) check_pair(**view, account, image);
    }
    verify_rows();
  }

  // Everything but the pairs: cheap enough to run often, so a change the model
  // did not expect (and the per-step checks did not look at) shows up soon.
  void verify_rows() {
    auto view = ledger_.view();
    ASSERT_TRUE(view.ok());
    const RowView& v = **view;
    for (const auto& [image, x] : model_.images) check_recipients(v, image);
    for (const auto& id : all_instances_) check_instance(v, id);
    // The grant rows hold exactly the model's grants, deleted images included.
    std::map<Pair, std::set<std::string>> rows;
    v.scan("grant/", [&](std::string_view, std::string_view value) {
      Json g = Json::parse(value);
      auto& sources = rows[{g["image_id"].get<std::string>(), g["account_id"].get<std::string>()}];
      for (const auto& [source, since] : g["sources"].items()) sources.insert(source);
      return true;
    });
    EXPECT_EQ(rows, model_.all_grants()) << "step " << step_ << ": grant rows";
  }

  Random rng_;
  Ledger& ledger_;
  Model model_;
  int step_ = 0;
  std::vector<std::string> accounts_, catalog_, all_instances_, all_disks_;
  std::map<std::string, std::string> reasons_;  // instance -> expected reinit reason, last step
  std::map<std::string, int> outcomes_;
  std::chrono::steady_clock::duration execute_time_{}, verify_time_{}, checkpoint_time_{};
  std::uint64_t pairs_checked_ = 0, recipients_checked_ = 0, instances_checked_ = 0, overlapping_grants_ = 0;
};

TEST(ModelTest, RandomCommandsAgreeWithAReferenceModel) {
  const std::uint64_t seed = env_number("SHARELEDGER_SEED", kDefaultSeed);
  const int steps = static_cast<int>(env_number("SHARELEDGER_MODEL_STEPS", kDefaultSteps));
  std::cout << "seed=" << seed << " steps=" << steps << " (set SHARELEDGER_SEED to replay another run)" << std::endl;
  const std::string dir = scratch_root() + "shareledger_model_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);

  LedgerOptions options;
  options.limits.image_quota = kImageQuota;
  options.limits.regions = kRegions;
  auto t0 = std::chrono::steady_clock::now();
  {
    auto ledger = Ledger::open(dir, options);
    ASSERT_TRUE(ledger.ok()) << describe(ledger.error());
    ModelRun run(seed, **ledger, options.limits);
    run.run(steps);
    run.print_summary(std::cout);
    if (::testing::Test::HasFailure()) {
      std::cout << "reproduce with SHARELEDGER_SEED=" << seed << "\n";
      std::filesystem::remove_all(dir);
      return;
    }
    // The interesting paths were all taken (else the run proves little).
    for (const char* key : {
             "ModifyImageSharePermission ok", "ModifyImageSharePermission InvalidAccount.NotFound",
             "ModifyImageSharePermission InvalidAccount.Forbbiden", "ModifyImageSharePermission InvalidParameter",
             "ModifyImageSharePermission InvalidImageId.BidMismatch", "ModifyImageSharePermission AssumeRoleError",
             "ModifyImageSharePermission InvalidOperation.ServiceKeyEncryptedImageUnsupported",
             "ModifyImageSharePermission QuotaExceed.ShareImageUser", "ModifyImageSharePermission OperationDenied.InvalidImageStatus",
             "DeleteImage ok", "DeleteImage ImageUseShared", "DeleteImage ImageUsingByInstance",
             "ReInitDisk ok", "ReInitDisk SharedImageDeleted", "ReInitDisk OperationDenied.ImageNotValid",
             "ReInitDisk InvalidDiskId.NotFound", "CopyImage ok", "CopyImage OperationDenied.SameRegionOnly",
             "CreateImage ok", "CreateImage QuotaExceed.Image", "RunInstances ok", "RunInstances InvalidImageId.NotFound",
             "ReplaceSystemDisk ok", "DeleteInstance ok", "EnableResourceDirectory ok", "CreateFolder ok",
             "InviteAccount ok", "AcceptHandshake ok", "MoveAccount ok", "RemoveAccount ok",
             "EnableSharingWithDirectory ok", "CreateResourceShare ok", "AssociateResourceShare ok",
             "DisassociateResourceShare ok", "DeleteResourceShare ok"}) {
      EXPECT_GT(run.outcomes().count(key) ? run.outcomes().at(key) : 0, 0) << key << " never happened";
    }
    // Rebuild equals live: a replay of the log gives exactly the stored rows.
    auto state = replay((*ledger)->store(), ScanOptions{});
    ASSERT_TRUE(state.ok()) << describe(state.error());
    EXPECT_EQ(state->head_seq, (*ledger)->head().seq);
    auto replayed = all_rows(*state);
    auto stored = test::scan_family((*ledger)->store(), (*ledger)->store().proj());
    EXPECT_EQ(replayed.size(), stored.size());
    EXPECT_TRUE(replayed == stored) << "the proj family differs from a replay";
    std::cout << "events " << (*ledger)->head().seq << ", rows " << stored.size() << ", "
              << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count()
              << " ms" << std::endl;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sl
