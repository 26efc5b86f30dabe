// Service: the HTTP request handler behind every route (SPEC §3.1, §3.2).
//
//   "/"  (and any path carrying x-acs-action or Action)  -> ECS-compatible RPC
//   "/v1/..."                                            -> native JSON API
//   "/healthz", "/metrics"
//   "/console", "/console/..."                        -> the web console's static files
//
// handle() runs on an io thread and never blocks on the disk sync: reads are
// RocksDB lookups done in place; writes are handed to the Ledger and answered
// from its callback once durable (the server posts the answer to the session).
// Thread safety: handle() may run concurrently on all io threads.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "api/http_server.h"
#include "api/params.h"
#include "api/signature.h"
#include "api/verify_route.h"
#include "projections/ledger.h"
#include "projections/queries.h"

namespace sl::api {

struct ServiceOptions {
  std::string admin_token;                     // Bearer token for the native admin routes
  std::chrono::milliseconds image_build{0};    // time a new image stays Creating
  std::uint64_t verify_progress_every = kVerifyProgressEvery;  // events between /v1/verify progress lines
  // Tests: sees each /v1/verify line on the verifier's thread once it is
  // queued for the client; a progress line before the scan goes on (it may
  // block, holding the scan there), the last line once the verifier is free
  // again (it must not block).
  std::function<void(std::string_view line)> verify_observer = nullptr;
};

// Request counters and latency by action, for /metrics.
class Metrics {
 public:
  void observe(const std::string& action, int status, std::chrono::microseconds latency);
  std::string render(const Ledger& ledger) const;
  std::atomic<std::int64_t> feed_subscribers{0};
  std::atomic<std::int64_t> feed_lag_events{0};           // max over subscribers: head - position
  std::atomic<std::int64_t> feed_lag_events_sum{0};       // sum over subscribers
  std::atomic<std::int64_t> feed_demoted_subscribers{0};  // now > the live window behind: served as catch-up
  std::atomic<std::int64_t> feed_demotions_total{0};

 private:
  struct Series {
    std::uint64_t count = 0, errors = 0, micros_total = 0;
    std::uint64_t buckets[8] = {};  // <=0.5,1,2,5,10,50,250 ms, +Inf
  };
  mutable std::mutex mu_;
  std::map<std::string, Series> by_action_;  // guarded by mu_
};

// One request in flight: what every route needs to answer it.
struct Call {
  Request req;
  Params params;
  std::string request_id;
  std::string caller;         // authenticated account id; empty for the admin
  std::string access_key_id;  // the key that signed the request
  std::string secret_to_store;  // admin account creation: stored beside the new key
  bool admin = false;
  std::string action;  // for metrics
  std::chrono::steady_clock::time_point started;
  Responder respond;
};

class Service {
 public:
  Service(Ledger& ledger, ServiceOptions options);

  void handle(Request&& req, const PeerInfo& peer, Responder respond);

  // How to run something later on the server's threads (image build timers).
  void set_scheduler(std::function<void(std::chrono::milliseconds, std::function<void()>)> schedule) {
    schedule_ = std::move(schedule);
  }

  Ledger& ledger() { return ledger_; }
  Metrics& metrics() { return metrics_; }
  ChainVerifier& verifier() { return verifier_; }
  const ServiceOptions& options() const { return options_; }

  // Authenticates an ACS3/v1-signed request (or a Bearer admin token when
  // allow_admin). OK: fills call.caller / call.admin.
  Status authenticate_call(Call& call, bool allow_admin);

  // Submits a write; `format` turns the commit into the JSON body. Answers with
  // x-shareledger-seq, or the error in the route's error shape.
  void submit(std::shared_ptr<Call> call, Command command, bool ecs,
              std::function<Json(const Commit&)> format);

  // Answer helpers. ECS errors: {RequestId, HostId, Code, Message, Recommend};
  // native errors: {code, message, request_id}.
  // seq > 0 sets x-shareledger-seq; appended >= 0 sets x-shareledger-appended
  // (how many events the write appended: 0 for a no-op).
  void reply(Call& call, int status, const Json& body, std::uint64_t seq = 0, int appended = -1);
  void reply_error(Call& call, const Error& error, bool ecs);

  // Schedules ImageBecameAvailable for images created in the Creating state.
  void schedule_image_builds(const Commit& commit);

 private:
  void handle_rpc(std::shared_ptr<Call> call);
  void handle_native(std::shared_ptr<Call> call);

  Ledger& ledger_;
  ServiceOptions options_;
  NonceCache nonces_;
  Metrics metrics_;
  std::function<void(std::chrono::milliseconds, std::function<void()>)> schedule_;
  ChainVerifier verifier_;  // last: its destructor joins a running scan first
};

// Route tables (api/ecs_api.cc, api/native_api.cc).
void dispatch_rpc(Service& service, std::shared_ptr<Call> call, const std::string& action,
                  const std::string& version);
void dispatch_native(Service& service, std::shared_ptr<Call> call);

}  // namespace sl::api
