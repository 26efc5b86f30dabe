#include "api/ids.h"

#include <random>

namespace sl::api {
namespace {

std::mt19937_64& rng() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  return gen;
}

std::string draw(std::string_view alphabet, int n) {
  std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
  std::string out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) out += alphabet[pick(rng())];
  return out;
}

constexpr std::string_view kLower = "0123456789abcdefghijklmnopqrstuvwxyz";
constexpr std::string_view kAlnum = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

}  // namespace

// A leading "1" keeps ids below 2^53, as real Alibaba Cloud ids are: the
// official SDK parses ImageOwnerId into a JavaScript number.
std::string new_account_id() { return "1" + draw("0123456789", 15); }
std::string new_access_key_id() { return "LTAI" + draw(kAlnum, 20); }
std::string new_access_key_secret() { return draw(kAlnum, 30); }
std::string new_image_id() { return "m-" + draw(kLower, 20); }
std::string new_instance_id() { return "i-" + draw(kLower, 20); }
std::string new_disk_id() { return "d-" + draw(kLower, 20); }
std::string new_directory_id() { return "rd-" + draw(kLower, 10); }
std::string new_root_folder_id() { return "r-" + draw(kLower, 6); }
std::string new_folder_id() { return "fd-" + draw(kLower, 10); }
std::string new_share_id() { return "rs-" + draw(kLower, 10); }
std::string new_handshake_id() { return "h-" + draw(kLower, 16); }

// Random, in the version-4 UUID layout (version nibble 4, variant 8-B), as ECS RequestIds are.
std::string new_request_id() {
  std::string hex = draw("0123456789ABCDEF", 32);
  hex[12] = '4';
  hex[16] = draw("89AB", 1)[0];
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) + "-" +
         hex.substr(20);
}

}  // namespace sl::api
