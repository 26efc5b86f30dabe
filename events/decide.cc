#include "events/decide.h"

#include <algorithm>
#include <set>

namespace sl {
namespace {

using Events = std::vector<Event>;

Event event(std::string region, EventData data) {
  Event e;
  e.region = std::move(region);
  e.data = std::move(data);
  return e;
}

Error image_not_found(const std::string& id) {
  return make_error(404, "InvalidImageId.NotFound", "The specified ImageId " + id + " does not exist.");
}
Error instance_not_found(const std::string& id) {
  return make_error(404, "InvalidInstanceId.NotFound", "The specified InstanceId " + id + " does not exist.");
}
Error account_not_found(const std::string& id) {
  return make_error(404, "InvalidAccount.NotFound", "The specified account " + id + " does not exist.");
}
Error invalid_status() {
  return make_error(403, "OperationDenied.InvalidImageStatus", "The current status of the image does not support this operation.");
}
Error directory_not_enabled() {
  return make_error(403, "OperationDenied.ResourceDirectoryNotEnabled",
                    "The resource directory is not enabled or sharing with it is not enabled.");
}

std::vector<std::string> unique_in_order(const std::vector<std::string>& in) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& s : in) {
    if (seen.insert(s).second) out.push_back(s);
  }
  return out;
}

class Decider {
 public:
  Decider(const State& s, const Limits& limits) : s_(s), limits_(limits) {}

  Result<Events> operator()(const RegisterAccount& c) {
    if (c.site != "cn" && c.site != "intl") return make_error(400, "InvalidParameter", "site must be cn or intl");
    if (s_.account(c.account_id) || s_.access_keys.count(c.access_key_id)) {
      return make_error(409, "IdempotentParameterMismatch", "account or access key already exists");
    }
    return Events{event("", AccountRegistered{c.account_id, c.site}),
                  event("", AccessKeyIssued{c.account_id, c.access_key_id})};
  }

  Result<Events> operator()(const SetEncryptShareRole& c) {
    const Account* a = s_.account(c.account_id);
    if (!a) return account_not_found(c.account_id);
    if (a->encrypt_role == c.authorized) return Events{};
    if (c.authorized) return Events{event("", EncryptShareRoleAuthorized{c.account_id})};
    return Events{event("", EncryptShareRoleRevoked{c.account_id})};
  }

  Result<Events> operator()(const SeedCatalogImage& c) {
    if (s_.image(c.image_id)) return Events{};
    Origin origin;
    if (c.kind == "marketplace") {
      origin.marketplace_derived = true;
      origin.product_code = c.product_code;
      origin.paid = c.paid;
    }
    return Events{event(c.region, ImageCreated{c.image_id, "", c.region, c.name, c.kind, c.site, origin, "Available"})};
  }

  Result<Events> operator()(const CreateImage& c) {
    if (auto r = check_region(c.region); !r) return r.error();
    const Instance* i = s_.instance(c.instance_id);
    if (!i || i->owner != c.caller || i->region != c.region) return instance_not_found(c.instance_id);
    if (auto r = check_quota(c.caller, c.region); !r) return r.error();
    if (auto r = check_fresh_image_id(c.image_id); !r) return r.error();
    const Image* source = s_.image(i->image_id);
    Origin origin = source ? source->origin : Origin{};
    return Events{event(c.region, ImageCreated{c.image_id, c.caller, c.region, name_or_id(c.name, c.image_id), "custom",
                                               "", origin, c.available_now ? "Available" : "Creating"})};
  }

  Result<Events> operator()(const MarkImageAvailable& c) {
    const Image* x = s_.image(c.image_id);
    if (!x || x->status != "Creating") return Events{};
    return Events{event(x->region, ImageBecameAvailable{c.image_id})};
  }

