// GET /v1/verify: chain verification of the whole log over the native API
// (admin only), for the console's audit view and for monitoring.
//
// The answer is NDJSON (application/x-ndjson), one object a line:
//   {"checked":N,"head":H}                                   progress, every kVerifyProgressEvery events
//   {"ok":true,"checked":H,"head_seq":H,"head_hash":"<hex>"}  last line: events 1..H verified
//   {"ok":false,"checked":N,"seq":S,"problem":"<what>"}       last line: events 1..N verified, S is bad
// H is the head when the request arrived; events appended meanwhile are not
// checked. The checks are scan_verified()'s (dense seqs, hash chain, schema).
// The HTTP server sends whole responses, so the progress lines arrive with
// the last one; the line format lets a client read them as a stream once the
// server can send chunked answers.
//
// Thread safety: ChainVerifier is internally synchronised.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "events/result.h"
#include "storage/store.h"

namespace sl::api {

inline constexpr std::uint64_t kVerifyProgressEvery = 10000;

// Verifies events 1..to_seq of `store` and returns the NDJSON body described
// above (it always ends with an "ok" line). Stops early, with a "cancelled"
// problem, when *cancel becomes true.
std::string verify_log(const Store& store, std::uint64_t to_seq, std::uint64_t progress_every,
                       const std::atomic<bool>& cancel);

// Runs verify_log() on a thread of its own, one scan at a time, so that a long
// scan never holds an io thread.
class ChainVerifier {
 public:
  // REQUIRES: `store` outlives the verifier.
  explicit ChainVerifier(const Store& store) : store_(store) {}
  // Cancels a running scan (it stops at its next event) and joins it; its
  // callback still runs, with the cancelled body.
  ~ChainVerifier();
  ChainVerifier(const ChainVerifier&) = delete;
  ChainVerifier& operator=(const ChainVerifier&) = delete;

  // OK: the scan of 1..to_seq started; `done` gets the body on the verifier's
  // thread. 409 VerifyInProgress: a scan is running, nothing started.
  Status start(std::uint64_t to_seq, std::function<void(std::string body)> done);

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
// VerifyInProgress while another verification runs; else 200 and the body.
void get_verify(Service& service, std::shared_ptr<Call> call);

}  // namespace sl::api
