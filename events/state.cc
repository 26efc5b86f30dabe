#include "events/state.h"

#include <algorithm>
#include <type_traits>

namespace sl {
namespace {

const std::string kAccountSource = "account";
std::string share_source(const std::string& share_id) { return "resource-share:" + share_id; }

template <class Map>
auto* find_in(Map& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? nullptr : &it->second;
}

// Applies one event to the state. One method per event type; helpers below keep
// derived facts (reinit blocking, organization grants) in step.
class Evolver {
 public:
  Evolver(State& s, const Event& e) : s_(s), since_{e.seq, e.time_us} {}

  void operator()(const AccountRegistered& d) {
    Account& a = s_.accounts[d.account_id];
    a.id = d.account_id;
    a.site = d.site;
    a.since = since_;
    touched(&Dirty::accounts, d.account_id);
  }
  void operator()(const AccessKeyIssued& d) {
    s_.accounts[d.account_id].access_keys.push_back(d.access_key_id);
    s_.access_keys[d.access_key_id] = d.account_id;
    touched(&Dirty::accounts, d.account_id);
  }
  void operator()(const EncryptShareRoleAuthorized& d) { set_role(d.account_id, true); }
  void operator()(const EncryptShareRoleRevoked& d) { set_role(d.account_id, false); }

  void operator()(const ImageCreated& d) {
    Image& x = s_.images[d.image_id];
    x.id = d.image_id;
    x.kind = d.kind;
    x.owner = d.owner;
    x.region = d.region;
    x.name = d.name;
    x.site = d.site;
    x.origin = d.origin;
    x.status = d.status;
    x.created = since_;
    if (x.custom()) ++s_.custom_images[{x.owner, x.region}];
    touched(&Dirty::images, x.id);
  }
  void operator()(const ImageBecameAvailable& d) {
    s_.images[d.image_id].status = "Available";
    touched(&Dirty::images, d.image_id);
  }
  void operator()(const ImageShared& d) {
    ImageLinks& links = links_entry(d.image_id);
    for (const auto& account : d.accounts) add_grant(links, d.image_id, account, kAccountSource);
  }
  void operator()(const ImageUnshared& d) {
    auto links = s_.links.find(d.image_id);
    if (links == s_.links.end()) return;
    for (const auto& account : d.accounts) remove_grant(links->second, d.image_id, account, kAccountSource);
    drop_if_empty(links);
  }
  void operator()(const ImagePublicityChanged& d) {
    Image& x = s_.images[d.image_id];
    x.is_public = d.is_public;
    x.public_since = d.is_public ? since_ : Since{};
    touched(&Dirty::images, x.id);
    refresh_blocking(x.id);
  }
  void operator()(const ImageDeleted& d) {
    Image& x = s_.images[d.image_id];
    x.status = "Deleted";
    x.is_public = false;
    if (x.custom()) --s_.custom_images[{x.owner, x.region}];
    touched(&Dirty::images, x.id);
    refresh_blocking(x.id);
  }

  void operator()(const InstanceCreated& d) {
    Instance& i = s_.instances[d.instance_id];
    i.id = d.instance_id;
    i.owner = d.owner;
    i.region = d.region;
    i.image_id = d.image_id;
    i.disk_id = d.disk_id;
    i.image_fee_payer = d.image_fee_payer;
    i.product_code = d.product_code;
    i.image_since = since_;
    link_image(i);
    touched(&Dirty::instances, d.instance_id);
    touched(&Dirty::owned_instances, {d.owner, d.instance_id});
  }
  void operator()(const SystemDiskReplaced& d) {
    Instance& i = s_.instances[d.instance_id];
    unlink_image(i);
    i.image_id = d.image_id;
    i.disk_id = d.disk_id;
    i.image_since = since_;
    const Image* x = s_.image(d.image_id);
    bool paid = x && x->origin.paid;
    i.image_fee_payer = paid ? i.owner : "";
    i.product_code = x ? x->origin.product_code : "";
    if (!i.blocked_reason.empty()) {
      i.blocked_reason.clear();
      i.blocked_since = since_;
    }
    link_image(i);
    touched(&Dirty::instances, d.instance_id);
  }
  void operator()(const SystemDiskReinitialized&) {}
  void operator()(const InstanceDeleted& d) {
    auto it = s_.instances.find(d.instance_id);
    if (it == s_.instances.end()) return;
    unlink_image(it->second);
    touched(&Dirty::owned_instances, {it->second.owner, d.instance_id});
    s_.instances.erase(it);
    touched(&Dirty::instances, d.instance_id);
  }

