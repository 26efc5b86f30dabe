#include "api/service.h"

#include <boost/beast/http.hpp>
#include <sstream>

#include "api/console_assets.h"
#include "api/ids.h"
#include "api/signature.h"
#include "events/time_format.h"

namespace sl::api {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

constexpr double kBucketMillis[] = {0.5, 1, 2, 5, 10, 50, 250};

}  // namespace

void Metrics::observe(const std::string& action, int status, std::chrono::microseconds latency) {
  std::lock_guard lock(mu_);
  Series& s = by_action_[action];
  s.count++;
  if (status >= 400) s.errors++;
  s.micros_total += latency.count();
  double ms = latency.count() / 1000.0;
  int b = 0;
  while (b < 7 && ms > kBucketMillis[b]) ++b;
  s.buckets[b]++;
}

std::string Metrics::render(const Ledger& ledger) const {
  std::ostringstream out;
  const GroupCommitStats& st = ledger.stats();
  Head head = ledger.head();
  out << "# TYPE shareledger_head_seq gauge\nshareledger_head_seq " << head.seq << "\n";
  out << "# TYPE shareledger_appended_events_total counter\nshareledger_appended_events_total " << st.events << "\n";
  out << "# TYPE shareledger_commands_total counter\nshareledger_commands_total " << st.jobs << "\n";
  out << "# TYPE shareledger_group_commits_total counter\nshareledger_group_commits_total " << st.groups << "\n";
  out << "# TYPE shareledger_write_failures_total counter\nshareledger_write_failures_total " << st.failures << "\n";
  out << "# TYPE shareledger_group_commit_size histogram\n";
  std::uint64_t cumulative = 0;
  for (int i = 0; i < 8; ++i) {
    cumulative += st.group_size_hist[i];
    std::string le = i == 7 ? "+Inf" : std::to_string((1u << (i + 1)) - 1);
    out << "shareledger_group_commit_size_bucket{le=\"" << le << "\"} " << cumulative << "\n";
  }
  out << "shareledger_group_commit_size_count " << st.groups << "\n";
  out << "shareledger_group_commit_size_sum " << st.jobs << "\n";
  out << "# TYPE shareledger_fsync_seconds summary\n";
  out << "shareledger_fsync_seconds_sum " << st.sync_micros_total / 1e6 << "\n";
  out << "shareledger_fsync_seconds_count " << st.groups << "\n";
  out << "# TYPE shareledger_fsync_seconds_max gauge\nshareledger_fsync_seconds_max " << st.sync_micros_max / 1e6 << "\n";
  out << "# TYPE shareledger_feed_subscribers gauge\nshareledger_feed_subscribers " << feed_subscribers << "\n";
  out << "# TYPE shareledger_feed_lag_events gauge\nshareledger_feed_lag_events " << feed_lag_events << "\n";
  out << "# TYPE shareledger_feed_lag_events_sum gauge\nshareledger_feed_lag_events_sum " << feed_lag_events_sum << "\n";
  out << "# TYPE shareledger_feed_demoted_subscribers gauge\nshareledger_feed_demoted_subscribers "
      << feed_demoted_subscribers << "\n";
  out << "# TYPE shareledger_feed_demotions_total counter\nshareledger_feed_demotions_total " << feed_demotions_total
      << "\n";
  out << "# TYPE shareledger_request_seconds histogram\n";
  std::lock_guard lock(mu_);
  for (const auto& [action, s] : by_action_) {
    std::uint64_t acc = 0;
    for (int i = 0; i < 8; ++i) {
      acc += s.buckets[i];
      std::string le = i == 7 ? "+Inf" : std::to_string(kBucketMillis[i] / 1000.0);
      out << "shareledger_request_seconds_bucket{action=\"" << action << "\",le=\"" << le << "\"} " << acc << "\n";
    }
    out << "shareledger_request_seconds_sum{action=\"" << action << "\"} " << s.micros_total / 1e6 << "\n";
    out << "shareledger_request_seconds_count{action=\"" << action << "\"} " << s.count << "\n";
    out << "shareledger_request_errors_total{action=\"" << action << "\"} " << s.errors << "\n";
  }
  return out.str();
}

Service::Service(Ledger& ledger, ServiceOptions options)
    : ledger_(ledger), options_(std::move(options)), verifier_(ledger.store()) {}

void Service::handle(Request&& req, const PeerInfo&, Responder respond) {
  auto call = std::make_shared<Call>();
  call->started = std::chrono::steady_clock::now();
  call->request_id = new_request_id();
  call->respond = std::move(respond);
  std::string_view target = req.target();
  std::string_view path = target.substr(0, target.find('?'));
  call->req = std::move(req);
  try {
    if (path == "/healthz") {
      call->action = "healthz";
      return reply(*call, 200, Json{{"status", "ok"}, {"seq", ledger_.head().seq}});
    }
    if (path == "/metrics") {
      call->action = "metrics";
      Response res{http::status::ok, call->req.version()};
      res.set(http::field::content_type, "text/plain; version=0.0.4");
      res.body() = metrics_.render(ledger_);
      res.keep_alive(call->req.keep_alive());
      res.prepare_payload();
      return call->respond(std::move(res));
    }
    if (is_console_path(path)) {
      call->action = "console";
      return call->respond(console_response(call->req, call->request_id));
    }
    if (path.starts_with("/v1/")) return handle_native(call);
    return handle_rpc(call);
  } catch (const std::exception& e) {
    // Rows are our own JSON; a parse failure here is a bug, not bad input.
    reply_error(*call, make_error(500, "InternalError", e.what()), !path.starts_with("/v1/"));
  }
}

