// State: everything the rules need, folded from the log by evolve().
//
// evolve() is pure domain logic: no I/O, no clock, no randomness; replaying the
// same events always yields the same State. It records which entities each
// event changed in `dirty`, so projections can rewrite exactly those rows.
// Thread safety: none; one owner at a time (the writer, or a replay).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/container/flat_map.hpp>
#include <boost/container/flat_set.hpp>
#include <boost/container/small_vector.hpp>
#include <boost/container/string.hpp>
#include <boost/unordered/unordered_flat_map.hpp>

#include "events/event.h"

namespace sl {

struct Since {
  std::uint64_t seq = 0;
  std::int64_t time_us = 0;
  bool operator==(const Since&) const = default;
};

struct Account {
  std::string id, site;
  bool encrypt_role = false;
  std::vector<std::string> access_keys;
  std::string folder_id;  // empty when not in a resource directory
  Since since;            // registration
};

struct Image {
  std::string id, kind, owner, region, name, site, status;
  Origin origin;
  bool is_public = false;
  Since public_since;
  Since created;
  bool deleted() const { return status == "Deleted"; }
  bool custom() const { return kind == "custom"; }
};

struct Instance {
  std::string id, owner, region, image_id, disk_id, image_fee_payer, product_code;
  std::string blocked_reason;  // "" | "image_deleted" | "image_unshared"
  Since blocked_since;         // when blocked_reason last changed
  Since image_since;           // when image_id became the current image
};

struct Directory {
  std::string id, root_folder_id, management_account;
  bool sharing_enabled = false;
};

struct Folder {
  std::string id, parent_id, name, directory_id;
};

struct Handshake {
  std::string id, directory_id, account_id;
};

struct ResourceShare {
  std::string id, owner, name;
  bool allow_external = false;
  bool deleted = false;
  std::set<std::string> resources, targets;  // currently associated
  // Every resource/target ever associated, with its current status
  // ("Associated" | "Disassociated"), for ListResourceShareAssociations.
  std::map<std::string, std::string> association_status;
};

// State::links and an image's grants and users are open-addressing hash tables
// (KeyMap, boost's unordered_flat_map): an image has up to 50 recipients, and a
// sorted vector moved ~25 entries on every share and unshare (each a string
// move) and paid a binary search of string compares per lookup. Their
// iteration order is unspecified: readers that need an order sort (all_rows,
// the DeleteImage decision). An insertion may move every entry of the table it
// goes into: hold no reference into one across an insertion into the same table.
//
// Their keys are boost strings, which hold up to 22 chars in place
// (std::string: 15): a 16-digit account id or a 22-char image id then sits in
// the table's own slot, where a std::string key sends each comparison to its
// own heap copy (a cache miss). Look them up with a std::string_view.
using MapKey = boost::container::string;
inline MapKey map_key(std::string_view s) { return MapKey(s.data(), s.size()); }
inline std::string_view as_view(const MapKey& k) { return {k.data(), k.size()}; }

// Hash and equality over any of MapKey, std::string and std::string_view.
struct KeyHash {
  using is_transparent = void;
  template <class S>
  std::size_t operator()(const S& s) const {
    return std::hash<std::string_view>()(std::string_view(s.data(), s.size()));
  }
};
struct KeyEq {
  using is_transparent = void;
  template <class A, class B>
  bool operator()(const A& a, const B& b) const {
    return std::string_view(a.data(), a.size()) == std::string_view(b.data(), b.size());
  }
};
template <class V>
using KeyMap = boost::unordered_flat_map<MapKey, V, KeyHash, KeyEq>;

// source -> since. Sources: "account", "resource-share:<rs-id>". Public is a
// flag on the image. Sorted by source; one entry (an account grant, nearly
// every grant) lives in place: a grant costs no allocation of its own.
using GrantSources = boost::container::small_flat_map<MapKey, Since, 1, std::less<>>;

// What hangs off one image id: its grants and the instances running it. Grant
// changes, the reinit refresh that follows each and the image's deletion all
// find both with one lookup.
struct ImageLinks {
  KeyMap<GrantSources> grants;  // account -> sources
  // owner -> instances running the image: a grant change concerns one owner's
  // instances only, and an image may run on many accounts' instances.
  KeyMap<boost::container::flat_set<std::string>> users;
};

// What one event changed, by entity; projections map entities to rows.
struct Dirty {
  std::set<std::string> accounts, images, instances, directories, folders, shares, handshakes;
  std::set<std::pair<std::string, std::string>> grants;           // (image, account)
  std::set<std::pair<std::string, std::string>> image_instances;  // (image, instance) links made or broken
  std::set<std::pair<std::string, std::string>> owned_instances;  // (owner, instance) created or deleted
  std::set<std::string> disks;
  void clear() { *this = Dirty{}; }
};

struct State {
  std::unordered_map<std::string, Account> accounts;
  std::unordered_map<std::string, std::string> access_keys;  // access key id -> account id
  std::unordered_map<std::string, Image> images;
  std::unordered_map<std::string, Instance> instances;
  std::unordered_map<std::string, std::string> disks;  // disk id -> instance id
  KeyMap<ImageLinks> links;  // image id -> links; absent when both are empty
  // "resource-share:<id>" -> the (image, account) grants it gives: what a
  // share's refresh compares against, without a walk over every grant.
  std::unordered_map<std::string, std::set<std::pair<std::string, std::string>>> share_grants;
  std::map<std::pair<std::string, std::string>, int> custom_images;  // (owner, region) -> live custom images
  std::unordered_map<std::string, Directory> directories;
  std::unordered_map<std::string, std::string> directory_of_manager;  // management account -> directory id
  std::unordered_map<std::string, Folder> folders;
  std::unordered_map<std::string, Handshake> handshakes;
  std::unordered_map<std::string, ResourceShare> shares;

