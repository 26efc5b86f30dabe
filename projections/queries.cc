#include "projections/queries.h"

#include <algorithm>
#include <set>

#include "events/codec.h"
#include "events/entities.h"

namespace sl {
namespace {

Error image_not_found(const std::string& id) {
  return make_error(404, "InvalidImageId.NotFound", "The specified ImageId " + id + " does not exist.");
}

bool is_owner_or_admin(const Json& image, const Viewer& viewer) {
  return viewer.admin || image.value("owner", "") == viewer.account_id;
}

// The rest of a key after its prefix (the id in "grant/<image>/<account>").
std::string tail(std::string_view key, std::string_view prefix) { return std::string(key.substr(prefix.size())); }

}  // namespace

std::optional<Json> row_json(const RowView& view, const std::string& key) {
  auto raw = view.get(key);
  if (!raw) return std::nullopt;
  Json j = Json::parse(*raw, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

std::optional<Json> live_image(const RowView& view, const std::string& image_id) {
  auto image = row_json(view, "img/" + image_id);
  if (!image || image->value("status", "") == "Deleted") return std::nullopt;
  return image;
}

std::vector<std::string> access_sources(const RowView& view, const Json& image, const std::string& account_id) {
  std::vector<std::string> sources;
  if (image.value("status", "") == "Deleted") return sources;
  const std::string kind = image.value("kind", "");
  if (kind == "system") return {"system"};
  if (kind == "marketplace") {
    auto account = row_json(view, "acct/" + account_id);
    if (account && account->value("site", "") == image.value("site", "")) sources.push_back("marketplace");
    return sources;
  }
  if (image.value("owner", "") == account_id) return {"owner"};
  if (auto grant = row_json(view, "grant/" + image.value("image_id", "") + "/" + account_id)) {
    for (const auto& [source, since] : (*grant)["sources"].items()) sources.push_back(source);
  }
  if (image.value("is_public", false)) sources.push_back("public");
  return sources;
}

Result<Json> image_permissions(const RowView& view, const std::string& image_id, const Viewer& viewer) {
  auto image = live_image(view, image_id);
  if (!image) return image_not_found(image_id);
  bool full = is_owner_or_admin(*image, viewer);
  Json grants = Json::array();
  auto add = [&](const Json& grant) {
    for (const auto& [source, since] : grant["sources"].items()) {
      grants.push_back({{"account_id", grant["account_id"]}, {"source", source},
                        {"since_seq", since["seq"]}, {"since_time", since["time"]}});
    }
  };
  if (full) {
    view.scan("grant/" + image_id + "/", [&](std::string_view, std::string_view value) {
      add(Json::parse(value));
      return true;
    });
  } else if (auto own = row_json(view, "grant/" + image_id + "/" + viewer.account_id)) {
    add(*own);
  } else if (!(*image)["is_public"].get<bool>()) {
    return image_not_found(image_id);
  }
  Json out{{"image_id", image_id}, {"seq", view.seq()}, {"grants", grants}};
  if ((*image)["is_public"].get<bool>()) {
    out["public"] = {{"since_seq", (*image)["public_since"]["seq"]}, {"since_time", (*image)["public_since"]["time"]}};
  } else {
    out["public"] = nullptr;
  }
  return out;
}

Result<Json> image_recipients(const RowView& view, const std::string& image_id, const Viewer& viewer) {
  auto image = live_image(view, image_id);
  if (!image || !is_owner_or_admin(*image, viewer)) return image_not_found(image_id);
  Json counts = row_json(view, "recip/" + image_id).value_or(Json::object());
  counts["image_id"] = image_id;
  counts["seq"] = view.seq();
  counts["limit"] = 50;
  return counts;
}

Result<Json> check_access(const RowView& view, const std::string& account_id, const std::string& image_id,
                          const Viewer& viewer) {
  if (!viewer.admin && account_id != viewer.account_id) {
    return make_error(404, "InvalidAccount.NotFound", "The specified account " + account_id + " does not exist.");
  }
  Json sources = Json::array();
  if (auto image = row_json(view, "img/" + image_id)) {
    for (auto& s : access_sources(view, *image, account_id)) sources.push_back(s);
  }
  return Json{{"account_id", account_id}, {"image_id", image_id}, {"seq", view.seq()},
              {"allowed", !sources.empty()}, {"sources", sources}};
}

Result<Json> image_launchers(const RowView& view, const std::string& image_id, const Viewer& viewer) {
  auto image = live_image(view, image_id);
  if (!image || (!viewer.admin && (*image)["kind"] == "custom" && (*image)["owner"] != viewer.account_id)) {
    return image_not_found(image_id);
  }
  Json out{{"image_id", image_id}, {"seq", view.seq()}, {"everyone", false}, {"site", nullptr}};
  Json accounts = Json::array();
  const std::string kind = (*image)["kind"];
  if (kind == "system") {
    out["everyone"] = true;
  } else if (kind == "marketplace") {
    out["site"] = (*image)["site"];
  } else {
    out["everyone"] = (*image)["is_public"].get<bool>();
    accounts.push_back({{"account_id", (*image)["owner"]}, {"sources", {"owner"}}});
    view.scan("grant/" + image_id + "/", [&](std::string_view, std::string_view value) {
      Json grant = Json::parse(value);
      Json sources = Json::array();
      for (const auto& [source, since] : grant["sources"].items()) sources.push_back(source);
      accounts.push_back({{"account_id", grant["account_id"]}, {"sources", sources}});
      return true;
    });
  }
  out["accounts"] = accounts;
  return out;
}

Result<Json> instance_status(const RowView& view, const std::string& instance_id, const Viewer& viewer) {
  auto instance = row_json(view, "inst/" + instance_id);
  if (!instance || (!viewer.admin && (*instance)["owner"] != viewer.account_id)) {
    return make_error(404, "InvalidInstanceId.NotFound", "The specified InstanceId " + instance_id + " does not exist.");
  }
  (*instance)["seq"] = view.seq();
  (*instance)["since_seq"] = (*instance)["blocked_since"]["seq"];
  return *instance;
}

Result<Json> image_impact(const RowView& view, const std::string& image_id, const std::string& action,
                          const std::vector<std::string>& accounts, const Viewer& viewer) {
  auto image = live_image(view, image_id);
  if (!image || !is_owner_or_admin(*image, viewer)) return image_not_found(image_id);
  if (action != "delete" && action != "unshare") {
    return make_error(400, "InvalidParameter", "action must be delete or unshare");
  }
  std::set<std::string> unshared(accounts.begin(), accounts.end());
  const std::string owner = (*image)["owner"];
  const bool is_public = (*image)["is_public"];
  // Which accounts would hold no grant after removing their account-id grant.
  std::set<std::string> losing;
  if (action == "unshare") {
    for (const auto& account : unshared) {
      auto grant = row_json(view, "grant/" + image_id + "/" + account);
      if (!grant || !(*grant)["sources"].contains("account")) continue;
      if ((*grant)["sources"].size() == 1 && !is_public) losing.insert(account);
    }
  }
  Json blocked = Json::array();
  std::string prefix = "iimg/" + image_id + "/";
  view.scan(prefix, [&](std::string_view key, std::string_view) {
    auto instance = row_json(view, "inst/" + tail(key, prefix));
    if (!instance) return true;
    const std::string reason = (*instance)["reason"];
    const std::string instance_owner = (*instance)["owner"];
    bool would_block = action == "delete" ? reason != "image_deleted"
                                          : losing.count(instance_owner) && instance_owner != owner && reason.empty();
    if (would_block) {
      blocked.push_back({{"instance_id", (*instance)["instance_id"]}, {"owner", instance_owner},
                         {"reason", action == "delete" ? "image_deleted" : "image_unshared"}});
    }
    return true;
  });
  return Json{{"image_id", image_id}, {"action", action}, {"seq", view.seq()}, {"instances", blocked},
              {"accounts_losing_access", Json(std::vector<std::string>(losing.begin(), losing.end()))}};
}

Result<Json> entity_history(const Store& store, const RowView& view, const std::string& kind, const std::string& id,
                            const Viewer& viewer, std::size_t limit) {
  bool allowed = viewer.admin;
  if (kind == "image") {
    auto image = row_json(view, "img/" + id);
    allowed = image && is_owner_or_admin(*image, viewer);
    if (!allowed) return image_not_found(id);
  } else if (kind == "account") {
    allowed = allowed || id == viewer.account_id;
    if (!allowed) return make_error(404, "InvalidAccount.NotFound", "The specified account " + id + " does not exist.");
  } else {
    auto instance = row_json(view, "inst/" + id);
    allowed = allowed || (instance && (*instance)["owner"] == viewer.account_id);
    if (!allowed) return make_error(404, "InvalidInstanceId.NotFound", "The specified InstanceId " + id + " does not exist.");
  }
  auto seqs = store.entity_events(id, view.seq(), limit);
  if (!seqs) return seqs.error();
  Json events = Json::array();
  for (std::uint64_t seq : *seqs) {
    auto bytes = store.event_bytes(seq);
    if (!bytes) return bytes.error();
    if (!*bytes) continue;
    if (viewer.admin) {
      events.push_back(Json::parse(**bytes));
      continue;
    }
    auto e = decode_event(**bytes);
    if (!e) return e.error();
    if (auto scoped = envelope_for(view, *e, **bytes, viewer.account_id)) events.push_back(Json::parse(*scoped));
  }
  return Json{{kind + "_id", id}, {"seq", view.seq()}, {"events", events}};
}

std::vector<Json> usable_images(const RowView& view, const std::string& account_id, const std::string& region) {
  std::vector<Json> out;
  std::set<std::string> seen;
  auto add = [&](const std::string& image_id, const std::string& alias) {
    if (seen.count(image_id)) return;
    auto image = live_image(view, image_id);
    if (!image || (*image)["region"] != region) return;
    if (access_sources(view, *image, account_id).empty()) return;
    seen.insert(image_id);
    (*image)["alias"] = alias;
    out.push_back(std::move(*image));
  };
  auto each_id = [&](const std::string& prefix, const std::function<void(const std::string&)>& fn) {
    view.scan(prefix, [&](std::string_view key, std::string_view) {
      fn(tail(key, prefix));
      return true;
    });
  };
  each_id("own/" + account_id + "/", [&](const std::string& id) { add(id, "self"); });
  each_id("cat/" + region + "/", [&](const std::string& id) {
    auto image = row_json(view, "img/" + id);
    if (image) add(id, (*image)["kind"]);
  });
  each_id("agrant/" + account_id + "/", [&](const std::string& id) { add(id, "others"); });
  each_id("pub/", [&](const std::string& id) { add(id, "others"); });
  return out;
}

// An event a non-admin may see: its own actions, events naming it (grants to
// it, its account), and events about images it owns (not other accounts' instances).
bool event_visible(const RowView& rows, const Event& e, const std::string& account) {
  if (e.actor.account_id == account) return true;
  auto entities = touched_entities(e);
  if (std::find(entities.begin(), entities.end(), account) != entities.end()) return true;
  bool instance_event = std::holds_alternative<InstanceCreated>(e.data) ||
                        std::holds_alternative<SystemDiskReplaced>(e.data) ||
                        std::holds_alternative<SystemDiskReinitialized>(e.data) ||
                        std::holds_alternative<InstanceDeleted>(e.data);
  if (instance_event) return false;
  for (const auto& id : entities) {
    if (id.rfind("m-", 0) != 0) continue;
    auto image = row_json(rows, "img/" + id);
    if (image && (*image)["owner"] == account) return true;
  }
  return false;
}


std::optional<std::string> envelope_for(const RowView& view, const Event& e, std::string_view stored,
                                        const std::string& account_id) {
  if (!event_visible(view, e, account_id)) return std::nullopt;
  if (e.actor.account_id == account_id) return std::string(stored);
  bool about_own_image = false;
  for (const auto& id : touched_entities(e)) {
    if (id.rfind("m-", 0) != 0) continue;
    auto image = row_json(view, "img/" + id);
    about_own_image = about_own_image || (image && (*image)["owner"] == account_id);
  }
  if (about_own_image) return std::string(stored);
  Json j = Json::parse(stored);
  j["actor"]["access_key_id"] = "";
  Json& data = j["data"];
  auto keep_only = [&](const char* field, const std::function<bool(const std::string&)>& mine) {
    if (!data.contains(field)) return;
    Json kept = Json::array();
    for (const auto& v : data[field]) {
      if (mine(v.get<std::string>())) kept.push_back(v);
    }
    data[field] = kept;
  };
  auto is_me = [&](const std::string& id) { return id == account_id; };
  keep_only("accounts", is_me);
  keep_only("targets", [&](const std::string& id) { return is_me(id) || !row_json(view, "acct/" + id); });
  keep_only("blocked_instances", [&](const std::string& id) {
    auto instance = row_json(view, "inst/" + id);
    return instance && (*instance)["owner"] == account_id;
  });
  j["redacted"] = true;
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace sl
