#include "api/subscription.h"

#include <nlohmann/json.hpp>

namespace sl::api {
namespace {

using Json = nlohmann::json;

Error invalid_subscribe(const std::string& why) { return make_error(400, "InvalidSubscribe", why); }

// Reads a filter list; false when present but not an array of strings.
bool read_list(const Json& filter, const char* name, std::set<std::string>& out) {
  if (!filter.contains(name)) return true;
  const Json& list = filter[name];
  if (!list.is_array()) return false;
  for (const auto& v : list) {
    if (!v.is_string()) return false;
    out.insert(v.get<std::string>());
  }
  return true;
}

}  // namespace

bool FeedFilter::matches(const Event& e, const std::vector<std::string>& entities) const {
  if (!types.empty() && !types.count(std::string(e.type()))) return false;
  auto any_in = [&](const std::set<std::string>& wanted) {
    if (wanted.empty()) return true;
    for (const auto& id : entities) {
      if (wanted.count(id)) return true;
    }
    return false;
  };
  return any_in(image_ids) && any_in(account_ids);
}

Result<Subscription> parse_subscription(std::string_view frame, std::uint64_t head_seq) {
  Json msg = Json::parse(frame, nullptr, false);
  if (!msg.is_object()) return invalid_subscribe("the frame is not a JSON object");
  auto op = msg.find("op");
  if (op == msg.end() || !op->is_string() || *op != "subscribe") return invalid_subscribe("op must be \"subscribe\"");
  Subscription sub;
  if (auto f = msg.find("filter"); f != msg.end()) {
    if (!f->is_object() || !read_list(*f, "image_ids", sub.filter.image_ids) ||
        !read_list(*f, "account_ids", sub.filter.account_ids) || !read_list(*f, "types", sub.filter.types)) {
      return invalid_subscribe("filter must be an object of string arrays");
    }
  }
  sub.next_seq = head_seq + 1;
  if (auto after = msg.find("after_seq"); after != msg.end() && !after->is_null()) {
    if (!after->is_number_unsigned()) return invalid_subscribe("after_seq must be a non-negative integer");
    std::uint64_t seq = after->get<std::uint64_t>();
    if (seq > head_seq) return make_error(400, "InvalidParameter.AsOf", "after_seq is beyond the head");
    sub.next_seq = seq + 1;
  }
  if (auto snapshot = msg.find("snapshot"); snapshot != msg.end()) {
    if (!snapshot->is_boolean()) return invalid_subscribe("snapshot must be true or false");
    sub.snapshot = snapshot->get<bool>();
  }
  return sub;
}

}  // namespace sl::api
