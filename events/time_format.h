// Event times (microseconds since the epoch, UTC) as the APIs show them.
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sl {

// "yyyy-MM-ddTHH:mm:ssZ", the ECS format (SharedTime, CreationTime).
std::string ecs_time(std::int64_t micros);
// RFC 3339 with microseconds: "2026-12-01T08:00:00.123456Z".
std::string rfc3339_micros(std::int64_t micros);
// Parses RFC 3339 ("2026-12-01T08:00:00Z", fractional seconds and +hh:mm offsets
// allowed) into microseconds; nullopt when malformed.
std::optional<std::int64_t> parse_rfc3339(std::string_view text);

}  // namespace sl
