// Typed access to request parameters with the ECS error codes:
// absent -> 400 MissingParameter, malformed -> 400 InvalidParameter, each
// naming the parameter. Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "api/params.h"
#include "events/result.h"

namespace sl::api {

Result<std::string> required(const Params& params, const std::string& name);
std::string optional(const Params& params, const std::string& name, const std::string& fallback = "");
// "true"/"false" (any case); absent -> nullopt.
Result<std::optional<bool>> optional_bool(const Params& params, const std::string& name);
// An integer in [min, max]; absent -> fallback.
Result<long long> bounded_int(const Params& params, const std::string& name, long long fallback, long long min,
                              long long max);
// Values of Name.1, Name.2, ... ordered by their index (Name.1 < Name.2 < Name.10);
// `suffix` selects Name.N.Suffix (e.g. Resources.N.ResourceId). Gaps are allowed.
Result<std::vector<std::string>> indexed_list(const Params& params, const std::string& name,
                                              const std::string& suffix = "");
// "a,b,c" or a JSON array string '["a","b"]' -> values (empty entries dropped).
std::vector<std::string> split_list(const std::string& raw);

}  // namespace sl::api