  Result<Events> operator()(const CopyImage& c) {
    if (auto r = check_region(c.region); !r) return r.error();
    if (auto r = check_region(c.destination_region); !r) return r.error();
    const Image* x = s_.image(c.image_id);
    if (!x || x->deleted() || x->region != c.region) return image_not_found(c.image_id);
    if (x->owner != c.caller || !x->custom()) {
      if (s_.can_use(c.caller, *x)) {
        return make_error(403, "OperationDenied.SameRegionOnly", "A shared image cannot be copied.");
      }
      return image_not_found(c.image_id);
    }
    if (x->status != "Available") return invalid_status();
    if (auto r = check_quota(c.caller, c.destination_region); !r) return r.error();
    if (auto r = check_fresh_image_id(c.new_image_id); !r) return r.error();
    Origin origin = x->origin;
    if (c.encrypted) {
      origin.encrypted = true;
      origin.kms_key = c.kms_key_id.empty() ? "service" : c.kms_key_id;
    }
    return Events{event(c.destination_region,
                        ImageCreated{c.new_image_id, c.caller, c.destination_region, name_or_id(c.name, c.new_image_id),
                                     "custom", "", origin, c.available_now ? "Available" : "Creating"})};
  }

  Result<Events> operator()(const DeleteImage& c) {
    if (auto r = check_region(c.region); !r) return r.error();
    const Image* x = owned_image(c.caller, c.region, c.image_id);
    if (!x) return image_not_found(c.image_id);
    if (s_.has_live_grant(*x)) {
      return make_error(403, "ImageUseShared", "The image is shared with other accounts; remove all shares first.");
    }
    std::vector<std::string> users;
    if (const ImageLinks* links = s_.links_of(x->id)) {
      for (const auto& [owner, instance_ids] : links->users) users.insert(users.end(), instance_ids.begin(), instance_ids.end());
      std::sort(users.begin(), users.end());  // the event lists them in id order, as before
    }
    if (!users.empty() && !c.force) {
      return make_error(403, "ImageUsingByInstance", "The image is in use by instances; set Force=true to delete it.");
    }
    return Events{event(x->region, ImageDeleted{x->id, c.force, users})};
  }

  // SPEC §1.3, rules 1-7 in order.
  Result<Events> operator()(const ModifyImageSharePermission& c) {
    if (auto r = check_region(c.region); !r) return r.error();
    const Image* x = owned_image(c.caller, c.region, c.image_id);  // rule 1
    if (!x) return image_not_found(c.image_id);
    if (x->status != "Available") return invalid_status();  // rule 2
    if (c.add_accounts.size() > kMaxAccountsPerCall || c.remove_accounts.size() > kMaxAccountsPerCall) {  // rule 3
      return make_error(400, "InvalidParameter", "At most 10 AddAccount and 10 RemoveAccount values per call.");
    }
    for (const auto& a : c.add_accounts) {  // rule 4
      if (!s_.account(a)) return account_not_found(a);
      if (a == c.caller) return make_error(404, "InvalidAccount.Forbbiden", "An image cannot be shared with its owner.");
    }
    for (const auto& a : c.add_accounts) {
      if (std::count(c.remove_accounts.begin(), c.remove_accounts.end(), a)) {
        return make_error(400, "InvalidParameter", "Account " + a + " is both in AddAccount and RemoveAccount.");
      }
    }
    std::vector<std::string> added, removed;
    for (const auto& a : unique_in_order(c.add_accounts)) {
      if (!has_account_grant(x->id, a)) added.push_back(a);
    }
    for (const auto& a : unique_in_order(c.remove_accounts)) {
      if (has_account_grant(x->id, a)) removed.push_back(a);
    }
    bool becomes_public = c.is_public && *c.is_public && !x->is_public;
    if (!added.empty() || becomes_public) {
      if (auto r = check_encryption(*x); !r) return r.error();  // rule 5
      if (x->origin.marketplace_derived) {                       // rule 6
        const Account* owner = s_.account(x->owner);
        for (const auto& a : added) {
          if (!owner || s_.account(a)->site != owner->site) return bid_mismatch();
        }
        if (becomes_public) return bid_mismatch();  // public reaches both sites
      }
    }
    int direct = s_.recipients(x->id).direct - static_cast<int>(removed.size()) + static_cast<int>(added.size());
    if (direct > kMaxAccountRecipients) {  // rule 7
      return make_error(403, "QuotaExceed.ShareImageUser", "An image can be shared with at most 50 accounts.");
    }
    Events out;
    if (!removed.empty()) out.push_back(event(x->region, ImageUnshared{x->id, removed}));
    if (!added.empty()) out.push_back(event(x->region, ImageShared{x->id, added}));
    if (c.is_public && *c.is_public != x->is_public) {
      out.push_back(event(x->region, ImagePublicityChanged{x->id, *c.is_public}));
    }
    return out;
  }

