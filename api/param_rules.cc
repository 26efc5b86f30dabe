#include "api/param_rules.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <nlohmann/json.hpp>

namespace sl::api {
namespace {

Error invalid(const std::string& name, const std::string& why) {
  return make_error(400, "InvalidParameter", "The specified parameter \"" + name + "\" is not valid: " + why);
}

}  // namespace

Result<std::string> required(const Params& params, const std::string& name) {
  const std::string* v = params.get(name);
  if (!v || v->empty()) {
    return make_error(400, "MissingParameter",
                      "The input parameter \"" + name + "\" that is mandatory for processing this request is not supplied.");
  }
  return *v;
}

std::string optional(const Params& params, const std::string& name, const std::string& fallback) {
  const std::string* v = params.get(name);
  return v && !v->empty() ? *v : fallback;
}

Result<std::optional<bool>> optional_bool(const Params& params, const std::string& name) {
  const std::string* v = params.get(name);
  if (!v || v->empty()) return std::optional<bool>();
  std::string s = *v;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s == "true") return std::optional<bool>(true);
  if (s == "false") return std::optional<bool>(false);
  return invalid(name, "expected true or false");
}

Result<long long> bounded_int(const Params& params, const std::string& name, long long fallback, long long min,
                              long long max) {
  const std::string* v = params.get(name);
  if (!v || v->empty()) return fallback;
  long long out = 0;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || end != v->data() + v->size()) return invalid(name, "expected an integer");
  if (out < min || out > max) {
    return invalid(name, "must be between " + std::to_string(min) + " and " + std::to_string(max));
  }
  return out;
}

Result<std::vector<std::string>> indexed_list(const Params& params, const std::string& name,
                                              const std::string& suffix) {
  std::map<long long, std::string> by_index;
  const std::string prefix = name + ".";
  for (const auto& [key, value] : params.items()) {
    if (!key.starts_with(prefix)) continue;
    std::string_view rest = std::string_view(key).substr(prefix.size());
    std::string_view index_text = rest.substr(0, rest.find('.'));
    std::string_view tail = rest.size() > index_text.size() ? rest.substr(index_text.size() + 1) : std::string_view();
    if (tail != suffix) continue;
    long long index = 0;
    auto [end, ec] = std::from_chars(index_text.data(), index_text.data() + index_text.size(), index);
    if (ec != std::errc() || end != index_text.data() + index_text.size() || index < 1 || index > 1000) {
      return invalid(key, "the index must be a positive integer");
    }
    if (!value.empty()) by_index[index] = value;
  }
  std::vector<std::string> out;
  for (auto& [index, value] : by_index) out.push_back(std::move(value));
  return out;
}

std::vector<std::string> split_list(const std::string& raw) {
  std::vector<std::string> out;
  if (!raw.empty() && raw.front() == '[') {
    auto j = nlohmann::json::parse(raw, nullptr, false);
    if (j.is_array()) {
      for (const auto& v : j) {
        if (v.is_string() && !v.get<std::string>().empty()) out.push_back(v.get<std::string>());
      }
      return out;
    }
  }
  std::size_t start = 0;
  while (start <= raw.size()) {
    std::size_t comma = raw.find(',', start);
    std::string item = raw.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    item.erase(0, item.find_first_not_of(" \""));
    item.erase(item.find_last_not_of(" \"") + 1);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace sl::api
