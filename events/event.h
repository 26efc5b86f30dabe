// The event envelope and every event type of SPEC.md §2.1.
//
// An Event is an immutable fact. Each payload struct lists its fields once, in
// `each()`, and that single list drives both the canonical JSON encoder and the
// strict decoder (events/codec.h), so a field cannot be written without being
// read back. Thread safety: plain values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace sl {

// Where a custom image came from; inherited by images made from it.
struct Origin {
  bool marketplace_derived = false;
  std::string product_code;  // empty unless a marketplace ancestor had one
  bool paid = false;
  bool encrypted = false;
  std::string kms_key;  // "service", a customer key id, or empty when not encrypted

  template <class V> void each(V&& v) {
    v("marketplace_derived", marketplace_derived);
    v("product_code", product_code);
    v("paid", paid);
    v("encrypted", encrypted);
    v("kms_key", kms_key);
  }
  bool operator==(const Origin&) const = default;
};

// ---- accounts -------------------------------------------------------------
struct AccountRegistered {
  static constexpr std::string_view kType = "AccountRegistered";
  std::string account_id, site;
  template <class V> void each(V&& v) { v("account_id", account_id); v("site", site); }
};
struct AccessKeyIssued {
  static constexpr std::string_view kType = "AccessKeyIssued";
  std::string account_id, access_key_id;  // never the secret
  template <class V> void each(V&& v) { v("account_id", account_id); v("access_key_id", access_key_id); }
};
struct EncryptShareRoleAuthorized {
  static constexpr std::string_view kType = "EncryptShareRoleAuthorized";
  std::string account_id;
  template <class V> void each(V&& v) { v("account_id", account_id); }
};
struct EncryptShareRoleRevoked {
  static constexpr std::string_view kType = "EncryptShareRoleRevoked";
  std::string account_id;
  template <class V> void each(V&& v) { v("account_id", account_id); }
};

// ---- images ---------------------------------------------------------------
// kind is "system" | "marketplace" | "custom"; site is set for marketplace images.
struct ImageCreated {
  static constexpr std::string_view kType = "ImageCreated";
  std::string image_id, owner, region, name, kind, site;
  Origin origin;
  std::string status;  // "Creating" | "Available"
  template <class V> void each(V&& v) {
    v("image_id", image_id); v("owner", owner); v("region", region); v("name", name);
    v("kind", kind); v("site", site); v("origin", origin); v("status", status);
  }
};
struct ImageBecameAvailable {
  static constexpr std::string_view kType = "ImageBecameAvailable";
  std::string image_id;
  template <class V> void each(V&& v) { v("image_id", image_id); }
};
struct ImageShared {
  static constexpr std::string_view kType = "ImageShared";
  std::string image_id;
  std::vector<std::string> accounts;
  template <class V> void each(V&& v) { v("image_id", image_id); v("accounts", accounts); }
};
struct ImageUnshared {
  static constexpr std::string_view kType = "ImageUnshared";
  std::string image_id;
  std::vector<std::string> accounts;
  template <class V> void each(V&& v) { v("image_id", image_id); v("accounts", accounts); }
};
struct ImagePublicityChanged {
  static constexpr std::string_view kType = "ImagePublicityChanged";
  std::string image_id;
  bool is_public = false;
  template <class V> void each(V&& v) { v("image_id", image_id); v("is_public", is_public); }
};
struct ImageDeleted {
  static constexpr std::string_view kType = "ImageDeleted";
  std::string image_id;
  bool forced = false;
  std::vector<std::string> blocked_instances;
  template <class V> void each(V&& v) {
    v("image_id", image_id); v("forced", forced); v("blocked_instances", blocked_instances);
  }
};

// ---- instances ------------------------------------------------------------
struct InstanceCreated {
  static constexpr std::string_view kType = "InstanceCreated";
  std::string instance_id, owner, region, image_id, disk_id, image_fee_payer, product_code;
  template <class V> void each(V&& v) {
    v("instance_id", instance_id); v("owner", owner); v("region", region); v("image_id", image_id);
    v("disk_id", disk_id); v("image_fee_payer", image_fee_payer); v("product_code", product_code);
  }
};
struct SystemDiskReplaced {
  static constexpr std::string_view kType = "SystemDiskReplaced";
  std::string instance_id, image_id, disk_id;
  template <class V> void each(V&& v) { v("instance_id", instance_id); v("image_id", image_id); v("disk_id", disk_id); }
};
struct SystemDiskReinitialized {
  static constexpr std::string_view kType = "SystemDiskReinitialized";
  std::string instance_id;
  template <class V> void each(V&& v) { v("instance_id", instance_id); }
};
struct InstanceDeleted {
  static constexpr std::string_view kType = "InstanceDeleted";
  std::string instance_id;
  template <class V> void each(V&& v) { v("instance_id", instance_id); }
};

