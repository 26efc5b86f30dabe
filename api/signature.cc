#include "api/signature.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <optional>
#include <unordered_set>

namespace sl::api {
namespace {

constexpr std::string_view kAcs3Algorithm = "ACS3-HMAC-SHA256";

// ---- small helpers ---------------------------------------------------------

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

// ASCII part of what JavaScript's String.prototype.trim() removes (the SDK
// trims header values with it).
std::string_view trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\n\v\f\r";
  std::size_t b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  std::size_t e = s.find_last_not_of(kSpace);
  return s.substr(b, e - b + 1);
}

std::string hex(const unsigned char* p, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(2 * n, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[p[i] >> 4];
    out[2 * i + 1] = kDigits[p[i] & 0x0F];
  }
  return out;
}

// Never a null pointer, even for an empty view (OpenSSL treats a null HMAC
// key specially).
const unsigned char* bytes(std::string_view s) {
  static constexpr unsigned char kEmpty[1] = {0};
  return s.empty() ? kEmpty : reinterpret_cast<const unsigned char*>(s.data());
}

std::string format_timestamp(TimePoint t) {
  using namespace std::chrono;
  const auto secs = floor<seconds>(t);
  const auto day = floor<days>(secs);
  const year_month_day ymd(day);
  const hh_mm_ss hms(secs - day);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

// ---- errors ----------------------------------------------------------------

Error missing(std::string code, std::string_view what) {
  return Error{400, std::move(code), std::string(what) + " is mandatory for this action."};
}

Error missing_parameter(std::string_view what) {
  return Error{400, "MissingParameter",
               "The input parameter \"" + std::string(what) +
                   "\" that is mandatory for processing this request is not supplied."};
}

Error incomplete(std::string_view detail) {
  return Error{400, "IncompleteSignature",
               "The request signature does not conform to Aliyun standards: " + std::string(detail)};
}

Error signature_mismatch() {
  return Error{400, "SignatureDoesNotMatch", "Specified signature does not match our calculation."};
}

// ---- header access ---------------------------------------------------------

// The single value of header `name`, trimmed; nullopt when absent.
Result<std::optional<std::string_view>> single_header(const HttpRequestView& req,
                                                      std::string_view name) {
  std::vector<std::string_view> values = req.headers(name);
  if (values.empty()) return std::optional<std::string_view>();
  if (values.size() > 1) return incomplete("header " + std::string(name) + " appears more than once");
  return std::optional<std::string_view>(trim(values.front()));
}

// ---- identify --------------------------------------------------------------

struct Acs3Authorization {
  std::string credential;
  std::vector<std::string> signed_headers;
  std::string signature;
};

// Parses "ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=a;b,Signature=hex".
// Spaces after the commas are tolerated.
Result<Acs3Authorization> parse_acs3_authorization(std::string_view value) {
  value = trim(value);
  const std::size_t sp = value.find(' ');
  const std::string_view algorithm = value.substr(0, sp);
  if (algorithm != kAcs3Algorithm) {
    return incomplete("unsupported Authorization scheme \"" +
                      std::string(algorithm.substr(0, 32)) +
                      "\"; use ACS3-HMAC-SHA256 or HMAC-SHA1 (SignatureVersion 1.0)");
  }
  std::string_view rest = sp == std::string_view::npos ? std::string_view() : value.substr(sp + 1);
  Acs3Authorization out;
  bool have_credential = false, have_signed = false, have_signature = false;
  while (!rest.empty()) {
    const std::size_t comma = rest.find(',');
    const std::string_view field = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (field.empty()) continue;
    const std::size_t eq = field.find('=');
    if (eq == std::string_view::npos) return incomplete("Authorization field without \"=\"");
    const std::string_view name = field.substr(0, eq);
    const std::string_view val = field.substr(eq + 1);
    bool* seen = nullptr;
    if (name == "Credential") {
      seen = &have_credential;
      out.credential = std::string(val);
    } else if (name == "SignedHeaders") {
      seen = &have_signed;
      std::string_view list = val;
      std::unordered_set<std::string_view> dup;
      while (!list.empty()) {
        const std::size_t semi = list.find(';');
        const std::string_view h = list.substr(0, semi);
        list = semi == std::string_view::npos ? std::string_view() : list.substr(semi + 1);
        if (h.empty() || to_lower(h) != h) {
          return incomplete("SignedHeaders must be non-empty lowercase header names");
        }
        if (!dup.insert(h).second) return incomplete("SignedHeaders lists a header twice");
        out.signed_headers.emplace_back(h);
      }
    } else if (name == "Signature") {
      seen = &have_signature;
      out.signature = std::string(val);
    } else {
      return incomplete("unknown Authorization field \"" + std::string(name.substr(0, 32)) + "\"");
    }
    if (*seen) return incomplete("Authorization field " + std::string(name) + " appears twice");
    *seen = true;
  }
  if (!have_credential || out.credential.empty()) return missing("MissingAccessKeyId", "AccessKeyId");
  if (!have_signed || out.signed_headers.empty()) {
    return incomplete("Authorization has no SignedHeaders");
  }
  if (!have_signature || out.signature.empty()) return missing("MissingSignature", "Signature");
  return out;
}

Result<AuthInfo> identify_acs3(const HttpRequestView& req, std::string_view authorization) {
  auto parsed = parse_acs3_authorization(authorization);
  if (!parsed.ok()) return parsed.error();

  AuthInfo info;
  info.scheme = AuthScheme::kAcs3HmacSha256;
  info.access_key_id = std::move(parsed->credential);
  info.signature = std::move(parsed->signature);
  info.signed_headers = std::move(parsed->signed_headers);

  auto date = single_header(req, "x-acs-date");
  if (!date.ok()) return date.error();
  if (!date->has_value() || (*date)->empty()) return missing("MissingTimestamp", "x-acs-date");
  info.timestamp = std::string(**date);

  auto nonce = single_header(req, "x-acs-signature-nonce");
  if (!nonce.ok()) return nonce.error();
  if (!nonce->has_value() || (*nonce)->empty()) return missing_parameter("x-acs-signature-nonce");
  info.nonce = std::string(**nonce);

  auto content_hash = single_header(req, "x-acs-content-sha256");
  if (!content_hash.ok()) return content_hash.error();
  if (!content_hash->has_value()) return missing_parameter("x-acs-content-sha256");

  // Headers that must be covered by the signature, so that the time, nonce,
  // body, action and target host cannot be changed in flight.
  std::vector<std::string_view> required = {"host", "x-acs-date", "x-acs-signature-nonce",
                                            "x-acs-content-sha256"};
  for (std::string_view h : {"x-acs-action", "x-acs-version"}) {
    if (!req.headers(h).empty()) required.push_back(h);
  }
  if (!req.body.empty() && !req.headers("content-type").empty()) required.push_back("content-type");
  for (std::string_view h : required) {
    if (std::find(info.signed_headers.begin(), info.signed_headers.end(), h) ==
        info.signed_headers.end()) {
      return incomplete("header " + std::string(h) + " must be listed in SignedHeaders");
    }
  }
  return info;
}

Result<AuthInfo> identify_v1(const Params& params) {
  AuthInfo info;
  info.scheme = AuthScheme::kHmacSha1V1;
  const std::string* signature = params.get("Signature");
  if (signature == nullptr || signature->empty()) return missing("MissingSignature", "Signature");
  info.signature = *signature;

  const std::string* ak = params.get("AccessKeyId");
  if (ak == nullptr || ak->empty()) return missing("MissingAccessKeyId", "AccessKeyId");
  info.access_key_id = *ak;

  const std::string* method = params.get("SignatureMethod");
  if (method == nullptr) return missing_parameter("SignatureMethod");
  if (*method != "HMAC-SHA1") {
    return incomplete("unsupported SignatureMethod; only HMAC-SHA1 is supported");
  }
  const std::string* version = params.get("SignatureVersion");
  if (version == nullptr) return missing_parameter("SignatureVersion");
  if (*version != "1.0") return incomplete("unsupported SignatureVersion; only 1.0 is supported");

  const std::string* timestamp = params.get("Timestamp");
  if (timestamp == nullptr || timestamp->empty()) return missing("MissingTimestamp", "Timestamp");
  info.timestamp = *timestamp;

  const std::string* nonce = params.get("SignatureNonce");
  if (nonce == nullptr || nonce->empty()) return missing_parameter("SignatureNonce");
  info.nonce = *nonce;
  return info;
}

}  // namespace

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;  // lengths are public (hex/base64 of fixed-size MACs)
  return CRYPTO_memcmp(bytes(a), bytes(b), a.size()) == 0;
}

