// ACS3 and v1 signature parsing and canonicalization over arbitrary requests.
// Input lines: method, path, raw query, then "name: value" headers until an
// empty line, then the body.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "api/params.h"
#include "api/signature.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto next_line = [&]() {
    std::size_t nl = input.find('\n');
    std::string_view line = input.substr(0, nl);
    input = nl == std::string_view::npos ? std::string_view() : input.substr(nl + 1);
    return line;
  };
  std::string_view method = next_line(), path = next_line(), query = next_line();
  sl::api::HeaderList headers;
  for (std::string_view line = next_line(); !line.empty(); line = next_line()) {
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name(line.substr(0, colon));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    headers.emplace_back(name, std::string(value));
  }
  sl::api::HttpRequestView req{method, path, query, sl::api::lookup_in(headers), input};
  auto params = sl::api::parse_params(query, input);
  if (!params) return 0;
  (void)sl::api::canonical_uri(path);
  auto info = sl::api::identify_auth(req, *params);
  if (!info) return 0;
  sl::api::NonceCache nonces;
  (void)sl::api::authenticate(req, *params, *info, "fuzz-secret-0123456789abcdefgh",
                              sl::api::Clock::now(), nonces);
  return 0;
}