  Result<Events> operator()(const RunInstances& c) {
    if (auto r = check_region(c.region); !r) return r.error();
    const Image* x = s_.image(c.image_id);
    if (!x || x->region != c.region || !s_.can_use(c.caller, *x)) return image_not_found(c.image_id);
    if (x->status != "Available") return invalid_status();
    Events out;
    for (std::size_t n = 0; n < c.instance_ids.size(); ++n) {
      out.push_back(event(c.region, InstanceCreated{c.instance_ids[n], c.caller, c.region, x->id, c.disk_ids[n],
                                                    x->origin.paid ? c.caller : "", x->origin.product_code}));
    }
    return out;
  }

  Result<Events> operator()(const ReplaceSystemDisk& c) {
    const Instance* i = s_.instance(c.instance_id);
    if (!i || i->owner != c.caller) return instance_not_found(c.instance_id);
    const Image* x = s_.image(c.image_id);
    if (!x || x->region != i->region || !s_.can_use(c.caller, *x)) return image_not_found(c.image_id);
    if (x->status != "Available") return invalid_status();
    return Events{event(i->region, SystemDiskReplaced{i->id, x->id, c.new_disk_id})};
  }

  Result<Events> operator()(const ReInitDisk& c) {
    auto d = s_.disks.find(c.disk_id);
    const Instance* i = d == s_.disks.end() ? nullptr : s_.instance(d->second);
    if (!i || i->owner != c.caller) {
      return make_error(404, "InvalidDiskId.NotFound", "The specified DiskId " + c.disk_id + " does not exist.");
    }
    if (i->blocked_reason == "image_deleted") {
      return make_error(403, "SharedImageDeleted", "The image of this disk has been deleted.");
    }
    if (i->blocked_reason == "image_unshared") {
      return make_error(403, "OperationDenied.ImageNotValid", "The image of this disk is no longer shared with you.");
    }
    return Events{event(i->region, SystemDiskReinitialized{i->id})};
  }

  Result<Events> operator()(const DeleteInstance& c) {
    const Instance* i = s_.instance(c.instance_id);
    if (!i || i->owner != c.caller) return instance_not_found(c.instance_id);
    return Events{event(i->region, InstanceDeleted{i->id})};
  }

  // ---- organization ---------------------------------------------------------

  Result<Events> operator()(const EnableResourceDirectory& c) {
    if (!s_.account(c.caller)) return account_not_found(c.caller);
    if (!s_.directory_of(c.caller).empty()) {
      return make_error(409, "EntityAlreadyExists.ResourceDirectory", "The account already belongs to a resource directory.");
    }
    return Events{event("", ResourceDirectoryEnabled{c.directory_id, c.root_folder_id, c.caller})};
  }

  Result<Events> operator()(const CreateFolder& c) {
    const Directory* dir = managed_directory(c.caller);
    if (!dir) return no_directory();
    auto parent = s_.folders.find(c.parent_folder_id);
    if (parent == s_.folders.end() || parent->second.directory_id != dir->id) return folder_not_found(c.parent_folder_id);
    if (c.name.empty()) return make_error(400, "MissingParameter", "FolderName is mandatory for this action.");
    return Events{event("", FolderCreated{c.folder_id, c.parent_folder_id, c.name})};
  }

