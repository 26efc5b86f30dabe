// WebSocket subscribe frames: any text gets a subscription or a clean error.
#include <cstdint>
#include <string_view>

#include "api/subscription.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto sub = sl::api::parse_subscription(input, 1000);
  if (sub && (sub->next_seq < 1 || sub->next_seq > 1001)) __builtin_trap();
  return 0;
}
