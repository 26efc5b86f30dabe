#include "api/verify_route.h"

#include <nlohmann/json.hpp>

#include "api/service.h"
#include "projections/replay.h"

namespace sl::api {

namespace {

using Json = nlohmann::json;

std::string ndjson_line(const Json& j) {
  std::string line = j.dump();
  line += '\n';
  return line;
}

// One /v1/verify answer, used on the verifier's thread. Its 200 header goes
// out with the first line: the stream can only start once the verifier has
// accepted the scan (until then the answer may still be a 409), and the
// first line comes from the verifier's thread.
class VerifyAnswer {
 public:
  VerifyAnswer(Service& service, std::shared_ptr<Call> call, std::uint64_t head)
      : service_(service), call_(std::move(call)), head_(head) {}

  // false: the client is gone.
  bool progress(std::string_view line) {
    const bool sent = stream().write(line);
    observe(line);
    return sent;
  }

  void finish(std::string_view last) {
    stream().finish(last);
    service_.metrics().observe(call_->action, 200, std::chrono::duration_cast<std::chrono::microseconds>(
                                                       std::chrono::steady_clock::now() - call_->started));
    observe(last);
  }

 private:
  ResponseStream& stream() {
    if (!out_) {
      Response head{http::status::ok, call_->req.version()};
      head.set(http::field::content_type, "application/x-ndjson");
      head.set(http::field::cache_control, "no-store");
      head.set("x-acs-request-id", call_->request_id);
      head.set("x-shareledger-seq", std::to_string(head_));
      out_ = ResponseStream::start(call_->respond, std::move(head));
    }
    return *out_;
  }

  void observe(std::string_view line) const {
    if (service_.options().verify_observer) service_.options().verify_observer(line);
  }

  Service& service_;
  std::shared_ptr<Call> call_;
  std::uint64_t head_;
  std::unique_ptr<ResponseStream> out_;
};

}  // namespace

std::string verify_log(const Store& store, std::uint64_t to_seq, std::uint64_t progress_every,
                       const std::atomic<bool>& cancel,
                       const std::function<bool(std::string_view line)>& progress) {
  bool stopping = false;     // *cancel
  bool reader_gone = false;  // `progress` returned false
  ScanOptions options;
  options.to_seq = to_seq;
  options.progress_every = progress_every;
  options.progress = [&](std::uint64_t seq) {
    if (!reader_gone && !progress(ndjson_line({{"checked", seq}, {"head", to_seq}}))) reader_gone = true;
  };
  const ChainCheck check = check_chain(store, options, [&] {
    if (cancel.load(std::memory_order_relaxed)) stopping = true;
    return !stopping && !reader_gone;
  });
  const auto problem = [&](const std::string& what) {
    return ndjson_line({{"ok", false}, {"checked", check.checked}, {"seq", check.checked + 1}, {"problem", what}});
  };
  if (check.problem) return problem(check.problem->message);
  if (stopping) return problem("cancelled: the server is stopping");
  if (reader_gone) return problem("cancelled: the client went away");
  return ndjson_line({{"ok", true}, {"checked", check.checked}, {"head_seq", to_seq}, {"head_hash", check.head_hash}});
}

ChainVerifier::~ChainVerifier() {
  cancel_ = true;
  std::thread running;
  {
    std::lock_guard lock(mu_);
    running = std::move(thread_);
  }
  if (running.joinable()) running.join();  // outside mu_: the scan takes it to free the verifier
}

Status ChainVerifier::start(std::uint64_t to_seq, std::uint64_t progress_every,
                            std::function<bool(std::string_view line)> progress,
                            std::function<void(std::string last)> done) {
  std::lock_guard lock(mu_);
  if (running_) return make_error(409, "VerifyInProgress", "A chain verification is already running; retry when it ends.");
  if (thread_.joinable()) thread_.join();  // finished: it cleared running_, then ran a short `done`
  running_ = true;
  thread_ = std::thread([this, to_seq, progress_every, progress = std::move(progress), done = std::move(done)] {
    std::string last = verify_log(store_, to_seq, progress_every, cancel_, progress);
    {
      std::lock_guard lock(mu_);
      running_ = false;
    }
    // Only now: a client that has read the last line may start the next scan
    // at once.
    done(std::move(last));
  });
  return Ok{};
}

void get_verify(Service& service, std::shared_ptr<Call> call) {
  if (!call->admin) return service.reply_error(*call, make_error(403, "Forbidden", "Admin token required."), false);
  call->action = "verify";
  const std::uint64_t head = service.ledger().head().seq;
  auto answer = std::make_shared<VerifyAnswer>(service, call, head);
  Status started = service.verifier().start(
      head, service.options().verify_progress_every,
      [answer](std::string_view line) { return answer->progress(line); },
      [answer](std::string last) { answer->finish(last); });
  if (!started) service.reply_error(*call, started.error(), false);
}

}  // namespace sl::api