Status Service::authenticate_call(Call& call, bool allow_admin) {
  std::string_view authorization = call.req[http::field::authorization];
  if (authorization.starts_with("Bearer ")) {
    if (allow_admin && !options_.admin_token.empty() &&
        constant_time_equal(authorization.substr(7), options_.admin_token)) {
      call.admin = true;
      return Ok{};
    }
    return make_error(401, "InvalidToken", "The bearer token is not valid.");
  }
  std::string_view target = call.req.target();
  std::size_t q = target.find('?');
  HttpRequestView view;
  view.method = call.req.method_string();
  view.path = target.substr(0, q);
  view.raw_query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  view.body = call.req.body();
  const Request& req = call.req;
  view.headers = [&req](std::string_view name) {
    std::vector<std::string_view> values;
    for (const auto& field : req) {
      if (lower(field.name_string()) == name) values.push_back(field.value());
    }
    return values;
  };
  auto info = identify_auth(view, call.params);
  if (!info) return info.error();
  auto credentials = ledger_.credentials(info->access_key_id);
  if (!credentials) {
    return make_error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.");
  }
  if (auto s = authenticate(view, call.params, *info, credentials->second, Clock::now(), nonces_); !s) return s;
  call.caller = credentials->first;
  call.access_key_id = info->access_key_id;
  return Ok{};
}

void Service::handle_rpc(std::shared_ptr<Call> call) {
  std::string_view target = call->req.target();
  std::size_t q = target.find('?');
  std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  std::string_view content_type = call->req[http::field::content_type];
  std::string_view form = content_type.starts_with("application/x-www-form-urlencoded")
                              ? std::string_view(call->req.body())
                              : std::string_view();
  auto params = parse_params(query, form);
  if (!params) return reply_error(*call, params.error(), true);
  call->params = std::move(*params);
  // v1 requests carry the signed Action/Version parameters (the SDK also sends
  // unsigned x-acs-* headers then); ACS3 requests carry only the signed headers.
  std::string action, version;
  if (const std::string* a = call->params.get("Action")) {
    const std::string* v = call->params.get("Version");
    action = *a;
    version = v ? *v : "";
  } else {
    action = call->req["x-acs-action"];
    version = call->req["x-acs-version"];
  }
  call->action = action.empty() ? "unknown" : action;
  if (auto s = authenticate_call(*call, false); !s) return reply_error(*call, s.error(), true);
  if (action.empty()) return reply_error(*call, make_error(400, "MissingParameter", "The input parameter \"Action\" that is mandatory for processing this request is not supplied."), true);
  dispatch_rpc(*this, call, action, version);
}

void Service::handle_native(std::shared_ptr<Call> call) {
  std::string_view target = call->req.target();
  std::size_t q = target.find('?');
  auto params = parse_params(q == std::string_view::npos ? std::string_view() : target.substr(q + 1));
  if (!params) return reply_error(*call, params.error(), false);
  call->params = std::move(*params);
  if (auto s = authenticate_call(*call, true); !s) return reply_error(*call, s.error(), false);
  dispatch_native(*this, call);
}

void Service::submit(std::shared_ptr<Call> call, Command command, bool ecs,
                     std::function<Json(const Commit&)> format) {
  CommandContext context{{call->caller, call->access_key_id}, call->request_id, ""};
  if (std::holds_alternative<RegisterAccount>(command)) context.access_key_secret = call->secret_to_store;
  ledger_.submit(std::move(command), std::move(context),
                 [this, call, ecs, format = std::move(format)](Result<Commit> result) {
                   if (!result) {
                     Error e = result.error();
                     return reply_error(*call, e, ecs);
                   }
                   schedule_image_builds(*result);
                   reply(*call, 200, format(*result), result->seq, static_cast<int>(result->events.size()));
                 });
}

void Service::reply(Call& call, int status, const Json& body, std::uint64_t seq, int appended) {
  Response res{static_cast<http::status>(status), call.req.version()};
  res.set(http::field::content_type, "application/json;charset=utf-8");
  res.set("x-acs-request-id", call.request_id);
  if (seq) res.set("x-shareledger-seq", std::to_string(seq));
  if (appended >= 0) res.set("x-shareledger-appended", std::to_string(appended));
  res.keep_alive(call.req.keep_alive());
  res.body() = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  res.prepare_payload();
  metrics_.observe(call.action, status,
                   std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - call.started));
  call.respond(std::move(res));
}

void Service::reply_error(Call& call, const Error& error, bool ecs) {
  Json body = ecs ? Json{{"RequestId", call.request_id}, {"HostId", "shareledger"}, {"Code", error.code},
                         {"Message", error.message}, {"Recommend", ""}}
                  : Json{{"code", error.code}, {"message", error.message}, {"request_id", call.request_id}};
  bool is_write = call.req.method() == http::verb::post;
  reply(call, error.http, body, is_write ? ledger_.head().seq : 0);
}

void Service::schedule_image_builds(const Commit& commit) {
  if (!schedule_) return;
  for (const Event& e : commit.events) {
    const auto* created = std::get_if<ImageCreated>(&e.data);
    if (!created || created->status != "Creating") continue;
    std::string image_id = created->image_id;
    schedule_(options_.image_build, [this, image_id] {
      ledger_.submit(MarkImageAvailable{image_id}, CommandContext{{}, "image-build", ""}, [](Result<Commit>) {});
    });
  }
}

}  // namespace sl::api
