#include "events/codec.h"

#include <openssl/evp.h>

#include <array>
#include <cstring>
#include <nlohmann/json.hpp>
#include <simdjson.h>

namespace sl {
namespace {

using nlohmann::json;

// ---- encoding ---------------------------------------------------------------

json to_json(const std::string& s) { return s; }
json to_json(bool b) { return b; }
json to_json(const std::vector<std::string>& v) { return v; }

template <class T>
json to_json(const T& obj) {
  json j = json::object();
  // each() only reads through the visitor; it is non-const so the decoder can share it.
  const_cast<T&>(obj).each([&](const char* name, const auto& field) { j[name] = to_json(field); });
  return j;
}

json envelope_without_hash(const Event& e) {
  json j = json::object();
  j["seq"] = e.seq;
  j["time"] = e.time_us;
  j["type"] = std::string(e.type());
  j["actor"] = to_json(e.actor);
  j["request_id"] = e.request_id;
  j["region"] = e.region;
  j["data"] = std::visit([](const auto& d) { return to_json(d); }, e.data);
  j["prev_hash"] = e.prev_hash;
  return j;
}

std::string dump(const json& j) {
  // Replace invalid UTF-8 rather than throw: the API rejects it earlier, and a
  // replaced character still hashes to what is stored.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

constexpr std::string_view kHashKey = "\"hash\":\"";
constexpr std::string_view kPrevHashKey = ",\"prev_hash\":\"";
constexpr std::size_t kHashMemberLen = kHashKey.size() + 64 + 2;  // "hash":"<64>",

// SHA-256, fetched once. With OpenSSL 3, passing EVP_sha256() to
// EVP_DigestInit_ex makes an implicit provider fetch (a locked lookup) on every
// call, which costs more than hashing a whole event.
const EVP_MD* sha256_md() {
  static const EVP_MD* const md = [] {
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    if (const EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr)) return fetched;
#endif
    return EVP_sha256();
  }();
  return md;
}

// One digest context per thread, reset by each EVP_DigestInit_ex.
EVP_MD_CTX* digest_ctx() {
  struct Holder {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Holder() { EVP_MD_CTX_free(ctx); }
  };
  thread_local Holder holder;
  return holder.ctx;
}

// Lowercase hex digit -> value; 0xff for anything else.
constexpr std::array<unsigned char, 256> kNibble = [] {
  std::array<unsigned char, 256> t{};
  t.fill(0xff);
  for (int c = '0'; c <= '9'; ++c) t[c] = static_cast<unsigned char>(c - '0');
  for (int c = 'a'; c <= 'f'; ++c) t[c] = static_cast<unsigned char>(c - 'a' + 10);
  return t;
}();

// 64 lowercase hex chars? Branch-free, so the compiler vectorizes it: a
// table lookup per char cost ~8 % of decoding an event.
bool is_hex64(std::string_view s) {
  if (s.size() != 64) return false;
  unsigned bad = 0;
  for (unsigned char c : s) {
    bad |= static_cast<unsigned>((static_cast<unsigned char>(c - '0') > 9) & (static_cast<unsigned char>(c - 'a') > 5));
  }
  return bad == 0;
}

// 64 lowercase hex chars -> 32 raw bytes; false (out untouched) otherwise.
bool hex32(std::string_view hex, unsigned char* out) {
  if (!is_hex64(hex)) return false;
  for (std::size_t i = 0; i < 32; ++i) {
    out[i] = static_cast<unsigned char>(kNibble[static_cast<unsigned char>(hex[2 * i])] << 4 |
                                        kNibble[static_cast<unsigned char>(hex[2 * i + 1])]);
  }
  return true;
}

// SHA-256( raw prev_hash || parts... ): the parts are the stored text without
// its "hash" member, given in pieces so that nothing is copied.
std::array<unsigned char, 32> chain_digest(std::string_view prev_hash_hex, std::string_view part1,
                                           std::string_view part2 = {}) {
  unsigned char prev_buf[32];
  std::string prev_fallback;
  std::string_view prev_raw;
  if (hex32(prev_hash_hex, prev_buf)) {
    prev_raw = std::string_view(reinterpret_cast<const char*>(prev_buf), 32);
  } else {  // not a well-formed hash: hash what from_hex makes of it, as before
    from_hex(prev_hash_hex, prev_fallback);
    prev_raw = prev_fallback;
  }
  std::array<unsigned char, 32> md{};
  unsigned int len = 0;
  EVP_MD_CTX* ctx = digest_ctx();
  EVP_DigestInit_ex(ctx, sha256_md(), nullptr);
  EVP_DigestUpdate(ctx, prev_raw.data(), prev_raw.size());
  EVP_DigestUpdate(ctx, part1.data(), part1.size());
  if (!part2.empty()) EVP_DigestUpdate(ctx, part2.data(), part2.size());
  EVP_DigestFinal_ex(ctx, md.data(), &len);
  return md;
}

// ---- decoding ---------------------------------------------------------------

using simdjson::dom::element;
using simdjson::dom::element_type;

struct DecodeError {
  std::string what;
};

// A field's name for messages, "where.name", spelled out only when a message
// needs it (decoding a valid event builds no strings for names).
struct FieldPath {
  std::string_view where;
  std::string_view name;  // empty: `where` is the whole path
  std::string str() const { return name.empty() ? std::string(where) : std::string(where) + "." + std::string(name); }
};

void read_field(element el, std::string& out, const FieldPath& path) {
  std::string_view s;
  if (el.get_string().get(s)) throw DecodeError{path.str() + " must be a string"};
  out.assign(s);
}
void read_field(element el, bool& out, const FieldPath& path) {
  if (el.get_bool().get(out)) throw DecodeError{path.str() + " must be a boolean"};
}
void read_field(element el, std::vector<std::string>& out, const FieldPath& path) {
  simdjson::dom::array arr;
  if (el.get_array().get(arr)) throw DecodeError{path.str() + " must be an array of strings"};
  out.resize(arr.size());  // assigning into the strings kept reuses their storage
  std::size_t i = 0;
  for (element item : arr) {
    std::string_view s;
    if (item.get_string().get(s)) throw DecodeError{path.str() + " must be an array of strings"};
    out[i++].assign(s);
  }
}
template <class T>
void read_field(element el, T& out, const FieldPath& path);

// Strict object decoding: every listed field exactly once, nothing else.
template <class T>
void read_object(element el, T& out, std::string_view where) {
  simdjson::dom::object obj;
  if (el.get_object().get(obj)) throw DecodeError{std::string(where) + " must be an object"};
  std::size_t expected = 0;
  out.each([&](const char*, auto&) { ++expected; });
  std::uint64_t seen = 0;
  for (auto field_pair : obj) {  // not a structured binding: clang 14 cannot capture those
    std::string_view key = field_pair.key;
    element value = field_pair.value;
    bool matched = false;
    std::size_t index = 0;
    out.each([&](const char* name, auto& field) {
      if (!matched && key == name) {
        matched = true;
        if (seen & (1ull << index)) throw DecodeError{std::string(where) + "." + name + " appears twice"};
        seen |= 1ull << index;
        read_field(value, field, FieldPath{where, name});
      }
      ++index;
    });
    if (!matched) throw DecodeError{"unknown field " + std::string(where) + "." + std::string(key)};
  }
  if (seen != (expected == 64 ? ~0ull : (1ull << expected) - 1)) {
    std::size_t index = 0;
    std::string missing;
    out.each([&](const char* name, auto&) {
      if (missing.empty() && !(seen & (1ull << index))) missing = name;
      ++index;
    });
    throw DecodeError{"missing field " + std::string(where) + "." + missing};
  }
}
template <class T>
void read_field(element el, T& out, const FieldPath& path) {
  read_object(el, out, path.str());  // nested objects (origin) are rare: one string
}

template <std::size_t I = 0>
bool make_data(std::string_view type, EventData& out) {
  if constexpr (I < std::variant_size_v<EventData>) {
    using Alt = std::variant_alternative_t<I, EventData>;
    if (type == Alt::kType) {
      // Every field is assigned by the strict decode: a payload of the same
      // type is overwritten in place, keeping its strings' storage.
      if (out.index() != I) out.emplace<I>();
      return true;
    }
    return make_data<I + 1>(type, out);
  } else {
    return false;
  }
}

struct Decoder {
  simdjson::dom::parser parser;
  std::string buffer;

