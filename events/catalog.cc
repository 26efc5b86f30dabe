#include "events/catalog.h"

#include "events/codec.h"

namespace sl {

std::string derived_image_id(const std::string& seed) {
  static constexpr char kAlphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string digest = sha256_hex(seed);
  std::string id = "m-";
  for (int i = 0; i < 20; ++i) id += kAlphabet[std::stoi(digest.substr(2 * i, 2), nullptr, 16) % 36];
  return id;
}

std::vector<SeedCatalogImage> builtin_catalog(const std::vector<std::string>& regions) {
  std::vector<SeedCatalogImage> out;
  for (const auto& region : regions) {
    for (const char* name : {"aliyun_3_x64_20G_alibase", "ubuntu_22_04_x64_20G_alibase"}) {
      out.push_back({derived_image_id(region + "/" + name), region, name, "system", "", "", false});
    }
    for (const char* site : {"cn", "intl"}) {
      std::string s = site;
      out.push_back({derived_image_id(region + "/" + s + "/lamp"), region, "LAMP stack (" + s + ")", "marketplace", s,
                     "", false});
      out.push_back({derived_image_id(region + "/" + s + "/waf"), region, "Commercial WAF (" + s + ")", "marketplace",
                     s, "cmjj0" + std::string(s == "cn" ? "22001" : "22002"), true});
    }
  }
  return out;
}

}  // namespace sl
