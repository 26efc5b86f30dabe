// Request authentication for the ECS-compatible RPC API and the native API
// (SPEC.md §3.1, §3.2): the two Alibaba Cloud signature schemes, the
// timestamp window and the replay (nonce) cache. Pure functions over a view
// of the request: no sockets, no global state. docs/SDK_NOTES.md says what
// the official SDK puts on the wire for each scheme.
//
// How the HTTP layer uses it, for one request:
//   auto params = parse_params(raw_query, form_body);         // api/params.h
//   auto info   = identify_auth(req, *params);                // which scheme, which key
//   secret      = <look up info->access_key_id>               // unknown: 404 InvalidAccessKeyId.NotFound
//   Status s    = authenticate(req, *params, *info, secret, now, nonces);
//
// Error codes (all HTTP 400; chosen to match what Alibaba Cloud's gateway
// returns, as seen in real responses quoted by SDK issue trackers):
//   MissingSignature       no Authorization header and no Signature parameter,
//                          or an empty signature
//   MissingAccessKeyId     v1 without AccessKeyId, ACS3 with an empty Credential
//   MissingTimestamp       v1 without Timestamp, ACS3 without x-acs-date
//   MissingParameter       another required field is absent (SignatureNonce,
//                          SignatureMethod, SignatureVersion,
//                          x-acs-signature-nonce, x-acs-content-sha256);
//                          the message names it
//   IncompleteSignature    the signature fields are present but malformed or
//                          unsupported (unknown algorithm, a required header
//                          not listed in SignedHeaders, both schemes at once,
//                          a duplicated auth header)
//   InvalidTimeStamp.Format    the timestamp is not yyyy-MM-ddTHH:mm:ssZ
//   InvalidTimeStamp.Expired   more than kMaxClockSkew from the server clock
//   SignatureDoesNotMatch  wrong signature, or x-acs-content-sha256 is not the
//                          SHA-256 of the body. The message never includes the
//                          server's string to sign (the real service does;
//                          it would help an attacker probe canonicalisation).
//   SignatureNonceUsed     the (AccessKeyId, nonce) pair was seen within the
//                          retention window
//   InvalidParameter       nonce too long; malformed query (from parse_params)
//   Throttling.User        one AccessKeyId holds too many live nonces
//   503 ServiceUnavailable the nonce cache is full (see NonceCache)
//
// Thread safety: everything here is a pure function except NonceCache,
// which is internally synchronised.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "api/params.h"
#include "events/result.h"

