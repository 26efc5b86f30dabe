#include "api/params.h"

#include <boost/url/encode.hpp>
#include <boost/url/encoding_opts.hpp>
#include <boost/url/params_encoded_view.hpp>
#include <boost/url/parse_query.hpp>
#include <boost/url/rfc/pchars.hpp>

#include <exception>

namespace sl::api {
namespace {

// What Boost.URL's query grammar accepts as-is: pchar / "/" / "?".
constexpr auto kQueryChars = boost::urls::pchars + '/' + '?';

// Bytes of `s` that a query may not contain, percent-encoded; every other
// byte, and every "%" (so existing escapes, valid or not, reach
// parse_query untouched), is kept. Boost's encode() refuses a charset that
// contains "%", so the runs between "%"s are encoded one by one.
std::string escape_stray_bytes(std::string_view s) {
  bool clean = true;
  for (char c : s) clean = clean && (c == '%' || kQueryChars(c));
  if (clean) return std::string(s);
  std::string out;
  for (;;) {
    const std::size_t pct = s.find('%');
    const std::string_view run = s.substr(0, pct);
    out += boost::urls::encode(boost::urls::string_view(run.data(), run.size()), kQueryChars);
    if (pct == std::string_view::npos) return out;
    out += '%';
    s.remove_prefix(pct + 1);
  }
}

// A fragment of client input that is safe to put in an error message (which
// is serialised as JSON, so it must be valid UTF-8): at most ~64 bytes, cut
// on a character boundary; invalid or control bytes become '?'.
std::string for_message(std::string_view s) {
  constexpr std::size_t kMax = 64;
  std::string out;
  if (is_valid_utf8(s)) {
    std::size_t n = s.size() <= kMax ? s.size() : kMax;
    while (n < s.size() && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    out.assign(s.substr(0, n));
    for (char& c : out) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = '?';
    }
    if (n < s.size()) out += "...";
    return out;
  }
  for (char c : s.substr(0, kMax)) {
    auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u >= 0x7F) ? '?' : c;
  }
  if (s.size() > kMax) out += "...";
  return out;
}

Error invalid(std::string message) {
  return Error{400, "InvalidParameter", std::move(message)};
}

// Names the first "&"-separated segment of `part` whose percent-encoding is
// malformed (for the error message only).
std::string first_malformed_segment(std::string_view part) {
  while (!part.empty()) {
    std::size_t amp = part.find('&');
    std::string_view seg = part.substr(0, amp);
    if (!boost::urls::parse_query(boost::urls::string_view(seg.data(), seg.size()))) {
      return for_message(seg);
    }
    if (amp == std::string_view::npos) break;
    part.remove_prefix(amp + 1);
  }
  return {};
}

bool has_nul(const std::string& s) { return s.find('\0') != std::string::npos; }

// Appends the pairs of one encoded part ("query string" or "request body").
Status append_part(std::string_view raw, const char* where, std::vector<Params::Item>& items) {
  if (raw.empty()) return Ok{};
  const std::string escaped = escape_stray_bytes(raw);
  auto parsed = boost::urls::parse_query(escaped);
  if (!parsed) {
    std::string seg = first_malformed_segment(escaped);
    return invalid(std::string("malformed percent-encoding in the ") + where +
                   (seg.empty() ? std::string() : ": \"" + seg + "\""));
  }
  const boost::urls::encoding_opts plus_is_space(/*space_as_plus=*/true);
  for (auto p : parsed.value()) {
    if (p.key.empty() && !p.has_value) continue;  // "&&" or a trailing "&"
    if (items.size() >= kMaxParams) {
      return invalid("too many parameters: more than " + std::to_string(kMaxParams));
    }
    std::string key = p.key.decode(plus_is_space);
    std::string value = p.has_value ? p.value.decode(plus_is_space) : std::string();
    if (key.empty()) {
      return invalid(std::string("parameter with an empty name in the ") + where);
    }
    if (!is_valid_utf8(key) || has_nul(key)) {
      return invalid("parameter name is not valid UTF-8: \"" + for_message(key) + "\"");
    }
    if (!is_valid_utf8(value) || has_nul(value)) {
      return invalid("value of parameter " + for_message(key) + " is not valid UTF-8");
    }
    items.emplace_back(std::move(key), std::move(value));
  }
  return Ok{};
}

}  // namespace

const std::string* Params::get(std::string_view key) const {
  auto it = index_.find(std::string(key));
  return it == index_.end() ? nullptr : &items_[it->second].second;
}

Result<Params> parse_params(std::string_view raw_query, std::string_view form_body) {
  try {
    Params out;
    if (Status s = append_part(raw_query, "query string", out.items_); !s.ok()) return s.error();
    if (Status s = append_part(form_body, "request body", out.items_); !s.ok()) return s.error();
    out.index_.reserve(out.items_.size());
    for (std::size_t i = 0; i < out.items_.size(); ++i) {
      if (!out.index_.emplace(out.items_[i].first, i).second) {
        return invalid("duplicate parameter: " + for_message(out.items_[i].first));
      }
    }
    return out;
  } catch (const std::exception& e) {  // allocation failure; Boost.URL itself does not throw here
    return Error{500, "InternalError", std::string("parameter parsing failed: ") + e.what()};
  }
}

bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3;
      if (b0 == 0xE0) lo = 0xA0;  // no overlong 3-byte forms
      if (b0 == 0xED) hi = 0x9F;  // no UTF-16 surrogates
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4;
      if (b0 == 0xF0) lo = 0x90;  // no overlong 4-byte forms
      if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
    } else {
      return false;  // continuation byte, overlong 2-byte lead, or > F4
    }
    if (n - i < len) return false;
    const auto b1 = static_cast<unsigned char>(s[i + 1]);
    if (b1 < lo || b1 > hi) return false;
    for (std::size_t k = 2; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

}  // namespace sl::api