  void operator()(const ResourceDirectoryEnabled& d) {
    Directory& dir = s_.directories[d.directory_id];
    dir.id = d.directory_id;
    dir.root_folder_id = d.root_folder_id;
    dir.management_account = d.management_account;
    s_.directory_of_manager[d.management_account] = d.directory_id;
    s_.folders[d.root_folder_id] = Folder{d.root_folder_id, "", "Root", d.directory_id};
    touched(&Dirty::directories, d.directory_id);
    touched(&Dirty::folders, d.root_folder_id);
    // The management account sits in the root folder like any member.
    place_account(d.management_account, d.root_folder_id);
  }
  void operator()(const FolderCreated& d) {
    const Folder* parent = find_in(s_.folders, d.parent_id);
    s_.folders[d.folder_id] = Folder{d.folder_id, d.parent_id, d.name, parent ? parent->directory_id : ""};
    touched(&Dirty::folders, d.folder_id);
  }
  void operator()(const HandshakeCreated& d) {
    s_.handshakes[d.handshake_id] = Handshake{d.handshake_id, d.directory_id, d.account_id};
    touched(&Dirty::handshakes, d.handshake_id);
  }
  void operator()(const AccountJoinedDirectory& d) {
    for (auto it = s_.handshakes.begin(); it != s_.handshakes.end();) {
      if (it->second.account_id == d.account_id) {
        touched(&Dirty::handshakes, it->first);
        it = s_.handshakes.erase(it);
      } else {
        ++it;
      }
    }
    place_account(d.account_id, d.folder_id);
  }
  void operator()(const AccountMoved& d) { place_account(d.account_id, d.folder_id); }
  void operator()(const AccountLeftDirectory& d) { place_account(d.account_id, ""); }
  void operator()(const SharingWithDirectoryEnabled& d) {
    s_.directories[d.directory_id].sharing_enabled = true;
    touched(&Dirty::directories, d.directory_id);
  }
  void operator()(const ResourceShareCreated& d) {
    ResourceShare& rs = s_.shares[d.share_id];
    rs.id = d.share_id;
    rs.owner = d.owner;
    rs.name = d.name;
    rs.allow_external = d.allow_external;
    touched(&Dirty::shares, d.share_id);
  }
  void operator()(const ResourceShareAssociated& d) {
    ResourceShare& rs = s_.shares[d.share_id];
    for (const auto& r : d.resources) rs.resources.insert(r), rs.association_status[r] = "Associated";
    for (const auto& t : d.targets) rs.targets.insert(t), rs.association_status[t] = "Associated";
    touched(&Dirty::shares, d.share_id);
    refresh_share(rs, nullptr);
  }
  void operator()(const ResourceShareDisassociated& d) {
    ResourceShare& rs = s_.shares[d.share_id];
    for (const auto& r : d.resources) rs.resources.erase(r), rs.association_status[r] = "Disassociated";
    for (const auto& t : d.targets) rs.targets.erase(t), rs.association_status[t] = "Disassociated";
    touched(&Dirty::shares, d.share_id);
    refresh_share(rs, nullptr);
  }
  void operator()(const ResourceShareDeleted& d) {
    ResourceShare& rs = s_.shares[d.share_id];
    for (auto& [item, status] : rs.association_status) status = "Disassociated";
    rs.resources.clear();
    rs.targets.clear();
    rs.deleted = true;
    touched(&Dirty::shares, d.share_id);
    refresh_share(rs, nullptr);
  }

 private:
  // Records what the event changed, for the projections (when tracked).
  template <class Set>
  void touched(Set Dirty::*set, typename Set::value_type key) {
    if (s_.track_dirty) (s_.dirty.*set).insert(std::move(key));
  }

  void set_role(const std::string& account_id, bool authorized) {
    s_.accounts[account_id].encrypt_role = authorized;
    touched(&Dirty::accounts, account_id);
  }

  // `links` is image_id's (links_entry(image_id)).
  void add_grant(ImageLinks& links, const std::string& image_id, const std::string& account_id,
                 const std::string& source) {
    auto& sources = links.grants.try_emplace(map_key(account_id)).first->second;
    if (!sources.emplace(map_key(source), since_).second) return;
    if (source != kAccountSource) s_.share_grants[source].insert({image_id, account_id});
    touched(&Dirty::grants, {image_id, account_id});
    refresh_blocking(links, image_id, &account_id);
  }