  std::uint64_t head_seq = 0;
  std::int64_t head_time_us = 0;
  std::string head_hash = std::string(kGenesisHash);

  Dirty dirty;  // entities changed by the last evolve()
  // Off for a replay that derives every row at the end (the audit): keeping
  // `dirty` costs a set insertion per change it will never read.
  bool track_dirty = true;

  // Lookups (nullptr when absent).
  const Account* account(const std::string& id) const;
  const Image* image(const std::string& id) const;
  const Instance* instance(const std::string& id) const;
  const GrantSources* grant(const std::string& image_id, std::string_view account_id) const;
  const ImageLinks* links_of(const std::string& image_id) const;

  // The directory an account belongs to (as manager or member), or "".
  std::string directory_of(const std::string& account_id) const;
  // True when folder `inner` is `outer` or nested below it.
  bool folder_within(const std::string& inner, const std::string& outer) const;

  // SPEC §1.2: B can see and launch X (X in its own region, not deleted).
  bool can_use(const std::string& account_id, const Image& x) const;
  // B holds at least one grant (account, public or resource share) on X.
  bool holds_grant(std::string_view account_id, const Image& x) const;
  // Live grants of any kind on X (account, public or associated resource share).
  bool has_live_grant(const Image& x) const;
  // Recipient counts of SPEC §1.3.
  struct Recipients {
    int direct = 0, via_directory = 0, is_public = 0, effective = 0;
  };
  Recipients recipients(const std::string& image_id) const;
  // Accounts covered by a resource-share target (directory, folder or account id).
  std::set<std::string> covered_by_target(const ResourceShare& rs, const std::string& target) const;
  // Whether `target` covers `account_id` (one account's answer, without the walk).
  bool target_covers(const std::string& target, const std::string& account_id) const;
};

// Applies one sealed event. Pure; sets state.dirty to what changed.
// REQUIRES: e.seq == state.head_seq + 1 and e was produced by decide() or read
// from a verified log (evolve trusts its input and does not re-check rules).
void evolve(State& state, const Event& e);

}  // namespace sl
