#include "projections/rows.h"

#include <functional>
#include <nlohmann/json.hpp>

namespace sl {
namespace {

using nlohmann::json;

// Where rows go: a LogBatch (live) or a map (replay). `value` nullopt = absent.
using Sink = std::function<void(const std::string& key, const std::optional<std::string>& value)>;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json since_json(const Since& s) { return json{{"seq", s.seq}, {"time", s.time_us}}; }

std::optional<std::string> presence(bool present) {
  return present ? std::optional<std::string>("") : std::nullopt;
}

void emit_account(const State& s, const std::string& id, const Sink& sink) {
  const Account* a = s.account(id);
  if (!a) return sink("acct/" + id, std::nullopt);
  sink("acct/" + id, dump(json{{"account_id", a->id},
                               {"site", a->site},
                               {"encrypt_role", a->encrypt_role},
                               {"folder_id", a->folder_id},
                               {"directory_id", s.directory_of(a->id)},
                               {"since", since_json(a->since)}}));
  for (const auto& key : a->access_keys) sink("akey/" + key, a->id);
}

void emit_recipients(const State& s, const std::string& image_id, const Sink& sink) {
  auto r = s.recipients(image_id);
  sink("recip/" + image_id, dump(json{{"direct", r.direct},
                                      {"via_directory", r.via_directory},
                                      {"public", r.is_public},
                                      {"effective", r.effective}}));
}

void emit_image(const State& s, const std::string& id, const Sink& sink) {
  const Image* x = s.image(id);
  if (!x) return;
  json origin{{"marketplace_derived", x->origin.marketplace_derived},
              {"product_code", x->origin.product_code},
              {"paid", x->origin.paid},
              {"encrypted", x->origin.encrypted},
              {"kms_key", x->origin.kms_key}};
  sink("img/" + id, dump(json{{"image_id", x->id},
                              {"kind", x->kind},
                              {"owner", x->owner},
                              {"region", x->region},
                              {"name", x->name},
                              {"site", x->site},
                              {"status", x->status},
                              {"origin", origin},
                              {"is_public", x->is_public},
                              {"public_since", since_json(x->public_since)},
                              {"created", since_json(x->created)}}));
  if (x->custom()) sink("own/" + x->owner + "/" + id, presence(!x->deleted()));
  if (!x->custom()) sink("cat/" + x->region + "/" + id, presence(!x->deleted()));
  sink("pub/" + id, presence(x->is_public && !x->deleted()));
  emit_recipients(s, id, sink);
}

void emit_grant(const State& s, const std::string& image_id, const std::string& account_id, const Sink& sink) {
  std::optional<std::string> value;
  if (const GrantSources* g = s.grant(image_id, account_id)) {
    json sources = json::object();
    for (const auto& [source, since] : *g) sources[source] = since_json(since);
    value = dump(json{{"image_id", image_id}, {"account_id", account_id}, {"sources", sources}});
  }
  sink("grant/" + image_id + "/" + account_id, value);
  sink("agrant/" + account_id + "/" + image_id, value);
}

void emit_instance(const State& s, const std::string& id, const Sink& sink) {
  const Instance* i = s.instance(id);
  if (!i) return sink("inst/" + id, std::nullopt);
  sink("inst/" + id, dump(json{{"instance_id", i->id},
                               {"owner", i->owner},
                               {"region", i->region},
                               {"image_id", i->image_id},
                               {"disk_id", i->disk_id},
                               {"image_fee_payer", i->image_fee_payer},
                               {"product_code", i->product_code},
                               {"reinit_blocked", !i->blocked_reason.empty()},
                               {"reason", i->blocked_reason},
                               {"blocked_since", since_json(i->blocked_since)},
                               {"image_since", since_json(i->image_since)}}));
}

void emit_owned_instance(const State& s, const std::string& owner, const std::string& instance_id, const Sink& sink) {
  sink("oinst/" + owner + "/" + instance_id, presence(s.instance(instance_id) != nullptr));
}

void emit_image_instance(const State& s, const std::string& image_id, const std::string& instance_id,
                         const Sink& sink) {
  const Instance* i = s.instance(instance_id);
  sink("iimg/" + image_id + "/" + instance_id, presence(i && i->image_id == image_id));
}

void emit_disk(const State& s, const std::string& disk_id, const Sink& sink) {
  auto it = s.disks.find(disk_id);
  sink("disk/" + disk_id, it == s.disks.end() ? std::nullopt : std::optional<std::string>(it->second));
}

void emit_directory(const State& s, const std::string& id, const Sink& sink) {
  auto it = s.directories.find(id);
  if (it == s.directories.end()) return sink("dir/" + id, std::nullopt);
  const Directory& d = it->second;
  sink("dir/" + id, dump(json{{"directory_id", d.id},
                              {"root_folder_id", d.root_folder_id},
                              {"management_account", d.management_account},
                              {"sharing_enabled", d.sharing_enabled}}));
}

void emit_folder(const State& s, const std::string& id, const Sink& sink) {
  auto it = s.folders.find(id);
  if (it == s.folders.end()) return sink("folder/" + id, std::nullopt);
  const Folder& f = it->second;
  sink("folder/" + id, dump(json{{"folder_id", f.id}, {"parent_id", f.parent_id}, {"name", f.name},
                                 {"directory_id", f.directory_id}}));
}

void emit_handshake(const State& s, const std::string& id, const Sink& sink) {
  auto it = s.handshakes.find(id);
  if (it == s.handshakes.end()) return sink("hs/" + id, std::nullopt);
  const Handshake& h = it->second;
  sink("hs/" + id, dump(json{{"handshake_id", h.id}, {"directory_id", h.directory_id}, {"account_id", h.account_id}}));
}

void emit_share(const State& s, const std::string& id, const Sink& sink) {
  auto it = s.shares.find(id);
  if (it == s.shares.end()) return sink("share/" + id, std::nullopt);
  const ResourceShare& rs = it->second;
  sink("share/" + id, dump(json{{"share_id", rs.id},
                                {"owner", rs.owner},
                                {"name", rs.name},
                                {"allow_external", rs.allow_external},
                                {"status", rs.deleted ? "Deleted" : "Active"},
                                {"resources", rs.resources},
                                {"targets", rs.targets},
                                {"associations", rs.association_status}}));
  sink("oshare/" + rs.owner + "/" + id, "");
}

}  // namespace

void stage_dirty_rows(const State& s, LogBatch& batch) {
  Sink sink = [&](const std::string& key, const std::optional<std::string>& value) {
    if (value) {
      batch.put_row(key, *value);
    } else {
      batch.delete_row(key);
    }
  };
  const Dirty& d = s.dirty;
  for (const auto& id : d.accounts) emit_account(s, id, sink);
  for (const auto& id : d.images) emit_image(s, id, sink);
  std::set<std::string> recipient_images;
  for (const auto& [image_id, account_id] : d.grants) {
    emit_grant(s, image_id, account_id, sink);
    if (!d.images.count(image_id)) recipient_images.insert(image_id);
  }
  for (const auto& id : recipient_images) emit_recipients(s, id, sink);
  for (const auto& id : d.instances) emit_instance(s, id, sink);
  for (const auto& [image_id, instance_id] : d.image_instances) emit_image_instance(s, image_id, instance_id, sink);
  for (const auto& [owner, instance_id] : d.owned_instances) emit_owned_instance(s, owner, instance_id, sink);
  for (const auto& id : d.disks) emit_disk(s, id, sink);
  for (const auto& id : d.directories) emit_directory(s, id, sink);
  for (const auto& id : d.folders) emit_folder(s, id, sink);
  for (const auto& id : d.handshakes) emit_handshake(s, id, sink);
  for (const auto& id : d.shares) emit_share(s, id, sink);
}

std::map<std::string, std::string> all_rows(const State& s) {
  std::map<std::string, std::string> rows;
  Sink sink = [&](const std::string& key, const std::optional<std::string>& value) {
    if (value) rows[key] = *value;
  };
  for (const auto& [id, a] : s.accounts) emit_account(s, id, sink);
  for (const auto& [id, x] : s.images) emit_image(s, id, sink);
  for (const auto& [image_id, by_account] : s.grants) {
    for (const auto& [account_id, sources] : by_account) emit_grant(s, image_id, account_id, sink);
  }
  for (const auto& [id, i] : s.instances) {
    emit_instance(s, id, sink);
    emit_image_instance(s, i.image_id, id, sink);
    emit_owned_instance(s, i.owner, id, sink);
  }
  for (const auto& [disk_id, instance_id] : s.disks) emit_disk(s, disk_id, sink);
  for (const auto& [id, d] : s.directories) emit_directory(s, id, sink);
  for (const auto& [id, f] : s.folders) emit_folder(s, id, sink);
  for (const auto& [id, h] : s.handshakes) emit_handshake(s, id, sink);
  for (const auto& [id, rs] : s.shares) emit_share(s, id, sink);
  return rows;
}

}  // namespace sl