  // `links` is image_id's; the caller drops it once empty (drop_if_empty).
  void remove_grant(ImageLinks& links, const std::string& image_id, const std::string& account_id,
                    const std::string& source) {
    auto account_it = links.grants.find(std::string_view(account_id));
    if (account_it == links.grants.end()) return;
    auto source_it = account_it->second.find(std::string_view(source));
    if (source_it == account_it->second.end()) return;
    account_it->second.erase(source_it);
    // Only share sources are indexed (add_grant): an unshare, the common case, skips the lookup.
    if (auto by_share = source == kAccountSource ? s_.share_grants.end() : s_.share_grants.find(source);
        by_share != s_.share_grants.end()) {
      by_share->second.erase({image_id, account_id});
      if (by_share->second.empty()) s_.share_grants.erase(by_share);
    }
    if (account_it->second.empty()) links.grants.erase(account_it);
    touched(&Dirty::grants, {image_id, account_id});
    refresh_blocking(links, image_id, &account_id);
  }

  // image_id's links, made empty when absent. May move every entry of s_.links.
  ImageLinks& links_entry(const std::string& image_id) { return s_.links.try_emplace(map_key(image_id)).first->second; }

  void drop_if_empty(KeyMap<ImageLinks>::iterator it) {
    if (it->second.grants.empty() && it->second.users.empty()) s_.links.erase(it);
  }

  void refresh_blocking(const std::string& image_id) {
    if (auto it = s_.links.find(image_id); it != s_.links.end()) refresh_blocking(it->second, image_id, nullptr);
  }

  // Recomputes reinit blocking for the instances running `image_id` (only those
  // of `owner` when given). Deletion blocks permanently; losing every grant
  // blocks until a grant returns or the system disk is replaced.
  void refresh_blocking(const ImageLinks& links, const std::string& image_id, const std::string* owner) {
    const auto& users = links.users;
    if (users.empty()) return;
    // A grant change concerns one owner, who mostly runs nothing from the image:
    // find that out before looking the image up.
    auto mine = owner ? users.find(std::string_view(*owner)) : users.end();
    if (owner && mine == users.end()) return;
    const Image* x = s_.image(image_id);
    auto refresh = [&](std::string_view instance_owner, const auto& instance_ids) {
      std::string reason;
      if (x && x->deleted()) {
        reason = "image_deleted";
      } else if (x && x->custom() && instance_owner != x->owner && !s_.holds_grant(instance_owner, *x)) {
        reason = "image_unshared";
      }
      for (const auto& instance_id : instance_ids) {
        Instance& i = s_.instances[instance_id];
        if (reason == i.blocked_reason) continue;
        i.blocked_reason = reason;
        i.blocked_since = since_;
        touched(&Dirty::instances, instance_id);
      }
    };
    if (!owner) {
      for (const auto& [instance_owner, instance_ids] : users) refresh(as_view(instance_owner), instance_ids);
    } else {
      refresh(as_view(mine->first), mine->second);
    }
  }

  // An instance's link to its current image and system disk.
  void link_image(const Instance& i) {
    links_entry(i.image_id).users.try_emplace(map_key(i.owner)).first->second.insert(i.id);
    s_.disks[i.disk_id] = i.id;
    touched(&Dirty::image_instances, {i.image_id, i.id});
    touched(&Dirty::disks, i.disk_id);
  }
  void unlink_image(const Instance& i) {
    touched(&Dirty::image_instances, {i.image_id, i.id});
    touched(&Dirty::disks, i.disk_id);
    s_.disks.erase(i.disk_id);
    auto links = s_.links.find(i.image_id);
    if (links == s_.links.end()) return;
    auto& users = links->second.users;
    auto mine = users.find(std::string_view(i.owner));
    if (mine == users.end()) return;
    mine->second.erase(i.id);
    if (mine->second.empty()) users.erase(mine);
    drop_if_empty(links);
  }

  void place_account(const std::string& account_id, const std::string& folder_id) {
    s_.accounts[account_id].folder_id = folder_id;
    touched(&Dirty::accounts, account_id);
    for (auto& [id, rs] : s_.shares) {
      if (!rs.deleted) refresh_share(rs, &account_id);
    }
  }

