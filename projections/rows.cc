#include "projections/rows.h"

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>

namespace sl {
namespace {

using nlohmann::json;

// Where rows go: a LogBatch (live) or a map (replay). `value` nullopt = absent.
using Sink = std::function<void(const std::string& key, const std::optional<std::string>& value)>;

// Row values are JSON objects in nlohmann's canonical form (keys sorted,
// compact), written directly: building a json tree per row cost more than the
// rest of staging a write. ObjectWriter's callers add keys in sorted order;
// ledger_test checks every stored row against nlohmann's own rendering.
class ObjectWriter {
 public:
  ObjectWriter() : out_("{") {}

  ObjectWriter& str(std::string_view key, std::string_view value) {
    name(key);
    quoted(out_, value);
    return *this;
  }
  ObjectWriter& boolean(std::string_view key, bool value) {
    name(key);
    out_ += value ? "true" : "false";
    return *this;
  }
  template <class Int>
  ObjectWriter& number(std::string_view key, Int value) {
    name(key);
    out_ += std::to_string(value);
    return *this;
  }
  ObjectWriter& since(std::string_view key, const Since& s) {
    return raw(key, ObjectWriter().number("seq", s.seq).number("time", s.time_us).done());
  }
  ObjectWriter& strings(std::string_view key, const std::set<std::string>& values) {
    name(key);
    out_ += '[';
    for (const auto& v : values) {
      if (out_.back() != '[') out_ += ',';
      quoted(out_, v);
    }
    out_ += ']';
    return *this;
  }
  ObjectWriter& raw(std::string_view key, std::string_view json_text) {
    name(key);
    out_ += json_text;
    return *this;
  }
  std::string done() {
    out_ += '}';
    return std::move(out_);
  }

  // A JSON string as nlohmann writes it (the invalid-UTF-8 replacing handler).
  static void quoted(std::string& out, std::string_view v) {
    bool plain = true;
    for (unsigned char c : v) plain = plain && c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
    if (!plain) {
      out += json(std::string(v)).dump(-1, ' ', false, json::error_handler_t::replace);
      return;
    }
    out += '"';
    out += v;
    out += '"';
  }

