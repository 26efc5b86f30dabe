// Query/form parameter parsing: the first line is the query string, the rest the form body.
#include <cstdint>
#include <string_view>

#include "api/params.h"
#include "api/signature.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::size_t newline = input.find('\n');
  std::string_view query = input.substr(0, newline);
  std::string_view body = newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);
  auto params = sl::api::parse_params(query, body);
  if (params) {
    // Whatever parsed must re-encode canonically without trouble.
    (void)sl::api::canonical_query(*params);
    for (const auto& [key, value] : params->items()) {
      if (!sl::api::is_valid_utf8(key) || !sl::api::is_valid_utf8(value)) __builtin_trap();
    }
  }
  return 0;
}
