// Params: the decoded request parameters of one API call.
//
// An RPC call carries its parameters in the query string, in an
// application/x-www-form-urlencoded body, or in both (SPEC.md §3.1;
// docs/SDK_NOTES.md says what each client sends). parse_params() decodes
// both into one list of (key, value) pairs in arrival order: query first,
// then body.
//
// Decoding rules (Boost.URL does the percent-decoding):
//   - "+" decodes to a space in both the query and the body (browsers' forms
//     send it; the SDKs always send %20, and %2B for a literal plus).
//   - Characters RFC 3986 forbids in a query but that hand-written clients
//     send unencoded (space, "|", "[", "]", "{", "}", "^", '"', "`", "<",
//     ">", "\", bytes >= 0x80) are taken as themselves.
//   - Empty segments ("a=1&&b=2", a trailing "&") are skipped; "a" alone
//     is key "a" with value "".
//
// Thread safety: a Params is a plain value; const methods may be called
// concurrently.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "events/result.h"

namespace sl::api {

// More parameters than this in one request (query and body together) are
// rejected. The largest real call (ModifyImageSharePermission with 10
// AddAccount.N plus RemoveAccount.N and the v1 common parameters) has ~35.
inline constexpr std::size_t kMaxParams = 1000;

class Params {
 public:
  using Item = std::pair<std::string, std::string>;

  Params() = default;

  // Returns the decoded value of `key` (exact, case-sensitive match), or
  // nullptr when absent. The pointer stays valid while *this is alive and
  // unmodified.
  const std::string* get(std::string_view key) const;

  // All pairs in arrival order (query first, then body).
  const std::vector<Item>& items() const { return items_; }
  std::size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }

 private:
  friend Result<Params> parse_params(std::string_view, std::string_view);

  std::vector<Item> items_;
  std::unordered_map<std::string, std::size_t> index_;  // key -> items_ index
};

// Decodes `raw_query` (the request target after "?", without the "?") and
// `form_body` (the body of an application/x-www-form-urlencoded request;
// pass "" for any other content type) into one Params.
//
// OK: every pair, decoded.
// 400 InvalidParameter (the message names the offending key or position):
//   - malformed percent-encoding ("%zz", a trailing "%4");
//   - a key that appears twice, within one part or across query and body;
//   - more than kMaxParams parameters;
//   - a decoded key or value that is not valid UTF-8 or contains NUL;
//   - an empty key with a value ("=x").
Result<Params> parse_params(std::string_view raw_query, std::string_view form_body = {});

// True when `s` is well-formed UTF-8 (no overlong forms, no surrogates,
// nothing above U+10FFFF).
bool is_valid_utf8(std::string_view s);

}  // namespace sl::api
