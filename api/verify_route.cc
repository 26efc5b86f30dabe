#include "api/verify_route.h"

#include <nlohmann/json.hpp>

#include "api/service.h"
#include "projections/replay.h"

namespace sl::api {

std::string verify_log(const Store& store, std::uint64_t to_seq, std::uint64_t progress_every,
                       const std::atomic<bool>& cancel) {
  using Json = nlohmann::json;
  std::string body;
  auto line = [&body](const Json& j) {
    body += j.dump();
    body += '\n';
  };
  std::uint64_t checked = 0;
  std::string last_hash(kGenesisHash);
  bool cancelled = false;
  ScanOptions options;
  options.to_seq = to_seq;
  options.progress_every = progress_every;
  options.progress = [&](std::uint64_t seq) { line({{"checked", seq}, {"head", to_seq}}); };
  // scan_verified calls back only for events that passed every check, so the
  // first bad event is the one after the last visited.
  Status status = scan_verified(store, options, [&](const Event& e, std::string_view) {
    if (cancel.load(std::memory_order_relaxed)) {
      cancelled = true;
      return false;
    }
    checked = e.seq;
    last_hash = e.hash;
    return true;
  });
  if (!status) {
    line({{"ok", false}, {"checked", checked}, {"seq", checked + 1}, {"problem", status.error().message}});
  } else if (cancelled) {
    line({{"ok", false}, {"checked", checked}, {"seq", checked + 1}, {"problem", "cancelled: the server is stopping"}});
  } else if (checked != to_seq) {
    line({{"ok", false}, {"checked", checked}, {"seq", checked + 1},
          {"problem", "missing: the log ends at seq " + std::to_string(checked) + " before the head " +
                          std::to_string(to_seq)}});
  } else {
    line({{"ok", true}, {"checked", checked}, {"head_seq", to_seq}, {"head_hash", last_hash}});
  }
  return body;
}

ChainVerifier::~ChainVerifier() {
  cancel_ = true;
  std::thread running;
  {
    std::lock_guard lock(mu_);
    running = std::move(thread_);
  }
  if (running.joinable()) running.join();  // outside mu_: the scan takes it as its last step
}

Status ChainVerifier::start(std::uint64_t to_seq, std::function<void(std::string body)> done) {
  std::lock_guard lock(mu_);
  if (running_) return make_error(409, "VerifyInProgress", "A chain verification is already running; retry when it ends.");
  if (thread_.joinable()) thread_.join();  // finished: it cleared running_ as its last step
  running_ = true;
  thread_ = std::thread([this, to_seq, done = std::move(done)] {
    done(verify_log(store_, to_seq, kVerifyProgressEvery, cancel_));
    std::lock_guard lock(mu_);
    running_ = false;
  });
  return Ok{};
}

void get_verify(Service& service, std::shared_ptr<Call> call) {
  if (!call->admin) return service.reply_error(*call, make_error(403, "Forbidden", "Admin token required."), false);
  call->action = "verify";
  const std::uint64_t head = service.ledger().head().seq;
  Status started = service.verifier().start(head, [&service, call, head](std::string body) {
    Response res{http::status::ok, call->req.version()};
    res.set(http::field::content_type, "application/x-ndjson");
    res.set(http::field::cache_control, "no-store");
    res.set("x-acs-request-id", call->request_id);
    res.set("x-shareledger-seq", std::to_string(head));
    res.keep_alive(call->req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    service.metrics().observe(call->action, 200, std::chrono::duration_cast<std::chrono::microseconds>(
                                                     std::chrono::steady_clock::now() - call->started));
    call->respond(std::move(res));
  });
  if (!started) service.reply_error(*call, started.error(), false);
}

}  // namespace sl::api