  Result<element> parse(std::string_view json_text, bool padded = false) {
    static_assert(kDecodePadding >= simdjson::SIMDJSON_PADDING);
    if (!padded) {
      buffer.reserve(json_text.size() + simdjson::SIMDJSON_PADDING);
      buffer.assign(json_text);
      json_text = buffer;
    }
    element root;
    if (auto err = parser.parse(json_text.data(), json_text.size(), false).get(root)) {
      // parse() may read SIMDJSON_PADDING bytes past the end: reserve() or the caller's promise covers them.
      return make_error(400, "InvalidEvent", std::string("malformed JSON: ") + simdjson::error_message(err));
    }
    return root;
  }
};

// The envelope's members, in canonical (sorted) order.
enum EnvelopeMember { kActor, kData, kHash, kPrevHash, kRegion, kRequestId, kSeq, kTime, kType, kMembers };
constexpr std::string_view kMemberNames[kMembers] = {
    "actor", "data", "hash", "prev_hash", "region", "request_id", "seq", "time", "type"};

// The member `key` names, or -1. One comparison per key, where an if-chain
// over the names made ~45 per event.
int envelope_member(std::string_view key) {
  int guess = -1;
  switch (key.empty() ? '\0' : key[0]) {
    case 'a': guess = kActor; break;
    case 'd': guess = kData; break;
    case 'h': guess = kHash; break;
    case 'p': guess = kPrevHash; break;
    case 'r': guess = key.size() == 6 ? kRegion : kRequestId; break;
    case 's': guess = kSeq; break;
    case 't': guess = key.size() == 4 && key[1] == 'i' ? kTime : kType; break;
    default: return -1;
  }
  return key == kMemberNames[guess] ? guess : -1;
}

Decoder& decoder() {
  thread_local Decoder d;
  return d;
}

}  // namespace

std::string_view Event::type() const {
  return std::visit([](const auto& d) { return std::decay_t<decltype(d)>::kType; }, data);
}

std::string to_hex(std::string_view raw) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(raw.size() * 2, '0');
  for (std::size_t i = 0; i < raw.size(); ++i) {
    auto c = static_cast<unsigned char>(raw[i]);
    out[2 * i] = kDigits[c >> 4];
    out[2 * i + 1] = kDigits[c & 15];
  }
  return out;
}