namespace sl::api {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;

// Requests whose timestamp is further than this from the server clock, in
// either direction, are rejected (Alibaba Cloud uses the same 15 minutes).
inline constexpr std::chrono::seconds kMaxClockSkew = std::chrono::minutes(15);

// Longest accepted SignatureNonce / x-acs-signature-nonce (the SDK sends 64
// hex characters). Bounds NonceCache memory.
inline constexpr std::size_t kMaxNonceBytes = 256;

// ---------------------------------------------------------------------------
// Building blocks.

// Percent-encodes every byte except A-Z a-z 0-9 - _ . ~ with uppercase hex
// ("a b*" -> "a%20b%2A"). This is the encoding both schemes sign with.
std::string percent_encode_rfc3986(std::string_view s);

// Lowercase hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

// Lowercase hex HMAC-SHA256(key, data).
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

// Standard (padded) base64 of HMAC-SHA1(key, data).
std::string hmac_sha1_base64(std::string_view key, std::string_view data);

// a == b in a time that depends on their lengths only: for secrets and MACs.
bool constant_time_equal(std::string_view a, std::string_view b);

// ---------------------------------------------------------------------------
// The request, as the HTTP layer received it.

// Returns every value of the header `lowercase_name`, in arrival order, as
// sent (untrimmed); empty when absent. The views must stay valid while the
// HttpRequestView is in use.
using HeaderLookup = std::function<std::vector<std::string_view>(std::string_view lowercase_name)>;

// (name, value) pairs; names in any case.
using HeaderList = std::vector<std::pair<std::string, std::string>>;

// A HeaderLookup over `headers` (names compared case-insensitively).
// REQUIRES: `headers` outlives the returned function.
HeaderLookup lookup_in(const HeaderList& headers);

struct HttpRequestView {
  std::string_view method;     // as sent, e.g. "POST"
  std::string_view path;       // request target before "?", as sent (not decoded)
  std::string_view raw_query;  // request target after "?", as sent; "" if none
  HeaderLookup headers;        // REQUIRED (never empty)
  std::string_view body;       // raw body bytes ("" if none)
};

enum class AuthScheme {
  kAcs3HmacSha256,  // Authorization: ACS3-HMAC-SHA256 ... (current SDKs)
  kHmacSha1V1,      // Signature=... parameter, SignatureVersion=1.0 (CLI, SDK 'v2' mode)
};

// What identify_auth() extracted; input to authenticate().
struct AuthInfo {
  AuthScheme scheme = AuthScheme::kAcs3HmacSha256;
  std::string access_key_id;
  std::string timestamp;  // v1 Timestamp parameter / ACS3 x-acs-date, as sent
  std::string nonce;      // v1 SignatureNonce / ACS3 x-acs-signature-nonce
  std::string signature;  // ACS3: hex from Authorization; v1: decoded Signature (base64)
  std::vector<std::string> signed_headers;  // ACS3 only, in SignedHeaders order
};

// Tells which scheme `req` uses and extracts its fields, so the caller can
// look up the secret of info.access_key_id. `params` is parse_params() of
// the query and form body. Checks structure only, no cryptography.
// ACS3 requires these headers to be listed in SignedHeaders: host,
// x-acs-date, x-acs-signature-nonce, x-acs-content-sha256; x-acs-action and
// x-acs-version when present; content-type when present with a non-empty
// body. (The SDK signs every x-acs-* header, host and content-type.)
// OK: the AuthInfo. Errors: MissingSignature, MissingAccessKeyId,
// MissingTimestamp, MissingParameter, IncompleteSignature (see top).
// An "Authorization: Bearer" request is not for this function: the caller
// handles admin tokens first (it is reported as IncompleteSignature).
Result<AuthInfo> identify_auth(const HttpRequestView& req, const Params& params);

// ---------------------------------------------------------------------------
// Canonical forms (exposed for tests and diagnostics).

// The ACS3 canonical URI of a raw request path, transformed exactly as the
// SDK transforms its pathname: "+" -> "%20", "*" -> "%2A", "%7E" -> "~".
std::string canonical_uri(std::string_view raw_path);

// "k1=v1&k2=v2..." over the decoded `params`, each key and value
// re-encoded with percent_encode_rfc3986, sorted bytewise by encoded key
// then encoded value (AddAccount.1 < AddAccount.10 < AddAccount.2).
// The pair whose key equals `exclude_key` (if non-empty) is left out.
std::string canonical_query(const Params& params, std::string_view exclude_key = {});

// The ACS3 canonical request:
//   METHOD \n canonical_uri \n canonical_query(raw_query) \n
//   name:value\n per signed header \n signed;headers \n x-acs-content-sha256
// A signed header with several values is trimmed per value, sorted and
// joined with ","; an absent one is "name:".
// Errors: InvalidParameter (raw_query does not parse).
Result<std::string> acs3_canonical_request(const HttpRequestView& req, const AuthInfo& info);

// "ACS3-HMAC-SHA256\n" + sha256_hex(canonical_request).
std::string acs3_string_to_sign(std::string_view canonical_request);

// METHOD & %2F & percent_encode(canonical_query(params without Signature)).
std::string v1_string_to_sign(std::string_view method, const Params& params);

// ---------------------------------------------------------------------------
// Verification.

// OK: the x-acs-content-sha256 header is the SHA-256 of req.body and the
// Authorization signature is HMAC-SHA256(secret, string to sign).
// Errors: SignatureDoesNotMatch, InvalidParameter (query does not parse).
// REQUIRES: info came from identify_auth(req, ...) with scheme kAcs3HmacSha256.
Status verify_acs3_signature(const HttpRequestView& req, const AuthInfo& info,
                             std::string_view secret);

// OK: info.signature == base64(HMAC-SHA1(secret + "&", v1_string_to_sign)).
// Errors: SignatureDoesNotMatch.
// REQUIRES: info came from identify_auth(..., params) with scheme kHmacSha1V1.
Status verify_v1_signature(std::string_view method, const Params& params, const AuthInfo& info,
                           std::string_view secret);

// Parses "yyyy-MM-ddTHH:mm:ssZ" (UTC, exactly that shape).
// Errors: InvalidTimeStamp.Format.
Result<TimePoint> parse_timestamp(std::string_view iso8601_utc);

// OK: `iso8601_utc` parses and is within kMaxClockSkew of `now` (inclusive).
// Errors: InvalidTimeStamp.Format, InvalidTimeStamp.Expired.
Status check_timestamp(std::string_view iso8601_utc, TimePoint now);

// ---------------------------------------------------------------------------
// Replay protection.

// Remembers (AccessKeyId, nonce) pairs for a retention window. Thread-safe.
//
// Retention defaults to 2 * kMaxClockSkew (30 min), not 15: a request signed
// at T passes the timestamp check until T + 15 min, and may arrive as early
// as T - 15 min by the server clock, so a nonce first seen at server time N
// must be kept until N + 30 min for a replay to be impossible. A replay after
// that fails the timestamp check instead.
//
// Memory is bounded: expired entries are evicted on every call (oldest
// first), and there is a hard cap on live entries, in total and per key.
// Policy when a cap is hit: refuse the NEW request (Throttling.User for the
// per-key cap, 503 ServiceUnavailable for the total cap) rather than forget a
// live nonce, which would silently let a replay through. A reused nonce is
// reported as SignatureNonceUsed even when the cache is full.
class NonceCache {
 public:
  struct Options {
    std::chrono::seconds retention = 2 * kMaxClockSkew;
    std::size_t max_entries = 1'000'000;          // ~180 MB at the cap
    std::size_t max_entries_per_key = 250'000;    // ~140 requests/s for 30 min
  };

