#include "events/entities.h"

#include <algorithm>
#include <string_view>

namespace sl {
namespace {

// Payload fields that hold ids; names and free text (name, site, kind, ...) do not.
constexpr std::string_view kIdFields[] = {
    "account_id", "owner", "image_id", "instance_id", "disk_id", "image_fee_payer", "directory_id",
    "root_folder_id", "management_account", "folder_id", "parent_id", "handshake_id", "share_id",
    "accounts", "blocked_instances", "resources", "targets"};

bool is_id_field(std::string_view name) {
  return std::find(std::begin(kIdFields), std::end(kIdFields), name) != std::end(kIdFields);
}

struct Collector {
  std::vector<std::string>& out;
  void operator()(const char* name, const std::string& v) {
    if (is_id_field(name) && !v.empty()) out.push_back(v);
  }
  void operator()(const char* name, const std::vector<std::string>& v) {
    if (is_id_field(name)) out.insert(out.end(), v.begin(), v.end());
  }
  template <class T>
  void operator()(const char*, const T&) {}  // bools, origin: no ids
};

}  // namespace

std::vector<std::string> touched_entities(const Event& e) {
  std::vector<std::string> out;
  if (!e.actor.account_id.empty()) out.push_back(e.actor.account_id);
  std::visit([&](const auto& d) { const_cast<std::decay_t<decltype(d)>&>(d).each(Collector{out}); }, e.data);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace sl