// ---- building blocks -------------------------------------------------------

std::string percent_encode_rfc3986(std::string_view s) {
  return boost::urls::encode(boost::urls::string_view(s.data(), s.size()),
                             boost::urls::unreserved_chars);
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(bytes(data), data.size(), md, &len, EVP_sha256(), nullptr) != 1) return {};
  return hex(md, len);
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), bytes(key), static_cast<int>(key.size()), bytes(data), data.size(), md,
           &len) == nullptr) {
    return {};
  }
  return hex(md, len);
}

std::string hmac_sha1_base64(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha1(), bytes(key), static_cast<int>(key.size()), bytes(data), data.size(), md,
           &len) == nullptr) {
    return {};
  }
  unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
  const int n = EVP_EncodeBlock(b64, md, static_cast<int>(len));
  return std::string(reinterpret_cast<const char*>(b64), static_cast<std::size_t>(n));
}

HeaderLookup lookup_in(const HeaderList& headers) {
  return [&headers](std::string_view name) {
    std::vector<std::string_view> out;
    for (const auto& [n, v] : headers) {
      if (iequals(n, name)) out.emplace_back(v);
    }
    return out;
  };
}

// ---- identify --------------------------------------------------------------

Result<AuthInfo> identify_auth(const HttpRequestView& req, const Params& params) {
  const std::vector<std::string_view> authorization = req.headers("authorization");
  if (authorization.size() > 1) return incomplete("more than one Authorization header");
  const bool has_v1_signature = params.get("Signature") != nullptr;
  if (!authorization.empty()) {
    if (has_v1_signature) {
      return incomplete("both an Authorization header and a Signature parameter were sent");
    }
    return identify_acs3(req, authorization.front());
  }
  if (has_v1_signature) return identify_v1(params);
  // The real gateway answers MissingSignature ("Signature is mandatory for
  // this action.") when a request carries no signature at all.
  return Error{400, "MissingSignature",
               "Signature is mandatory for this action: sign the request with ACS3-HMAC-SHA256 "
               "(Authorization header) or HMAC-SHA1 (SignatureVersion 1.0 parameters)."};
}