  NonceCache() : NonceCache(Options{}) {}
  explicit NonceCache(Options options);
  NonceCache(const NonceCache&) = delete;
  NonceCache& operator=(const NonceCache&) = delete;

  // OK: the pair was not live; it is now remembered until now + retention.
  // 400 SignatureNonceUsed: the pair was remembered within the window.
  // 400 InvalidParameter: nonce empty or longer than kMaxNonceBytes.
  // 400 Throttling.User / 503 ServiceUnavailable: a cap is hit (see above).
  // REQUIRES: access_key and nonce contain no NUL byte.
  Status check_and_remember(std::string_view access_key, std::string_view nonce, TimePoint now);

  // Live entries (after the last eviction).
  std::size_t size() const;

 private:
  struct Entry {
    TimePoint seen;
    const std::string* key;  // points into seen_ (node-based, stable)
    std::size_t key_len;     // length of the AccessKeyId prefix of *key
  };

  void evict_expired(TimePoint now);  // REQUIRES: mu_ held

  const Options options_;
  mutable std::mutex mu_;
  std::unordered_set<std::string> seen_;                   // GUARDED_BY(mu_); "ak\0nonce"
  std::deque<Entry> order_;                                // GUARDED_BY(mu_); insertion order
  std::unordered_map<std::string, std::size_t> per_key_;  // GUARDED_BY(mu_); live count per ak
};

// ---------------------------------------------------------------------------
// All of it, in order: timestamp window, nonce length, signature, then the
// nonce is remembered (only for correctly signed requests, so that unsigned
// traffic cannot burn other clients' nonces).
// OK: the request is authentic, fresh and not a replay.
// Errors: any of the codes listed at the top except the Missing* ones.
Status authenticate(const HttpRequestView& req, const Params& params, const AuthInfo& info,
                    std::string_view secret, TimePoint now, NonceCache& nonces);

}  // namespace sl::api