  // Brings the grants of source resource-share:<rs> in line with its current
  // resources x covered accounts (only for `only_account` when given).
  void refresh_share(const ResourceShare& rs, const std::string* only_account) {
    const std::string source = share_source(rs.id);
    std::set<std::pair<std::string, std::string>> desired, current;
    for (const auto& image_id : rs.resources) {
      const Image* x = s_.image(image_id);
      if (!x || x->deleted()) continue;
      for (const auto& target : rs.targets) {
        if (only_account) {
          if (*only_account != x->owner && s_.target_covers(target, *only_account)) desired.insert({image_id, *only_account});
          continue;
        }
        for (const auto& account : s_.covered_by_target(rs, target)) {
          if (account != x->owner) desired.insert({image_id, account});
        }
      }
    }
    if (only_account) {
      // A share's grants are all on its current resources: disassociating one
      // refreshes the whole share at once.
      for (const auto& image_id : rs.resources) {
        const GrantSources* g = s_.grant(image_id, *only_account);
        if (g && g->count(std::string_view(source))) current.insert({image_id, *only_account});
      }
    } else if (auto it = s_.share_grants.find(source); it != s_.share_grants.end()) {
      current = it->second;
    }
    for (const auto& [image_id, account] : current) {
      if (desired.count({image_id, account})) continue;
      if (auto links = s_.links.find(image_id); links != s_.links.end()) {
        remove_grant(links->second, image_id, account, source);
        drop_if_empty(links);
      }
    }
    for (const auto& [image_id, account] : desired) add_grant(links_entry(image_id), image_id, account, source);
  }

  State& s_;
  Since since_;
};

}  // namespace

const Account* State::account(const std::string& id) const { return find_in(accounts, id); }
const Image* State::image(const std::string& id) const { return find_in(images, id); }
const Instance* State::instance(const std::string& id) const { return find_in(instances, id); }

const ImageLinks* State::links_of(const std::string& image_id) const { return find_in(links, image_id); }

const GrantSources* State::grant(const std::string& image_id, std::string_view account_id) const {
  const ImageLinks* l = links_of(image_id);
  if (!l) return nullptr;
  auto g = l->grants.find(account_id);
  return g == l->grants.end() ? nullptr : &g->second;
}

std::string State::directory_of(const std::string& account_id) const {
  if (auto it = directory_of_manager.find(account_id); it != directory_of_manager.end()) return it->second;
  const Account* a = account(account_id);
  if (!a || a->folder_id.empty()) return "";
  const Folder* f = find_in(folders, a->folder_id);
  return f ? f->directory_id : "";
}

bool State::folder_within(const std::string& inner, const std::string& outer) const {
  std::string at = inner;
  for (int depth = 0; !at.empty() && depth < 64; ++depth) {  // depth bound guards a corrupt cycle
    if (at == outer) return true;
    const Folder* f = find_in(folders, at);
    if (!f) return false;
    at = f->parent_id;
  }
  return false;
}

bool State::holds_grant(std::string_view account_id, const Image& x) const {
  return x.is_public || grant(x.id, account_id) != nullptr;
}

bool State::can_use(const std::string& account_id, const Image& x) const {
  if (x.deleted()) return false;
  if (x.kind == "system") return true;
  if (x.kind == "marketplace") {
    const Account* a = account(account_id);
    return a && a->site == x.site;
  }
  return x.owner == account_id || holds_grant(account_id, x);
}

bool State::has_live_grant(const Image& x) const {
  if (const ImageLinks* l = links_of(x.id); x.is_public || (l && !l->grants.empty())) return true;
  for (const auto& [id, rs] : shares) {
    if (!rs.deleted && rs.resources.count(x.id)) return true;
  }
  return false;
}

State::Recipients State::recipients(const std::string& image_id) const {
  Recipients r;
  if (const Image* x = image(image_id); x && x->is_public) r.is_public = 1;
  const ImageLinks* l = links_of(image_id);
  if (!l) return r;
  for (const auto& [account, sources] : l->grants) {
    const std::size_t by_account = sources.count(std::string_view(kAccountSource));
    if (by_account) ++r.direct;
    if (sources.size() > by_account) ++r.via_directory;
    ++r.effective;
  }
  return r;
}

std::set<std::string> State::covered_by_target(const ResourceShare&, const std::string& target) const {
  std::set<std::string> out;
  if (accounts.count(target)) {
    out.insert(target);
    return out;
  }
  for (const auto& [id, a] : accounts) {
    if (target_covers(target, id)) out.insert(id);
  }
  return out;
}

bool State::target_covers(const std::string& target, const std::string& account_id) const {
  if (accounts.count(target)) return target == account_id;
  const Account* a = account(account_id);
  if (!a || a->folder_id.empty()) return false;
  if (directories.count(target)) {
    const Folder* f = find_in(folders, a->folder_id);
    return f && f->directory_id == target;
  }
  return folder_within(a->folder_id, target);
}

void evolve(State& state, const Event& e) {
  if (state.track_dirty) state.dirty.clear();
  std::visit(Evolver(state, e), e.data);
  state.head_seq = e.seq;
  state.head_time_us = e.time_us;
  state.head_hash = e.hash;
}

}  // namespace sl