  Result<Events> operator()(const InviteAccount& c) {
    const Directory* dir = managed_directory(c.caller);
    if (!dir) return no_directory();
    if (!s_.account(c.account_id)) return account_not_found(c.account_id);
    if (!s_.directory_of(c.account_id).empty()) {
      return make_error(409, "EntityAlreadyExists.Account", "The account already belongs to a resource directory.");
    }
    return Events{event("", HandshakeCreated{c.handshake_id, dir->id, c.account_id})};
  }

  Result<Events> operator()(const AcceptHandshake& c) {
    auto h = s_.handshakes.find(c.handshake_id);
    if (h == s_.handshakes.end() || h->second.account_id != c.caller) {
      return make_error(404, "EntityNotExists.Handshake", "The specified handshake does not exist.");
    }
    if (!s_.directory_of(c.caller).empty()) {
      return make_error(409, "EntityAlreadyExists.Account", "The account already belongs to a resource directory.");
    }
    const Directory& dir = s_.directories.at(h->second.directory_id);
    return Events{event("", AccountJoinedDirectory{c.caller, dir.root_folder_id})};
  }

  Result<Events> operator()(const MoveAccount& c) {
    const Directory* dir = managed_directory(c.caller);
    if (!dir) return no_directory();
    if (s_.directory_of(c.account_id) != dir->id) return member_not_found(c.account_id);
    auto folder = s_.folders.find(c.folder_id);
    if (folder == s_.folders.end() || folder->second.directory_id != dir->id) return folder_not_found(c.folder_id);
    if (s_.account(c.account_id)->folder_id == c.folder_id) return Events{};
    return Events{event("", AccountMoved{c.account_id, c.folder_id})};
  }

  Result<Events> operator()(const RemoveAccount& c) {
    const Directory* dir = managed_directory(c.caller);
    if (!dir) return no_directory();
    if (c.account_id == c.caller || s_.directory_of(c.account_id) != dir->id) return member_not_found(c.account_id);
    return Events{event("", AccountLeftDirectory{c.account_id})};
  }

  Result<Events> operator()(const EnableSharingWithDirectory& c) {
    const Directory* dir = managed_directory(c.caller);
    if (!dir) return directory_not_enabled();
    if (dir->sharing_enabled) return Events{};
    return Events{event("", SharingWithDirectoryEnabled{dir->id})};
  }

  Result<Events> operator()(const CreateResourceShare& c) {
    if (c.name.empty()) return make_error(400, "MissingParameter", "ResourceShareName is mandatory for this action.");
    if (s_.shares.count(c.share_id)) return make_error(409, "IdempotentParameterMismatch", "share id in use");
    ResourceShare draft;
    draft.id = c.share_id;
    draft.owner = c.caller;
    draft.allow_external = c.allow_external;
    if (auto r = check_association(draft, c.resources, c.targets); !r) return r.error();
    Events out{event("", ResourceShareCreated{c.share_id, c.caller, c.name, c.allow_external})};
    if (!c.resources.empty() || !c.targets.empty()) {
      out.push_back(event("", ResourceShareAssociated{c.share_id, unique_in_order(c.resources), unique_in_order(c.targets)}));
    }
    return out;
  }

  Result<Events> operator()(const AssociateResourceShare& c) {
    const ResourceShare* rs = owned_share(c.caller, c.share_id);
    if (!rs) return share_not_found(c.share_id);
    if (auto r = check_association(*rs, c.resources, c.targets); !r) return r.error();
    std::vector<std::string> resources, targets;
    for (const auto& r : unique_in_order(c.resources)) {
      if (!rs->resources.count(r)) resources.push_back(r);
    }
    for (const auto& t : unique_in_order(c.targets)) {
      if (!rs->targets.count(t)) targets.push_back(t);
    }
    if (resources.empty() && targets.empty()) return Events{};
    return Events{event("", ResourceShareAssociated{c.share_id, resources, targets})};
  }

