// Canonical JSON encoding, strict decoding and the SHA-256 hash chain.
//
// Stored form of one event (keys sorted, no whitespace, UTF-8):
//   {"actor":{...},"data":{...},"hash":"<64 hex>","prev_hash":"<64 hex>",
//    "region":"..","request_id":"..","seq":N,"time":N,"type":".."}
// hash = hex SHA-256( raw 32 bytes of prev_hash || the same JSON without the
// "hash" member ). Because keys are sorted and nothing before "hash" may contain
// an unescaped quote, the hashed text is the stored text with the 74 bytes
// `"hash":"<64 hex>",` cut out: verification never needs a JSON parse.
//
// Thread safety: all functions are reentrant (decode keeps a thread_local parser).
#pragma once

#include <string>
#include <string_view>

#include "events/event.h"
#include "events/result.h"

namespace sl {

// Computes e.hash from e.prev_hash and the other fields, sets it, and returns
// the stored bytes. REQUIRES: e.prev_hash is 64 hex chars.
std::string seal_event(Event& e);

// Canonical JSON of `e` including "hash". REQUIRES: e.hash and e.prev_hash set.
std::string encode_event(const Event& e);

// OK: the event. 400 InvalidEvent: malformed JSON, unknown type, a missing,
// mistyped, duplicated or unknown field (the message names it). Never half-parsed.
Result<Event> decode_event(std::string_view json);
// The same into `out`, reusing the storage of its strings: a reader decoding a
// long log into the same few Events allocates next to nothing. On an error
// `out` holds a partly decoded event: do not use it. `padded`: the caller
// promises kDecodePadding readable bytes (any content) after `json`, which
// saves copying the event into the parser's own padded buffer.
Status decode_event_into(std::string_view json, Event& out, bool padded = false);
inline constexpr std::size_t kDecodePadding = 64;

// Checks the stored bytes' own hash against their content and `prev_hash`.
// OK: the stored hash (64 hex, a view into `stored`). 400 InvalidEvent: no hash
// member, or the hash does not match the bytes (message says which).
Result<std::string_view> verify_event_bytes(std::string_view stored, std::string_view prev_hash);
// The stored bytes' hash member (64 hex) as written, unchecked; empty when absent.
std::string_view stored_hash(std::string_view stored);

// Reads just "seq" and "time" of stored bytes (fast path for indexes).
Result<std::pair<std::uint64_t, std::int64_t>> peek_seq_time(std::string_view stored);

// Hex SHA-256 of arbitrary bytes; hex helpers.
std::string sha256_hex(std::string_view bytes);
std::string to_hex(std::string_view raw);
bool from_hex(std::string_view hex, std::string& raw);

// The payload alone as canonical JSON (used by the native API and tests).
std::string encode_data(const EventData& d);

}  // namespace sl
