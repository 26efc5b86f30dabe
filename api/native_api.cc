// The native JSON API (SPEC §3.2): /v1/... routes over the projection queries.
// Every read accepts as_of_seq / as_of_time and is answered from the same query
// code over a current or a historical RowView.
#include <charconv>
#include <nlohmann/json.hpp>

#include "api/ids.h"
#include "api/param_rules.h"
#include "api/service.h"
#include "events/time_format.h"
#include "events/codec.h"
#include "events/entities.h"

namespace sl::api {
namespace {

using CallPtr = std::shared_ptr<Call>;

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> parts;
  std::size_t start = 1;
  while (start <= path.size()) {
    std::size_t slash = path.find('/', start);
    std::string_view part = path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (!part.empty()) parts.emplace_back(part);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return parts;
}

Error not_found_route() { return make_error(404, "NotFound", "No such route."); }

struct NativeRoute {
  Service& svc;
  CallPtr call;

  Viewer viewer() const { return Viewer{call->admin, call->caller}; }
  void bad(const Error& e) { svc.reply_error(*call, e, false); }
  void answer(const Result<Json>& r) {
    if (!r) return bad(r.error());
    svc.reply(*call, 200, *r);
  }

  // The view the request asks for: now, as_of_seq=N, or as_of_time=RFC3339.
  Result<std::unique_ptr<RowView>> view() {
    const std::string* seq_text = call->params.get("as_of_seq");
    const std::string* time_text = call->params.get("as_of_time");
    if (seq_text && time_text) {
      return make_error(400, "InvalidParameter.AsOf", "Give as_of_seq or as_of_time, not both.");
    }
    if (seq_text) {
      std::uint64_t seq = 0;
      auto [end, ec] = std::from_chars(seq_text->data(), seq_text->data() + seq_text->size(), seq);
      if (ec != std::errc() || end != seq_text->data() + seq_text->size()) {
        return make_error(400, "InvalidParameter.AsOf", "as_of_seq must be a non-negative integer.");
      }
      return svc.ledger().view(seq);
    }
    if (time_text) {
      auto micros = parse_rfc3339(*time_text);
      if (!micros) return make_error(400, "InvalidParameter.AsOf", "as_of_time must be RFC 3339.");
      auto seq = svc.ledger().seq_at_time(*micros);
      if (!seq) return seq.error();
      return svc.ledger().view(*seq);
    }
    return svc.ledger().view();
  }
};

void get_head(NativeRoute r) {
  auto view = r.view();
  if (!view) return r.bad(view.error());
  std::uint64_t seq = (*view)->seq();
  Json out{{"seq", seq}, {"time", nullptr}, {"hash", std::string(kGenesisHash)}};
  if (seq > 0) {
    auto bytes = r.svc.ledger().store().event_bytes(seq);
    if (!bytes) return r.bad(bytes.error());
    if (*bytes) {
      Json e = Json::parse(**bytes);
      out["time"] = rfc3339_micros(e["time"].get<std::int64_t>());
      out["time_us"] = e["time"];
      out["hash"] = e["hash"];
    }
  }
  r.svc.reply(*r.call, 200, out);
}

void get_events(NativeRoute r) {
  long long after = 0, limit = 0;
  Result<long long> a = bounded_int(r.call->params, "after_seq", 0, 0, std::numeric_limits<long long>::max());
  Result<long long> l = bounded_int(r.call->params, "limit", 1000, 1, 10000);
  if (!a) return r.bad(a.error());
  if (!l) return r.bad(l.error());
  after = *a;
  limit = *l;
  auto view = r.view();
  if (!view) return r.bad(view.error());
  std::uint64_t until = (*view)->seq();
  std::string body;
  long long emitted = 0;
  auto status = r.svc.ledger().store().scan_events(static_cast<std::uint64_t>(after) + 1,
                                                   [&](std::uint64_t seq, std::string_view bytes) {
    if (seq > until || emitted >= limit) return false;
    if (!r.call->admin) {
      auto e = decode_event(bytes);
      if (!e) return true;
      auto scoped = envelope_for(**view, *e, bytes, r.call->caller);
      if (!scoped) return true;
      body.append(*scoped);
      body.push_back('\n');
      ++emitted;
      return true;
    }
    body.append(bytes);
    body.push_back('\n');
    ++emitted;
    return true;
  });
  if (!status) return r.bad(status.error());
  Response res{http::status::ok, r.call->req.version()};
  res.set(http::field::content_type, "application/x-ndjson");
  res.set("x-shareledger-seq", std::to_string(until));
  res.keep_alive(r.call->req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  r.call->respond(std::move(res));
}

void image_route(NativeRoute r, const std::string& image_id, const std::string& what) {
  auto view = r.view();
  if (!view) return r.bad(view.error());
  const RowView& rows = **view;
  if (what == "permissions") return r.answer(image_permissions(rows, image_id, r.viewer()));
  if (what == "recipients") return r.answer(image_recipients(rows, image_id, r.viewer()));
  if (what == "launchers") return r.answer(image_launchers(rows, image_id, r.viewer()));
  if (what == "history") return r.answer(entity_history(r.svc.ledger().store(), rows, "image", image_id, r.viewer(), 10000));
  if (what == "impact") {
    return r.answer(image_impact(rows, image_id, optional(r.call->params, "action"),
                                 split_list(optional(r.call->params, "accounts")), r.viewer()));
  }
  r.bad(not_found_route());
}

void check(NativeRoute r) {
  std::string image;
  auto i = required(r.call->params, "image");
  if (!i) return r.bad(i.error());
  image = *i;
  std::string account = optional(r.call->params, "account", r.call->caller);
  if (account.empty()) return r.bad(make_error(400, "MissingParameter", "account is required for the admin."));
  auto view = r.view();
  if (!view) return r.bad(view.error());
  r.answer(check_access(**view, account, image, r.viewer()));
}

void create_account(NativeRoute r) {
  if (!r.call->admin) return r.bad(make_error(403, "Forbidden", "Admin token required."));
  Json body = Json::parse(r.call->req.body(), nullptr, false);
  if (!body.is_object() || !body.contains("site") || !body["site"].is_string()) {
    return r.bad(make_error(400, "InvalidParameter", "Body must be {\"site\": \"cn\"|\"intl\"}."));
  }
  std::string account = new_account_id(), key = new_access_key_id(), secret = new_access_key_secret();
  r.call->secret_to_store = secret;
  std::string request_id = r.call->request_id;
  r.svc.submit(r.call, RegisterAccount{account, body["site"], key}, false, [=](const Commit&) {
    return Json{{"account_id", account}, {"access_key_id", key}, {"access_key_secret", secret},
                {"site", body["site"]}, {"request_id", request_id}};
  });
}

void set_encrypt_role(NativeRoute r, const std::string& account) {
  if (!r.call->admin) return r.bad(make_error(403, "Forbidden", "Admin token required."));
  Json body = Json::parse(r.call->req.body(), nullptr, false);
  if (!body.is_object() || !body.contains("authorized") || !body["authorized"].is_boolean()) {
    return r.bad(make_error(400, "InvalidParameter", "Body must be {\"authorized\": true|false}."));
  }
  bool authorized = body["authorized"];
  std::string request_id = r.call->request_id;
  r.svc.submit(r.call, SetEncryptShareRole{account, authorized}, false, [=](const Commit& c) {
    return Json{{"account_id", account}, {"authorized", authorized}, {"seq", c.seq}, {"request_id", request_id}};
  });
}

}  // namespace

void dispatch_native(Service& service, std::shared_ptr<Call> call) {
  NativeRoute r{service, call};
  std::string_view target = call->req.target();
  auto parts = split_path(target.substr(0, target.find('?')));  // parts[0] == "v1"
  bool get = call->req.method() == http::verb::get;
  bool post = call->req.method() == http::verb::post;
  std::size_t n = parts.size();
  if (get && n == 2 && parts[1] == "head") return get_head(r);
  if (get && n == 2 && parts[1] == "events") return get_events(r);
  if (get && n == 2 && parts[1] == "check") return check(r);
  if (get && n == 2 && parts[1] == "verify") return get_verify(service, call);
  if (get && n == 4 && parts[1] == "images") return image_route(r, parts[2], parts[3]);
  if (get && n == 3 && parts[1] == "instances") {
    auto view = r.view();
    if (!view) return r.bad(view.error());
    return r.answer(instance_status(**view, parts[2], r.viewer()));
  }
  if (get && n == 4 && (parts[1] == "instances" || parts[1] == "accounts") && parts[3] == "history") {
    auto view = r.view();
    if (!view) return r.bad(view.error());
    std::string kind = parts[1] == "instances" ? "instance" : "account";
    return r.answer(entity_history(service.ledger().store(), **view, kind, parts[2], r.viewer(), 10000));
  }
  if (post && n == 3 && parts[1] == "admin" && parts[2] == "accounts") return create_account(r);
  if (post && n == 5 && parts[1] == "admin" && parts[2] == "accounts" && parts[4] == "encrypt-share-role") {
    return set_encrypt_role(r, parts[3]);
  }
  r.bad(not_found_route());
}

}  // namespace sl::api