// ---- canonical forms -------------------------------------------------------

std::string canonical_uri(std::string_view raw_path) {
  std::string out;
  out.reserve(raw_path.size());
  for (std::size_t i = 0; i < raw_path.size(); ++i) {
    const char c = raw_path[i];
    if (c == '+') {
      out += "%20";
    } else if (c == '*') {
      out += "%2A";
    } else if (c == '%' && raw_path.substr(i, 3) == "%7E") {  // case-sensitive, like the SDK
      out += '~';
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

std::string canonical_query(const Params& params, std::string_view exclude_key) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(params.size());
  for (const auto& [k, v] : params.items()) {
    if (!exclude_key.empty() && k == exclude_key) continue;
    encoded.emplace_back(percent_encode_rfc3986(k), percent_encode_rfc3986(v));
  }
  std::sort(encoded.begin(), encoded.end());  // bytewise: key, then value
  std::string out;
  for (const auto& [k, v] : encoded) {
    if (!out.empty()) out += '&';
    out += k;
    out += '=';
    out += v;
  }
  return out;
}

Result<std::string> acs3_canonical_request(const HttpRequestView& req, const AuthInfo& info) {
  auto query = parse_params(req.raw_query);
  if (!query.ok()) return query.error();

  std::string out;
  out += req.method;
  out += '\n';
  out += canonical_uri(req.path);
  out += '\n';
  out += canonical_query(*query);
  out += '\n';
  for (const std::string& name : info.signed_headers) {
    std::vector<std::string_view> values = req.headers(name);
    for (std::string_view& v : values) v = trim(v);
    std::sort(values.begin(), values.end());
    out += name;
    out += ':';
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (i > 0) out += ',';
      out += values[i];
    }
    out += '\n';
  }
  out += '\n';
  for (std::size_t i = 0; i < info.signed_headers.size(); ++i) {
    if (i > 0) out += ';';
    out += info.signed_headers[i];
  }
  out += '\n';
  // The SDK signs the hex it also sends as x-acs-content-sha256.
  const std::vector<std::string_view> sent_hash = req.headers("x-acs-content-sha256");
  if (sent_hash.size() == 1) {
    out += trim(sent_hash.front());
  } else {
    out += sha256_hex(req.body);
  }
  return out;
}

std::string acs3_string_to_sign(std::string_view canonical_request) {
  std::string out(kAcs3Algorithm);
  out += '\n';
  out += sha256_hex(canonical_request);
  return out;
}

std::string v1_string_to_sign(std::string_view method, const Params& params) {
  std::string out(method);
  out += "&%2F&";
  out += percent_encode_rfc3986(canonical_query(params, "Signature"));
  return out;
}

// ---- verification ----------------------------------------------------------

Status verify_acs3_signature(const HttpRequestView& req, const AuthInfo& info,
                             std::string_view secret) {
  const std::vector<std::string_view> sent_hash = req.headers("x-acs-content-sha256");
  if (sent_hash.size() != 1 || to_lower(trim(sent_hash.front())) != sha256_hex(req.body)) {
    return Error{400, "SignatureDoesNotMatch",
                 "x-acs-content-sha256 is not the SHA-256 of the request body."};
  }
  auto canonical = acs3_canonical_request(req, info);
  if (!canonical.ok()) return canonical.error();
  const std::string expected = hmac_sha256_hex(secret, acs3_string_to_sign(*canonical));
  if (expected.empty() || !constant_time_equal(expected, to_lower(info.signature))) {
    return signature_mismatch();
  }
  return Ok{};
}

Status verify_v1_signature(std::string_view method, const Params& params, const AuthInfo& info,
                           std::string_view secret) {
  std::string key(secret);
  key += '&';
  const std::string expected = hmac_sha1_base64(key, v1_string_to_sign(method, params));
  OPENSSL_cleanse(key.data(), key.size());
  if (expected.empty() || !constant_time_equal(expected, info.signature)) {
    return signature_mismatch();
  }
  return Ok{};
}

Result<TimePoint> parse_timestamp(std::string_view s) {
  auto bad = [&] {
    return Error{400, "InvalidTimeStamp.Format",
                 "Specified time stamp or date value is not well formatted: expected "
                 "yyyy-MM-ddTHH:mm:ssZ (UTC)."};
  };
  // 0123456789012345678 9
  // yyyy-MM-ddTHH:mm:ss Z
  if (s.size() != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
      s[16] != ':' || s[19] != 'Z') {
    return bad();
  }
  auto num = [&](std::size_t pos, std::size_t len, int& out) {
    out = 0;
    for (std::size_t i = pos; i < pos + len; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      out = out * 10 + (s[i] - '0');
    }
    return true;
  };
  int y, mo, d, h, mi, se;
  if (!num(0, 4, y) || !num(5, 2, mo) || !num(8, 2, d) || !num(11, 2, h) || !num(14, 2, mi) ||
      !num(17, 2, se)) {
    return bad();
  }
  using namespace std::chrono;
  // TimePoint counts nanoseconds in 64 bits (about 1678..2262): a year outside
  // that range would overflow; it is certainly more than 15 minutes from now.
  // (Found by the signature fuzzer.)
  if (y < 1970 || y > 2200) {
    return Error{400, "InvalidTimeStamp.Expired",
                 "Specified time stamp or date value is expired: " + std::string(s) + "."};
  }
  const year_month_day ymd{year(y), month(static_cast<unsigned>(mo)), day(static_cast<unsigned>(d))};
  if (!ymd.ok() || h > 23 || mi > 59 || se > 59) return bad();
  return TimePoint(sys_days(ymd) + hours(h) + minutes(mi) + seconds(se));
}

Status check_timestamp(std::string_view iso8601_utc, TimePoint now) {
  auto t = parse_timestamp(iso8601_utc);
  if (!t.ok()) return t.error();
  const auto skew = *t > now ? *t - now : now - *t;
  if (skew > kMaxClockSkew) {
    return Error{400, "InvalidTimeStamp.Expired",
                 "Specified time stamp or date value is expired: " + std::string(iso8601_utc) +
                     " is more than 15 minutes from the server time " + format_timestamp(now) +
                     "."};
  }
  return Ok{};
}

// ---- NonceCache ------------------------------------------------------------

NonceCache::NonceCache(Options options) : options_(options) {}

Status NonceCache::check_and_remember(std::string_view access_key, std::string_view nonce,
                                      TimePoint now) {
  if (nonce.empty()) return missing_parameter("SignatureNonce");
  if (nonce.size() > kMaxNonceBytes) {
    return Error{400, "InvalidParameter",
                 "SignatureNonce is longer than " + std::to_string(kMaxNonceBytes) + " bytes."};
  }
  try {
    std::string key;
    key.reserve(access_key.size() + 1 + nonce.size());
    key.append(access_key);
    key.push_back('\0');
    key.append(nonce);

    std::lock_guard<std::mutex> lock(mu_);
    evict_expired(now);
    if (seen_.count(key) != 0) {
      return Error{400, "SignatureNonceUsed", "Specified signature nonce was used already."};
    }
    if (seen_.size() >= options_.max_entries) {
      return Error{503, "ServiceUnavailable",
                   "The request has failed due to a temporary failure of the server "
                   "(replay cache full); retry later."};
    }
    auto count = per_key_.find(std::string(access_key));
    if (count != per_key_.end() && count->second >= options_.max_entries_per_key) {
      return Error{400, "Throttling.User", "Request was denied due to user flow control."};
    }
    auto inserted = seen_.insert(std::move(key)).first;
    try {
      order_.push_back(Entry{now, &*inserted, access_key.size()});
    } catch (...) {
      seen_.erase(inserted);  // keep seen_ and order_ in step
      throw;
    }
    if (count == per_key_.end()) {
      per_key_.emplace(std::string(access_key), 1);
    } else {
      ++count->second;
    }
    return Ok{};
  } catch (const std::exception&) {  // allocation failure
    return Error{503, "ServiceUnavailable",
                 "The request has failed due to a temporary failure of the server."};
  }
}

void NonceCache::evict_expired(TimePoint now) {
  while (!order_.empty() && order_.front().seen + options_.retention <= now) {
    const Entry e = order_.front();
    order_.pop_front();
    auto count = per_key_.find(e.key->substr(0, e.key_len));
    if (count != per_key_.end() && --count->second == 0) per_key_.erase(count);
    seen_.erase(seen_.find(*e.key));  // by iterator: *e.key lives in the erased node
  }
}

std::size_t NonceCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return seen_.size();
}

// ---- everything ------------------------------------------------------------

Status authenticate(const HttpRequestView& req, const Params& params, const AuthInfo& info,
                    std::string_view secret, TimePoint now, NonceCache& nonces) {
  if (Status s = check_timestamp(info.timestamp, now); !s.ok()) return s;
  if (info.nonce.size() > kMaxNonceBytes) {
    return Error{400, "InvalidParameter",
                 "SignatureNonce is longer than " + std::to_string(kMaxNonceBytes) + " bytes."};
  }
  Status sig = info.scheme == AuthScheme::kAcs3HmacSha256
                   ? verify_acs3_signature(req, info, secret)
                   : verify_v1_signature(req.method, params, info, secret);
  if (!sig.ok()) return sig;
  return nonces.check_and_remember(info.access_key_id, info.nonce, now);
}

}  // namespace sl::api