bool from_hex(std::string_view hex, std::string& raw) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (hex.size() % 2) return false;
  raw.resize(hex.size() / 2);
  for (std::size_t i = 0; i < raw.size(); ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    raw[i] = static_cast<char>(hi << 4 | lo);
  }
  return true;
}

std::string sha256_hex(std::string_view bytes) {
  unsigned char md[32];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, sha256_md(), nullptr);
  return to_hex(std::string_view(reinterpret_cast<char*>(md), len));
}

std::string encode_data(const EventData& d) {
  return dump(std::visit([](const auto& x) { return to_json(x); }, d));
}

std::string seal_event(Event& e) {
  std::string text = dump(envelope_without_hash(e));
  auto md = chain_digest(e.prev_hash, text);
  e.hash = to_hex(std::string_view(reinterpret_cast<char*>(md.data()), md.size()));
  std::size_t at = text.find(kPrevHashKey);  // unique: no payload field is named prev_hash
  text.insert(at + 1, std::string(kHashKey) + e.hash + "\",");
  return text;
}

std::string encode_event(const Event& e) {
  json j = envelope_without_hash(e);
  j["hash"] = e.hash;
  return dump(j);
}

namespace {

// Where the top-level hash member starts (its ','), or npos when there is none.
// It is preceded by ',' (after "data"); inside string values a quote is always
// escaped, so the first match is the member itself.
std::size_t hash_member_at(std::string_view stored) {
  std::size_t at = stored.find(",\"hash\":\"");
  if (at == std::string_view::npos || at + 1 + kHashMemberLen > stored.size() ||
      stored.substr(at + 1 + kHashKey.size() + 64, 2) != "\",") {
    return std::string_view::npos;
  }
  return at;
}

}  // namespace

std::string_view stored_hash(std::string_view stored) {
  std::size_t at = hash_member_at(stored);
  return at == std::string_view::npos ? std::string_view() : stored.substr(at + 1 + kHashKey.size(), 64);
}