  Result<Events> operator()(const DisassociateResourceShare& c) {
    const ResourceShare* rs = owned_share(c.caller, c.share_id);
    if (!rs) return share_not_found(c.share_id);
    if (c.resources.size() > kMaxShareItemsPerCall || c.targets.size() > kMaxShareItemsPerCall) return too_many_items();
    std::vector<std::string> resources, targets;
    for (const auto& r : unique_in_order(c.resources)) {
      if (rs->resources.count(r)) resources.push_back(r);
    }
    for (const auto& t : unique_in_order(c.targets)) {
      if (rs->targets.count(t)) targets.push_back(t);
    }
    if (resources.empty() && targets.empty()) return Events{};
    return Events{event("", ResourceShareDisassociated{c.share_id, resources, targets})};
  }

  Result<Events> operator()(const DeleteResourceShare& c) {
    const ResourceShare* rs = owned_share(c.caller, c.share_id);
    if (!rs) return share_not_found(c.share_id);
    return Events{event("", ResourceShareDeleted{c.share_id})};
  }

 private:
  Status check_region(const std::string& region) const {
    if (std::find(limits_.regions.begin(), limits_.regions.end(), region) == limits_.regions.end()) {
      return make_error(404, "InvalidRegionId.NotFound", "The specified RegionId " + region + " does not exist.");
    }
    return Ok{};
  }

  Status check_quota(const std::string& owner, const std::string& region) const {
    auto it = s_.custom_images.find({owner, region});
    if (it != s_.custom_images.end() && it->second >= limits_.image_quota) {
      return make_error(403, "QuotaExceed.Image", "The custom image quota of this region is exhausted.");
    }
    return Ok{};
  }

  Status check_fresh_image_id(const std::string& id) const {
    if (s_.image(id)) return make_error(409, "IdempotentParameterMismatch", "image id in use");
    return Ok{};
  }

  // Rule 5: sharing an encrypted image needs a customer key and the owner's role.
  Status check_encryption(const Image& x) const {
    if (!x.origin.encrypted) return Ok{};
    if (x.origin.kms_key == "service") {
      return make_error(403, "InvalidOperation.ServiceKeyEncryptedImageUnsupported",
                        "Images encrypted with the service key cannot be shared.");
    }
    const Account* owner = s_.account(x.owner);
    if (!owner || !owner->encrypt_role) {
      return make_error(403, "AssumeRoleError", "Authorize AliyunECSShareEncryptImageDefaultRole before sharing encrypted images.");
    }
    return Ok{};
  }

  static Error bid_mismatch() {
    return make_error(403, "InvalidImageId.BidMismatch",
                      "An image derived from a marketplace image cannot be shared across sites.");
  }
  static Error no_directory() {
    return make_error(404, "EntityNotExists.ResourceDirectory", "The caller does not manage a resource directory.");
  }
  static Error folder_not_found(const std::string& id) {
    return make_error(404, "EntityNotExists.Folder", "The specified folder " + id + " does not exist.");
  }
  static Error member_not_found(const std::string& id) {
    return make_error(404, "EntityNotExists.Account", "The account " + id + " is not a member of the directory.");
  }
  static Error share_not_found(const std::string& id) {
    return make_error(404, "EntityNotExists.ResourceShare", "The specified resource share " + id + " does not exist.");
  }
  static Error too_many_items() {
    return make_error(400, "InvalidParameter", "At most 5 resources and 5 targets per call.");
  }

  static std::string name_or_id(const std::string& name, const std::string& id) { return name.empty() ? id : name; }

  // The caller's own live custom image in `region`, else nullptr (rule 1).
  const Image* owned_image(const std::string& caller, const std::string& region, const std::string& id) const {
    const Image* x = s_.image(id);
    if (!x || !x->custom() || x->deleted() || x->owner != caller || x->region != region) return nullptr;
    return x;
  }

  bool has_account_grant(const std::string& image_id, const std::string& account_id) const {
    const GrantSources* g = s_.grant(image_id, account_id);
    return g && g->count(std::string_view("account"));
  }

