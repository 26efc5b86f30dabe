// GET /v1/verify: chain verification of the whole log over the native API
// (admin only), for the console's audit view and for monitoring.
//
// The answer is NDJSON (application/x-ndjson), one object a line:
//   {"checked":N,"head":H}                                   progress, every kVerifyProgressEvery events
//   {"ok":true,"checked":H,"head_seq":H,"head_hash":"<hex>"}  last line: events 1..H verified
//   {"ok":false,"checked":N,"seq":S,"problem":"<what>"}       last line: events 1..N verified, S is bad
// H is the head when the request arrived; events appended meanwhile are not
// checked. The checks are scan_verified()'s (dense seqs, hash chain, schema).
// Each line is sent as the scan produces it (a chunked answer, whose header
// goes out with the first line); a client that leaves mid-way cancels the
// scan, within progress_every events.
//
// Thread safety: ChainVerifier is internally synchronised.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "events/result.h"
#include "storage/store.h"

namespace sl::api {

inline constexpr std::uint64_t kVerifyProgressEvery = 10000;

// Verifies events 1..to_seq of `store`, handing each progress line (with its
// '\n') to `progress` as the scan reaches it, and returns the last line (the
// "ok" one, with its '\n'). Stops early, with a "cancelled" problem, when
// *cancel becomes true or `progress` returns false (its reader is gone).
std::string verify_log(const Store& store, std::uint64_t to_seq, std::uint64_t progress_every,
                       const std::atomic<bool>& cancel,
                       const std::function<bool(std::string_view line)>& progress);

// Runs verify_log() on a thread of its own, one scan at a time, so that a long
// scan never holds an io thread.
class ChainVerifier {
 public:
  // REQUIRES: `store` outlives the verifier.
  explicit ChainVerifier(const Store& store) : store_(store) {}
  // Cancels a running scan (it stops at its next event) and joins it; its
  // `done` still runs, with the cancelled line.
  ~ChainVerifier();
  ChainVerifier(const ChainVerifier&) = delete;
  ChainVerifier& operator=(const ChainVerifier&) = delete;

  // OK: the scan of 1..to_seq started on the verifier's thread, which hands
  // `progress` each progress line (see verify_log). Then the verifier is
  // free for the next start(), and `done` gets the last line on the same
  // thread; `done` must not block (the next start() joins the thread).
  // 409 VerifyInProgress: a scan is running, nothing started.
  Status start(std::uint64_t to_seq, std::uint64_t progress_every,
               std::function<bool(std::string_view line)> progress,
               std::function<void(std::string last)> done);

 private:
  const Store& store_;
  std::atomic<bool> cancel_{false};
  std::mutex mu_;
  std::thread thread_;   // GUARDED_BY(mu_); joined before the next start
  bool running_ = false;  // GUARDED_BY(mu_)
};

class Service;
struct Call;

// The route: 403 Forbidden unless the caller is the admin; 409
// VerifyInProgress while another verification runs; else 200 and the lines,
// every ServiceOptions::verify_progress_every events.
void get_verify(Service& service, std::shared_ptr<Call> call);

}  // namespace sl::api