 private:
  void name(std::string_view key) {
    if (out_.size() > 1) out_ += ',';
    quoted(out_, key);
    out_ += ':';
  }
  std::string out_;
};

std::optional<std::string> presence(bool present) {
  return present ? std::optional<std::string>("") : std::nullopt;
}

void emit_account(const State& s, const std::string& id, const Sink& sink) {
  const Account* a = s.account(id);
  if (!a) return sink("acct/" + id, std::nullopt);
  sink("acct/" + id, ObjectWriter()
                         .str("account_id", a->id)
                         .str("directory_id", s.directory_of(a->id))
                         .boolean("encrypt_role", a->encrypt_role)
                         .str("folder_id", a->folder_id)
                         .since("since", a->since)
                         .str("site", a->site)
                         .done());
  for (const auto& key : a->access_keys) sink("akey/" + key, a->id);
}

void emit_recipients(const State& s, const std::string& image_id, const Sink& sink) {
  auto r = s.recipients(image_id);
  sink("recip/" + image_id, ObjectWriter()
                                .number("direct", r.direct)
                                .number("effective", r.effective)
                                .number("public", r.is_public)
                                .number("via_directory", r.via_directory)
                                .done());
}

void emit_image(const State& s, const std::string& id, const Sink& sink) {
  const Image* x = s.image(id);
  if (!x) return;
  std::string origin = ObjectWriter()
                           .boolean("encrypted", x->origin.encrypted)
                           .str("kms_key", x->origin.kms_key)
                           .boolean("marketplace_derived", x->origin.marketplace_derived)
                           .boolean("paid", x->origin.paid)
                           .str("product_code", x->origin.product_code)
                           .done();
  sink("img/" + id, ObjectWriter()
                        .since("created", x->created)
                        .str("image_id", x->id)
                        .boolean("is_public", x->is_public)
                        .str("kind", x->kind)
                        .str("name", x->name)
                        .raw("origin", origin)
                        .str("owner", x->owner)
                        .since("public_since", x->public_since)
                        .str("region", x->region)
                        .str("site", x->site)
                        .str("status", x->status)
                        .done());
  if (x->custom()) sink("own/" + x->owner + "/" + id, presence(!x->deleted()));
  if (!x->custom()) sink("cat/" + x->region + "/" + id, presence(!x->deleted()));
  sink("pub/" + id, presence(x->is_public && !x->deleted()));
  emit_recipients(s, id, sink);
}

void emit_grant(const State& s, const std::string& image_id, const std::string& account_id, const Sink& sink) {
  std::optional<std::string> value;
  if (const GrantSources* g = s.grant(image_id, account_id)) {
    ObjectWriter sources;  // GrantSources is ordered by source: already sorted
    for (const auto& [source, since] : *g) sources.since(as_view(source), since);
    value = ObjectWriter().str("account_id", account_id).str("image_id", image_id).raw("sources", sources.done()).done();
  }
  sink("grant/" + image_id + "/" + account_id, value);
  sink("agrant/" + account_id + "/" + image_id, value);
}

void emit_instance(const State& s, const std::string& id, const Sink& sink) {
  const Instance* i = s.instance(id);
  if (!i) return sink("inst/" + id, std::nullopt);
  sink("inst/" + id, ObjectWriter()
                         .since("blocked_since", i->blocked_since)
                         .str("disk_id", i->disk_id)
                         .str("image_fee_payer", i->image_fee_payer)
                         .str("image_id", i->image_id)
                         .since("image_since", i->image_since)
                         .str("instance_id", i->id)
                         .str("owner", i->owner)
                         .str("product_code", i->product_code)
                         .str("reason", i->blocked_reason)
                         .str("region", i->region)
                         .boolean("reinit_blocked", !i->blocked_reason.empty())
                         .done());
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
  sink("dir/" + id, ObjectWriter()
                        .str("directory_id", d.id)
                        .str("management_account", d.management_account)
                        .str("root_folder_id", d.root_folder_id)
                        .boolean("sharing_enabled", d.sharing_enabled)
                        .done());
}

void emit_folder(const State& s, const std::string& id, const Sink& sink) {
  auto it = s.folders.find(id);
  if (it == s.folders.end()) return sink("folder/" + id, std::nullopt);
  const Folder& f = it->second;
  sink("folder/" + id, ObjectWriter()
                           .str("directory_id", f.directory_id)
                           .str("folder_id", f.id)
                           .str("name", f.name)
                           .str("parent_id", f.parent_id)
                           .done());
}

void emit_handshake(const State& s, const std::string& id, const Sink& sink) {
  auto it = s.handshakes.find(id);
  if (it == s.handshakes.end()) return sink("hs/" + id, std::nullopt);
  const Handshake& h = it->second;
  sink("hs/" + id,
       ObjectWriter().str("account_id", h.account_id).str("directory_id", h.directory_id).str("handshake_id", h.id).done());
}

void emit_share(const State& s, const std::string& id, const Sink& sink) {
  auto it = s.shares.find(id);
  if (it == s.shares.end()) return sink("share/" + id, std::nullopt);
  const ResourceShare& rs = it->second;
  ObjectWriter associations;  // a std::map: already sorted
  for (const auto& [item, status] : rs.association_status) associations.str(item, status);
  sink("share/" + id, ObjectWriter()
                          .boolean("allow_external", rs.allow_external)
                          .raw("associations", associations.done())
                          .str("name", rs.name)
                          .str("owner", rs.owner)
                          .strings("resources", rs.resources)
                          .str("share_id", rs.id)
                          .str("status", rs.deleted ? "Deleted" : "Active")
                          .strings("targets", rs.targets)
                          .done());
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

Rows all_rows(const State& s) {
  // Appended, then sorted once: a std::map paid a node allocation and a
  // descent of string compares per row.
  Rows rows;
  Sink sink = [&](const std::string& key, const std::optional<std::string>& value) {
    if (value) rows.emplace_back(key, *value);
  };
  for (const auto& [id, a] : s.accounts) emit_account(s, id, sink);
  for (const auto& [id, x] : s.images) emit_image(s, id, sink);
  for (const auto& [image_key, links] : s.links) {
    const std::string image_id(as_view(image_key));
    for (const auto& [account_id, sources] : links.grants) emit_grant(s, image_id, std::string(as_view(account_id)), sink);
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
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return rows;
}

}  // namespace sl
