// Event JSON decoding and stored-bytes verification: never crash, never
// half-parse; whatever decodes re-encodes to something that decodes the same.
#include <cstdint>
#include <string_view>

#include "events/codec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  (void)sl::verify_event_bytes(input, sl::kGenesisHash);
  (void)sl::peek_seq_time(input);
  auto e = sl::decode_event(input);
  if (!e) return 0;
  auto again = sl::decode_event(sl::encode_event(*e));
  if (!again || again->type() != e->type() || again->seq != e->seq || again->hash != e->hash) __builtin_trap();
  if (sl::encode_data(again->data) != sl::encode_data(e->data)) __builtin_trap();
  return 0;
}
