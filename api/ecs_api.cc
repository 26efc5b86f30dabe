// The ECS-compatible RPC actions: ECS 2014-05-26, ResourceSharing 2020-01-10,
// ResourceManager 2020-03-31, routed by (action, version). ECS answers wrap lists
// ({"Images":{"Image":[...]}}); ResourceSharing and ResourceManager use plain arrays.
#include <algorithm>
#include <map>

#include "api/ids.h"
#include "api/param_rules.h"
#include "api/service.h"
#include "events/time_format.h"

namespace sl::api {
namespace {

constexpr std::string_view kEcs = "2014-05-26";
constexpr std::string_view kSharing = "2020-01-10";
constexpr std::string_view kManager = "2020-03-31";

using CallPtr = std::shared_ptr<Call>;

// The common shape of a route: read and check parameters, then either answer
// from the rows (reads) or submit a command (writes). `bad` answers an error.
struct Route {
  Service& svc;
  CallPtr call;

  const Params& p() const { return call->params; }
  void bad(const Error& e) { svc.reply_error(*call, e, true); }
  template <class T>
  bool take(Result<T> r, T& out) {
    if (!r) {
      bad(r.error());
      return false;
    }
    out = std::move(*r);
    return true;
  }
  // PageNumber (default 1) and PageSize (default 10, at most 100) of a Describe* call.
  bool take_page(long long& number, long long& size) {
    return take(bounded_int(p(), "PageNumber", 1, 1, 1 << 30), number) &&
           take(bounded_int(p(), "PageSize", 10, 1, 100), size);
  }
  bool known_region(const std::string& region) {
    const auto& regions = svc.ledger().limits().regions;
    if (std::find(regions.begin(), regions.end(), region) != regions.end()) return true;
    bad(make_error(404, "InvalidRegionId.NotFound", "The specified RegionId " + region + " does not exist."));
    return false;
  }
  void write(Command command, std::function<Json(const Commit&)> format = nullptr) {
    if (!format) format = [](const Commit&) { return Json::object(); };
    std::string request_id = call->request_id;
    svc.submit(call, std::move(command), true, [format = std::move(format), request_id](const Commit& c) {
      Json body = format(c);
      body["RequestId"] = request_id;
      return body;
    });
  }
  void answer(Json body) {
    body["RequestId"] = call->request_id;
    svc.reply(*call, 200, body);
  }
  std::unique_ptr<RowView> rows() { return std::move(*svc.ledger().view()); }
};

Json page(const std::vector<Json>& all, long long number, long long size) {
  Json out = Json::array();
  for (long long i = (number - 1) * size; i < static_cast<long long>(all.size()) && i < number * size; ++i) {
    out.push_back(all[i]);
  }
  return out;
}

// ---- ECS: images -------------------------------------------------------------

void create_image(Route r) {
  std::string region, instance_id;
  if (!r.take(required(r.p(), "RegionId"), region) || !r.take(required(r.p(), "InstanceId"), instance_id)) return;
  std::string image_id = new_image_id();
  bool now = r.svc.options().image_build.count() == 0;
  r.write(CreateImage{r.call->caller, region, instance_id, image_id, optional(r.p(), "ImageName"), now},
          [image_id](const Commit&) { return Json{{"ImageId", image_id}}; });
}

void copy_image(Route r) {
  std::string region, image_id, destination;
  if (!r.take(required(r.p(), "RegionId"), region) || !r.take(required(r.p(), "ImageId"), image_id) ||
      !r.take(required(r.p(), "DestinationRegionId"), destination)) {
    return;
  }
  std::optional<bool> encrypted;
  if (!r.take(optional_bool(r.p(), "Encrypted"), encrypted)) return;
  std::string new_id = new_image_id();
  bool now = r.svc.options().image_build.count() == 0;
  r.write(CopyImage{r.call->caller, region, image_id, destination, new_id, optional(r.p(), "DestinationImageName"),
                    encrypted.value_or(false), optional(r.p(), "KMSKeyId"), now},
          [new_id](const Commit&) { return Json{{"ImageId", new_id}}; });
}

void delete_image(Route r) {
  std::string region, image_id;
  std::optional<bool> force;
  if (!r.take(required(r.p(), "RegionId"), region) || !r.take(required(r.p(), "ImageId"), image_id) ||
      !r.take(optional_bool(r.p(), "Force"), force)) {
    return;
  }
  r.write(DeleteImage{r.call->caller, region, image_id, force.value_or(false)});
}

void modify_share_permission(Route r) {
  std::string region, image_id;
  std::vector<std::string> add, remove;
  std::optional<bool> is_public;
  if (!r.take(required(r.p(), "RegionId"), region) || !r.take(required(r.p(), "ImageId"), image_id) ||
      !r.take(indexed_list(r.p(), "AddAccount"), add) || !r.take(indexed_list(r.p(), "RemoveAccount"), remove) ||
      !r.take(optional_bool(r.p(), "IsPublic"), is_public)) {
    return;
  }
  r.write(ModifyImageSharePermission{r.call->caller, region, image_id, add, remove, is_public});
}

Json ecs_image(const RowView& rows, const Json& image, const std::string& caller) {
  const std::string id = image["image_id"];
  const std::string kind = image["kind"];
  std::string alias = kind == "custom" ? (image["owner"] == caller ? "self" : "others") : kind;
  bool in_use = false;
  rows.scan("iimg/" + id + "/", [&](std::string_view, std::string_view) {
    in_use = true;
    return false;
  });
  bool shared = false;
  if (alias == "self") {
    auto recipients = row_json(rows, "recip/" + id);
    shared = image["is_public"].get<bool>() || (recipients && (*recipients)["effective"].get<int>() > 0);
  }
  const Json& origin = image["origin"];
  Json mapping{{"Device", "/dev/xvda"}, {"Size", "20"}, {"Type", "system"},
               {"Encrypted", origin["encrypted"].get<bool>() ? "true" : "false"}};
  return Json{{"ImageId", id},
              {"ImageName", image["name"]},
              {"ImageOwnerAlias", alias},
              {"ImageOwnerId", image["owner"]},
              {"IsSelfShared", shared ? "True" : "False"},
              {"IsSubscribed", false},
              {"IsPublic", image["is_public"].get<bool>() || kind != "custom"},
              {"IsCopied", false},
              {"ProductCode", origin["product_code"]},
              {"Status", image["status"]},
              {"Usage", in_use ? "instance" : "none"},
              {"CreationTime", ecs_time(image["created"]["time"].get<std::int64_t>())},
              {"OSType", "linux"},
              {"Architecture", "x86_64"},
              {"Size", 20},
              {"DiskDeviceMappings", {{"DiskDeviceMapping", Json::array({mapping})}}}};
}

void describe_images(Route r) {
  std::string region;
  long long number = 0, size = 0;
  if (!r.take(required(r.p(), "RegionId"), region) || !r.known_region(region) || !r.take_page(number, size)) {
    return;
  }
  std::string alias = optional(r.p(), "ImageOwnerAlias");
  if (!alias.empty() && alias != "system" && alias != "self" && alias != "others" && alias != "marketplace") {
    return r.bad(make_error(400, "InvalidParameter", "The specified parameter \"ImageOwnerAlias\" is not valid."));
  }
  std::vector<std::string> ids = split_list(optional(r.p(), "ImageId"));
  std::vector<std::string> statuses = split_list(optional(r.p(), "Status", "Available"));
  auto rows = r.rows();
  std::vector<Json> images;
  for (Json& image : usable_images(*rows, r.call->caller, region)) {
    if (!alias.empty() && image["alias"] != alias) continue;
    if (!ids.empty() && std::find(ids.begin(), ids.end(), image["image_id"]) == ids.end()) continue;
    if (std::find(statuses.begin(), statuses.end(), image["status"]) == statuses.end()) continue;
    images.push_back(std::move(image));
  }
  std::sort(images.begin(), images.end(), [](const Json& a, const Json& b) {
    return a["created"]["seq"].get<std::uint64_t>() > b["created"]["seq"].get<std::uint64_t>();
  });
  std::vector<Json> shaped;
  for (const Json& image : images) shaped.push_back(ecs_image(*rows, image, r.call->caller));
  r.answer(Json{{"RegionId", region}, {"PageNumber", number}, {"PageSize", size},
                {"TotalCount", shaped.size()}, {"Images", {{"Image", page(shaped, number, size)}}}});
}

void describe_share_permission(Route r) {
  std::string region, image_id;
  long long number = 0, size = 0;
  if (!r.take(required(r.p(), "RegionId"), region) || !r.take(required(r.p(), "ImageId"), image_id) ||
      !r.take_page(number, size)) {
    return;
  }
  auto rows = r.rows();
  auto image = live_image(*rows, image_id);
  if (!image || (*image)["owner"] != r.call->caller || (*image)["region"] != region) {
    return r.bad(make_error(404, "InvalidImageId.NotFound", "The specified ImageId " + image_id + " does not exist."));
  }
  // Only account-id shares, as the real service lists them (organization shares are not listed).
  std::vector<std::pair<std::uint64_t, Json>> accounts;
  rows->scan("grant/" + image_id + "/", [&](std::string_view, std::string_view value) {
    Json grant = Json::parse(value);
    if (grant["sources"].contains("account")) {
      const Json& since = grant["sources"]["account"];
      accounts.emplace_back(since["seq"].get<std::uint64_t>(),
                            Json{{"AliyunId", grant["account_id"]},
                                 {"SharedTime", ecs_time(since["time"].get<std::int64_t>())}});
    }
    return true;
  });
  std::sort(accounts.begin(), accounts.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Json> listed;
  for (auto& [seq, account] : accounts) listed.push_back(std::move(account));
  Json groups = Json::array();
  if ((*image)["is_public"].get<bool>()) groups.push_back({{"Group", "all"}});
  r.answer(Json{{"ImageId", image_id}, {"RegionId", region}, {"PageNumber", number}, {"PageSize", size},
                {"TotalCount", listed.size()}, {"Accounts", {{"Account", page(listed, number, size)}}},
                {"ShareGroups", {{"ShareGroup", groups}}}});
}

// ---- ECS: instances and disks --------------------------------------------------

void run_instances(Route r) {
  std::string region, image_id;
  long long amount = 0;
  if (!r.take(required(r.p(), "RegionId"), region) || !r.take(required(r.p(), "ImageId"), image_id) ||
      !r.take(bounded_int(r.p(), "Amount", 1, 1, 100), amount)) {
    return;
  }
  RunInstances command{r.call->caller, region, image_id, {}, {}};
  for (long long n = 0; n < amount; ++n) {
    command.instance_ids.push_back(new_instance_id());
    command.disk_ids.push_back(new_disk_id());
  }
  std::vector<std::string> ids = command.instance_ids;
  r.write(std::move(command), [ids](const Commit&) {
    return Json{{"InstanceIdSets", {{"InstanceIdSet", ids}}}, {"TradePrice", 0}};
  });
}

// The caller's live instances in `region`, filtered by ids when given.
std::vector<Json> owned_instances(const RowView& rows, const std::string& caller, const std::string& region,
                                  const std::vector<std::string>& ids) {
  std::vector<Json> out;
  std::string prefix = "oinst/" + caller + "/";
  rows.scan(prefix, [&](std::string_view key, std::string_view) {
    std::string id(key.substr(prefix.size()));
    if (!ids.empty() && std::find(ids.begin(), ids.end(), id) == ids.end()) return true;
    auto instance = row_json(rows, "inst/" + id);
    if (instance && (*instance)["region"] == region) out.push_back(std::move(*instance));
    return true;
  });
  return out;
}

void describe_instances(Route r) {
  std::string region;
  long long number = 0, size = 0;
  if (!r.take(required(r.p(), "RegionId"), region) || !r.known_region(region) || !r.take_page(number, size)) {
    return;
  }
  auto rows = r.rows();
  std::vector<Json> shaped;
  for (const Json& i : owned_instances(*rows, r.call->caller, region, split_list(optional(r.p(), "InstanceIds")))) {
    shaped.push_back(Json{{"InstanceId", i["instance_id"]}, {"InstanceName", i["instance_id"]},
                          {"RegionId", i["region"]}, {"ZoneId", i["region"].get<std::string>() + "-a"},
                          {"ImageId", i["image_id"]}, {"Status", "Running"}, {"OSType", "linux"},
                          {"InstanceType", "ecs.g7.large"}});
  }
  r.answer(Json{{"PageNumber", number}, {"PageSize", size}, {"TotalCount", shaped.size()},
                {"Instances", {{"Instance", page(shaped, number, size)}}}});
}

void describe_disks(Route r) {
  std::string region;
  long long number = 0, size = 0;
  if (!r.take(required(r.p(), "RegionId"), region) || !r.known_region(region) || !r.take_page(number, size)) {
    return;
  }
  std::string type = optional(r.p(), "DiskType", "all");
  std::string instance_id = optional(r.p(), "InstanceId");
  std::vector<std::string> disk_ids = split_list(optional(r.p(), "DiskIds"));
  auto rows = r.rows();
  std::vector<Json> shaped;
  std::vector<std::string> filter;
  if (!instance_id.empty()) filter.push_back(instance_id);
  if (type == "system" || type == "all") {
    for (const Json& i : owned_instances(*rows, r.call->caller, region, filter)) {
      if (!disk_ids.empty() && std::find(disk_ids.begin(), disk_ids.end(), i["disk_id"]) == disk_ids.end()) continue;
      shaped.push_back(Json{{"DiskId", i["disk_id"]}, {"InstanceId", i["instance_id"]}, {"Type", "system"},
                            {"Category", "cloud_essd"}, {"ImageId", i["image_id"]}, {"RegionId", i["region"]},
                            {"Status", "In_use"}, {"Size", 20}, {"Portable", false}});
    }
  }
  r.answer(Json{{"PageNumber", number}, {"PageSize", size}, {"TotalCount", shaped.size()},
                {"Disks", {{"Disk", page(shaped, number, size)}}}});
}

void replace_system_disk(Route r) {
  std::string instance_id, image_id;
  if (!r.take(required(r.p(), "InstanceId"), instance_id) || !r.take(required(r.p(), "ImageId"), image_id)) return;
  std::string disk_id = new_disk_id();
  r.write(ReplaceSystemDisk{r.call->caller, instance_id, image_id, disk_id},
          [disk_id](const Commit&) { return Json{{"DiskId", disk_id}}; });
}

void reinit_disk(Route r) {
  std::string disk_id;
  if (!r.take(required(r.p(), "DiskId"), disk_id)) return;
  r.write(ReInitDisk{r.call->caller, disk_id});
}

void delete_instance(Route r) {
  std::string instance_id;
  std::optional<bool> force;
  if (!r.take(required(r.p(), "InstanceId"), instance_id) || !r.take(optional_bool(r.p(), "Force"), force)) return;
  r.write(DeleteInstance{r.call->caller, instance_id});
}

// ---- ResourceManager 2020-03-31 -------------------------------------------------

void enable_resource_directory(Route r) {
  std::string directory_id = new_directory_id(), root = new_root_folder_id(), caller = r.call->caller;
  r.write(EnableResourceDirectory{caller, directory_id, root}, [=](const Commit&) {
    return Json{{"ResourceDirectory",
                 {{"ResourceDirectoryId", directory_id}, {"RootFolderId", root}, {"MasterAccountId", caller}}}};
  });
}

void create_folder(Route r) {
  std::string parent, name;
  if (!r.take(required(r.p(), "ParentFolderId"), parent) || !r.take(required(r.p(), "FolderName"), name)) return;
  std::string folder_id = new_folder_id();
  r.write(CreateFolder{r.call->caller, parent, folder_id, name}, [=](const Commit&) {
    return Json{{"Folder", {{"FolderId", folder_id}, {"FolderName", name}, {"ParentFolderId", parent}}}};
  });
}

void invite_account(Route r) {
  std::string account;
  if (!r.take(required(r.p(), "TargetEntity"), account)) return;
  std::string handshake_id = new_handshake_id();
  r.write(InviteAccount{r.call->caller, account, handshake_id}, [=](const Commit&) {
    return Json{{"Handshake", {{"HandshakeId", handshake_id}, {"TargetEntity", account}, {"TargetType", "Account"},
                               {"Status", "Pending"}}}};
  });
}

void accept_handshake(Route r) {
  std::string handshake_id;
  if (!r.take(required(r.p(), "HandshakeId"), handshake_id)) return;
  r.write(AcceptHandshake{r.call->caller, handshake_id}, [=](const Commit&) {
    return Json{{"Handshake", {{"HandshakeId", handshake_id}, {"Status", "Accepted"}}}};
  });
}

void move_account(Route r) {
  std::string account, folder;
  if (!r.take(required(r.p(), "AccountId"), account) || !r.take(required(r.p(), "DestinationFolderId"), folder)) return;
  r.write(MoveAccount{r.call->caller, account, folder});
}

void remove_cloud_account(Route r) {
  std::string account;
  if (!r.take(required(r.p(), "AccountId"), account)) return;
  r.write(RemoveAccount{r.call->caller, account});
}

// ---- ResourceSharing 2020-01-10 ---------------------------------------------------

void enable_sharing(Route r) { r.write(EnableSharingWithDirectory{r.call->caller}); }

// Resources.N.ResourceId (type must be Image) and Targets.N.
bool share_items(Route& r, std::vector<std::string>& resources, std::vector<std::string>& targets) {
  std::vector<std::string> types;
  if (!r.take(indexed_list(r.p(), "Resources", "ResourceId"), resources) ||
      !r.take(indexed_list(r.p(), "Resources", "ResourceType"), types) ||
      !r.take(indexed_list(r.p(), "Targets"), targets)) {
    return false;
  }
  for (const auto& type : types) {
    if (type != "Image") {
      r.bad(make_error(400, "InvalidParameter", "Resources.N.ResourceType must be Image."));
      return false;
    }
  }
  return true;
}

Json share_json(const ResourceShare& rs) {
  return Json{{"ResourceShareId", rs.id}, {"ResourceShareName", rs.name}, {"ResourceShareOwner", rs.owner},
              {"ResourceShareStatus", rs.deleted ? "Deleted" : "Active"}, {"AllowExternalTargets", rs.allow_external}};
}

void create_resource_share(Route r) {
  std::string name;
  std::vector<std::string> resources, targets;
  std::optional<bool> external;
  if (!r.take(required(r.p(), "ResourceShareName"), name) || !share_items(r, resources, targets) ||
      !r.take(optional_bool(r.p(), "AllowExternalTargets"), external)) {
    return;
  }
  ResourceShare rs;
  rs.id = new_share_id();
  rs.owner = r.call->caller;
  rs.name = name;
  rs.allow_external = external.value_or(false);
  r.write(CreateResourceShare{rs.owner, rs.id, name, resources, targets, rs.allow_external},
          [rs](const Commit&) { return Json{{"ResourceShare", share_json(rs)}}; });
}

Json association_list(const std::string& share_id, const std::vector<std::string>& resources,
                      const std::vector<std::string>& targets, const char* status) {
  Json out = Json::array();
  for (const auto& id : resources) {
    out.push_back({{"ResourceShareId", share_id}, {"EntityId", id}, {"EntityType", "Image"},
                   {"AssociationType", "Resource"}, {"AssociationStatus", status}});
  }
  for (const auto& id : targets) {
    out.push_back({{"ResourceShareId", share_id}, {"EntityId", id}, {"EntityType", "Target"},
                   {"AssociationType", "Target"}, {"AssociationStatus", status}});
  }
  return out;
}

template <class Command>
void change_association(Route r, const char* status) {
  std::string share_id;
  std::vector<std::string> resources, targets;
  if (!r.take(required(r.p(), "ResourceShareId"), share_id) || !share_items(r, resources, targets)) return;
  r.write(Command{r.call->caller, share_id, resources, targets}, [=](const Commit&) {
    return Json{{"ResourceShareAssociations", association_list(share_id, resources, targets, status)}};
  });
}

void delete_resource_share(Route r) {
  std::string share_id;
  if (!r.take(required(r.p(), "ResourceShareId"), share_id)) return;
  r.write(DeleteResourceShare{r.call->caller, share_id});
}

// The caller's shares, as rows.
std::vector<Json> own_shares(const RowView& rows, const std::string& caller) {
  std::vector<Json> out;
  std::string prefix = "oshare/" + caller + "/";
  rows.scan(prefix, [&](std::string_view key, std::string_view) {
    if (auto share = row_json(rows, "share/" + std::string(key.substr(prefix.size())))) out.push_back(*share);
    return true;
  });
  return out;
}

void list_resource_shares(Route r) {
  auto rows = r.rows();
  Json list = Json::array();
  for (const Json& share : own_shares(*rows, r.call->caller)) {
    list.push_back({{"ResourceShareId", share["share_id"]}, {"ResourceShareName", share["name"]},
                    {"ResourceShareOwner", share["owner"]}, {"ResourceShareStatus", share["status"]},
                    {"AllowExternalTargets", share["allow_external"]}});
  }
  r.answer(Json{{"ResourceShares", list}});
}

void list_associations(Route r) {
  std::string type = optional(r.p(), "AssociationType");
  auto rows = r.rows();
  Json list = Json::array();
  for (const Json& share : own_shares(*rows, r.call->caller)) {
    for (const auto& [entity, status] : share["associations"].items()) {
      bool is_resource = entity.rfind("m-", 0) == 0;
      if (!type.empty() && type != (is_resource ? "Resource" : "Target")) continue;
      list.push_back({{"ResourceShareId", share["share_id"]}, {"ResourceShareName", share["name"]},
                      {"EntityId", entity}, {"EntityType", is_resource ? "Image" : "Target"},
                      {"AssociationType", is_resource ? "Resource" : "Target"}, {"AssociationStatus", status}});
    }
  }
  r.answer(Json{{"ResourceShareAssociations", list}});
}

void list_shared_resources(Route r) {
  std::string owner = optional(r.p(), "ResourceOwner", "Self");
  if (owner != "Self" && owner != "OtherAccounts") {
    return r.bad(make_error(400, "InvalidParameter", "ResourceOwner must be Self or OtherAccounts."));
  }
  auto rows = r.rows();
  Json list = Json::array();
  if (owner == "Self") {
    for (const Json& share : own_shares(*rows, r.call->caller)) {
      for (const auto& id : share["resources"]) {
        list.push_back({{"ResourceId", id}, {"ResourceType", "Image"}, {"ResourceShareId", share["share_id"]}});
      }
    }
  } else {
    std::string prefix = "agrant/" + r.call->caller + "/";
    rows->scan(prefix, [&](std::string_view, std::string_view value) {
      Json grant = Json::parse(value);
      for (const auto& [source, since] : grant["sources"].items()) {
        if (source.rfind("resource-share:", 0) != 0) continue;
        list.push_back({{"ResourceId", grant["image_id"]}, {"ResourceType", "Image"},
                        {"ResourceShareId", source.substr(15)}});
      }
      return true;
    });
  }
  r.answer(Json{{"SharedResources", list}});
}

using Handler = void (*)(Route);

const std::map<std::pair<std::string_view, std::string_view>, Handler>& routes() {
  static const std::map<std::pair<std::string_view, std::string_view>, Handler> table = {
      {{"CreateImage", kEcs}, create_image},
      {{"CopyImage", kEcs}, copy_image},
      {{"DescribeImages", kEcs}, describe_images},
      {{"DeleteImage", kEcs}, delete_image},
      {{"ModifyImageSharePermission", kEcs}, modify_share_permission},
      {{"DescribeImageSharePermission", kEcs}, describe_share_permission},
      {{"RunInstances", kEcs}, run_instances},
      {{"DescribeInstances", kEcs}, describe_instances},
      {{"DescribeDisks", kEcs}, describe_disks},
      {{"ReplaceSystemDisk", kEcs}, replace_system_disk},
      {{"ReInitDisk", kEcs}, reinit_disk},
      {{"DeleteInstance", kEcs}, delete_instance},
      {{"EnableResourceDirectory", kManager}, enable_resource_directory},
      {{"CreateFolder", kManager}, create_folder},
      {{"InviteAccountToResourceDirectory", kManager}, invite_account},
      {{"AcceptHandshake", kManager}, accept_handshake},
      {{"MoveAccount", kManager}, move_account},
      {{"RemoveCloudAccount", kManager}, remove_cloud_account},
      {{"EnableSharingWithResourceDirectory", kSharing}, enable_sharing},
      {{"CreateResourceShare", kSharing}, create_resource_share},
      {{"AssociateResourceShare", kSharing}, [](Route r) { change_association<AssociateResourceShare>(r, "Associated"); }},
      {{"DisassociateResourceShare", kSharing},
       [](Route r) { change_association<DisassociateResourceShare>(r, "Disassociated"); }},
      {{"DeleteResourceShare", kSharing}, delete_resource_share},
      {{"ListResourceShares", kSharing}, list_resource_shares},
      {{"ListResourceShareAssociations", kSharing}, list_associations},
      {{"ListSharedResources", kSharing}, list_shared_resources},
  };
  return table;
}

}  // namespace

void dispatch_rpc(Service& service, std::shared_ptr<Call> call, const std::string& action,
                  const std::string& version) {
  auto it = routes().find({action, version});
  if (it == routes().end()) {
    return service.reply_error(*call,
                               make_error(404, "InvalidAction.NotFound",
                                          "Specified api " + action + " (version " + version + ") is not found."),
                               true);
  }
  it->second(Route{service, std::move(call)});
}

}  // namespace sl::api