  const Directory* managed_directory(const std::string& caller) const {
    auto it = s_.directory_of_manager.find(caller);
    return it == s_.directory_of_manager.end() ? nullptr : &s_.directories.at(it->second);
  }

  const ResourceShare* owned_share(const std::string& caller, const std::string& id) const {
    auto it = s_.shares.find(id);
    if (it == s_.shares.end() || it->second.deleted || it->second.owner != caller) return nullptr;
    return &it->second;
  }

  // SPEC §1.3 rules in order: resources must be the caller's available images
  // (rules 1, 2); at most 5 of each (rule 3); targets are the caller's
  // directory, one of its folders, or accounts (external ones only with
  // AllowExternalTargets); rules 5 and 6 for what the call newly shares.
  Status check_association(const ResourceShare& rs, const std::vector<std::string>& resources,
                           const std::vector<std::string>& targets) const {
    for (const auto& id : resources) {
      const Image* x = s_.image(id);
      if (!x || !x->custom() || x->deleted() || x->owner != rs.owner) return image_not_found(id);
    }
    for (const auto& id : resources) {
      if (s_.image(id)->status != "Available") return invalid_status();
    }
    if (resources.size() > kMaxShareItemsPerCall || targets.size() > kMaxShareItemsPerCall) return too_many_items();
    std::string my_directory = s_.directory_of(rs.owner);
    for (const auto& target : targets) {
      if (s_.directories.count(target) || s_.folders.count(target)) {
        std::string target_directory =
            s_.directories.count(target) ? target : s_.folders.at(target).directory_id;
        if (my_directory.empty() || target_directory != my_directory ||
            !s_.directories.at(my_directory).sharing_enabled) {
          return directory_not_enabled();
        }
      } else if (s_.account(target)) {
        if (target == rs.owner) return make_error(404, "InvalidAccount.Forbbiden", "A share cannot target its owner.");
        bool internal = !my_directory.empty() && s_.directory_of(target) == my_directory;
        if (!internal && !rs.allow_external) {
          return make_error(400, "InvalidParameter.Targets",
                            "Target " + target + " is outside your resource directory; set AllowExternalTargets=true.");
        }
      } else if (target.rfind("rd-", 0) == 0 || target.rfind("fd-", 0) == 0 || target.rfind("r-", 0) == 0) {
        return directory_not_enabled();
      } else {
        return make_error(400, "InvalidParameter.Targets", "Target " + target + " does not exist.");
      }
    }
    return check_newly_shared(rs, resources, targets);
  }

  // Rules 5 and 6 for a resource share: a newly associated resource reaches
  // every target; an already associated one reaches only the new targets.
  Status check_newly_shared(const ResourceShare& rs, const std::vector<std::string>& resources,
                            const std::vector<std::string>& targets) const {
    std::set<std::string> all_targets = rs.targets, new_targets;
    for (const auto& t : targets) {
      if (all_targets.insert(t).second) new_targets.insert(t);
    }
    std::set<std::string> all_resources = rs.resources;
    all_resources.insert(resources.begin(), resources.end());
    for (const auto& id : all_resources) {
      bool new_resource = !rs.resources.count(id);
      if (!new_resource && new_targets.empty()) continue;
      const Image& x = *s_.image(id);
      if (auto r = check_encryption(x); !r) return r;  // rule 5
      if (!x.origin.marketplace_derived) continue;     // rule 6
      const Account* owner = s_.account(x.owner);
      for (const auto& target : new_resource ? all_targets : new_targets) {
        for (const auto& account : s_.covered_by_target(rs, target)) {
          if (account == x.owner) continue;
          if (!owner || s_.account(account)->site != owner->site) return bid_mismatch();
        }
      }
    }
    return Ok{};
  }

  const State& s_;
  const Limits& limits_;
};

}  // namespace

Result<std::vector<Event>> decide(const State& state, const Command& command, const Limits& limits) {
  return std::visit(Decider(state, limits), command);
}

}  // namespace sl