// ---- organization ---------------------------------------------------------
struct ResourceDirectoryEnabled {
  static constexpr std::string_view kType = "ResourceDirectoryEnabled";
  std::string directory_id, root_folder_id, management_account;
  template <class V> void each(V&& v) {
    v("directory_id", directory_id); v("root_folder_id", root_folder_id); v("management_account", management_account);
  }
};
struct FolderCreated {
  static constexpr std::string_view kType = "FolderCreated";
  std::string folder_id, parent_id, name;
  template <class V> void each(V&& v) { v("folder_id", folder_id); v("parent_id", parent_id); v("name", name); }
};
// An invitation waiting for the invitee (not in the SPEC list: a pending
// handshake is state, and every state change is an event).
struct HandshakeCreated {
  static constexpr std::string_view kType = "HandshakeCreated";
  std::string handshake_id, directory_id, account_id;
  template <class V> void each(V&& v) { v("handshake_id", handshake_id); v("directory_id", directory_id); v("account_id", account_id); }
};
struct AccountJoinedDirectory {
  static constexpr std::string_view kType = "AccountJoinedDirectory";
  std::string account_id, folder_id;
  template <class V> void each(V&& v) { v("account_id", account_id); v("folder_id", folder_id); }
};
struct AccountMoved {
  static constexpr std::string_view kType = "AccountMoved";
  std::string account_id, folder_id;
  template <class V> void each(V&& v) { v("account_id", account_id); v("folder_id", folder_id); }
};
struct AccountLeftDirectory {
  static constexpr std::string_view kType = "AccountLeftDirectory";
  std::string account_id;
  template <class V> void each(V&& v) { v("account_id", account_id); }
};
struct SharingWithDirectoryEnabled {
  static constexpr std::string_view kType = "SharingWithDirectoryEnabled";
  std::string directory_id;
  template <class V> void each(V&& v) { v("directory_id", directory_id); }
};
struct ResourceShareCreated {
  static constexpr std::string_view kType = "ResourceShareCreated";
  std::string share_id, owner, name;
  bool allow_external = false;
  template <class V> void each(V&& v) { v("share_id", share_id); v("owner", owner); v("name", name); v("allow_external", allow_external); }
};
struct ResourceShareAssociated {
  static constexpr std::string_view kType = "ResourceShareAssociated";
  std::string share_id;
  std::vector<std::string> resources, targets;
  template <class V> void each(V&& v) { v("share_id", share_id); v("resources", resources); v("targets", targets); }
};
struct ResourceShareDisassociated {
  static constexpr std::string_view kType = "ResourceShareDisassociated";
  std::string share_id;
  std::vector<std::string> resources, targets;
  template <class V> void each(V&& v) { v("share_id", share_id); v("resources", resources); v("targets", targets); }
};
struct ResourceShareDeleted {
  static constexpr std::string_view kType = "ResourceShareDeleted";
  std::string share_id;
  template <class V> void each(V&& v) { v("share_id", share_id); }
};

using EventData = std::variant<
    AccountRegistered, AccessKeyIssued, EncryptShareRoleAuthorized, EncryptShareRoleRevoked,
    ImageCreated, ImageBecameAvailable, ImageShared, ImageUnshared, ImagePublicityChanged, ImageDeleted,
    InstanceCreated, SystemDiskReplaced, SystemDiskReinitialized, InstanceDeleted,
    ResourceDirectoryEnabled, FolderCreated, HandshakeCreated, AccountJoinedDirectory, AccountMoved,
    AccountLeftDirectory, SharingWithDirectoryEnabled, ResourceShareCreated, ResourceShareAssociated,
    ResourceShareDisassociated, ResourceShareDeleted>;

struct Actor {
  std::string account_id;     // empty for the system itself (catalog, timers)
  std::string access_key_id;  // empty for admin and system actions
  template <class V> void each(V&& v) { v("account_id", account_id); v("access_key_id", access_key_id); }
};

// The envelope. seq, time, prev_hash and hash are assigned by storage when the
// event is appended; decide() leaves them zero/empty.
struct Event {
  std::uint64_t seq = 0;
  std::int64_t time_us = 0;  // server UTC, microseconds since the epoch
  Actor actor;
  std::string request_id;
  std::string region;
  EventData data;
  std::string prev_hash;  // 64 hex chars
  std::string hash;       // 64 hex chars

  std::string_view type() const;
};

inline constexpr std::string_view kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

}  // namespace sl