Result<std::string_view> verify_event_bytes(std::string_view stored, std::string_view prev_hash) {
  std::size_t at = hash_member_at(stored);
  if (at == std::string_view::npos) return make_error(400, "InvalidEvent", "stored event has no well-formed hash member");
  std::string_view stored_hash = stored.substr(at + 1 + kHashKey.size(), 64);
  // The hashed text is the stored text without the member: hash its two sides.
  auto md = chain_digest(prev_hash, stored.substr(0, at + 1), stored.substr(at + 1 + kHashMemberLen));
  static constexpr char kDigits[] = "0123456789abcdef";
  char computed[64];
  for (std::size_t i = 0; i < 32; ++i) {
    computed[2 * i] = kDigits[md[i] >> 4];
    computed[2 * i + 1] = kDigits[md[i] & 15];
  }
  if (std::string_view(computed, 64) != stored_hash) {
    return make_error(400, "InvalidEvent", "hash mismatch: stored " + std::string(stored_hash) + ", computed " +
                                               std::string(computed, 64));
  }
  // The chain link itself: the stored prev_hash must name the previous event.
  // Canonically it is the next member (keys are sorted); any other order is searched for.
  std::size_t prev_at = at + kHashMemberLen;
  if (stored.substr(prev_at, kPrevHashKey.size()) != kPrevHashKey) prev_at = stored.find(kPrevHashKey);
  if (prev_at == std::string_view::npos || stored.substr(prev_at + kPrevHashKey.size(), 64) != prev_hash) {
    return make_error(400, "InvalidEvent", "prev_hash does not match the previous event's hash");
  }
  return stored_hash;
}

Result<Event> decode_event(std::string_view json_text) {
  Event e;
  if (auto decoded = decode_event_into(json_text, e); !decoded) return decoded.error();
  return e;
}

Status decode_event_into(std::string_view json_text, Event& e, bool padded) {
  auto root = decoder().parse(json_text, padded);
  if (!root) return root.error();
  try {
    simdjson::dom::object obj;
    if (root->get_object().get(obj)) throw DecodeError{"event must be a JSON object"};
    std::string_view type;
    element data;  // read once the type is known: "type" is stored last
    std::uint32_t seen = 0;
    for (auto field_pair : obj) {
      std::string_view key = field_pair.key;
      element value = field_pair.value;
      const int member = envelope_member(key);
      if (member < 0) throw DecodeError{"unknown field " + std::string(key)};
      if (seen & (1u << member)) throw DecodeError{"field " + std::string(key) + " appears twice"};
      seen |= 1u << member;
      switch (member) {
        case kSeq:
          if (value.get_uint64().get(e.seq)) throw DecodeError{"seq must be an unsigned integer"};
          break;
        case kTime:
          if (value.get_int64().get(e.time_us)) throw DecodeError{"time must be an integer"};
          break;
        case kType:
          if (value.get_string().get(type)) throw DecodeError{"type must be a string"};
          break;
        case kActor:
          read_object(value, e.actor, "actor");
          break;
        case kRequestId:
          read_field(value, e.request_id, FieldPath{"request_id", {}});
          break;
        case kRegion:
          read_field(value, e.region, FieldPath{"region", {}});
          break;
        case kData:
          data = value;
          break;
        case kPrevHash:
          read_field(value, e.prev_hash, FieldPath{"prev_hash", {}});
          break;
        case kHash:
          read_field(value, e.hash, FieldPath{"hash", {}});
          break;
      }
    }
    for (int member = 0; member < kMembers; ++member) {
      if (!(seen & (1u << member))) throw DecodeError{"missing field " + std::string(kMemberNames[member])};
    }
    if (!make_data(type, e.data)) throw DecodeError{"unknown event type " + std::string(type)};
    std::visit([&](auto& d) { read_object(data, d, "data"); }, e.data);
    if (!is_hex64(e.hash)) throw DecodeError{"hash must be 64 lowercase hex chars"};
    if (!is_hex64(e.prev_hash)) throw DecodeError{"prev_hash must be 64 lowercase hex chars"};
  } catch (const DecodeError& err) {
    return make_error(400, "InvalidEvent", err.what);
  }
  return Ok{};
}

Result<std::pair<std::uint64_t, std::int64_t>> peek_seq_time(std::string_view stored) {
  auto root = decoder().parse(stored);
  if (!root) return root.error();
  std::uint64_t seq = 0;
  std::int64_t time = 0;
  if ((*root)["seq"].get_uint64().get(seq) || (*root)["time"].get_int64().get(time)) {
    return make_error(400, "InvalidEvent", "seq/time missing");
  }
  return std::pair{seq, time};
}

}  // namespace sl
