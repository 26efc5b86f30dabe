#include "api/console_assets.h"

#include <algorithm>
#include <vector>

#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "api/signature.h"

namespace sl::api {
namespace {

constexpr std::string_view kPrefix = "/console";
constexpr std::string_view kIndex = "index.html";
// 'self' covers same-origin ws: in CSP Level 3 (every current browser).
constexpr std::string_view kHtmlPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

// Strong ETags, one per asset, computed on first use (the bytes never change
// while the process runs).
const std::string& etag_of(const ConsoleAsset& asset) {
  static const std::vector<std::string> tags = [] {
    std::vector<std::string> out;
    out.reserve(kConsoleAssetCount);
    for (std::size_t i = 0; i < kConsoleAssetCount; ++i) {
      out.push_back("\"" + sha256_hex(kConsoleAssets[i].body).substr(0, 32) + "\"");
    }
    return out;
  }();
  return tags[static_cast<std::size_t>(&asset - kConsoleAssets)];
}

Response plain(const Request& req, http::status status) {
  Response res{status, req.version()};
  res.set("X-Content-Type-Options", "nosniff");
  res.set(http::field::cache_control, "no-cache");
  res.keep_alive(req.keep_alive());
  return res;
}

Response error(const Request& req, http::status status, std::string code, std::string message,
               const std::string& request_id) {
  Response res = plain(req, status);
  res.set(http::field::content_type, "application/json;charset=utf-8");
  res.body() = nlohmann::json{{"code", std::move(code)}, {"message", std::move(message)},
                              {"request_id", request_id}}.dump();
  return res;
}

}  // namespace

const ConsoleAsset* find_console_asset(std::string_view path) {
  const ConsoleAsset* end = kConsoleAssets + kConsoleAssetCount;
  const ConsoleAsset* it = std::lower_bound(kConsoleAssets, end, path,
                                            [](const ConsoleAsset& a, std::string_view p) { return a.path < p; });
  return it != end && it->path == path ? it : nullptr;
}

bool is_console_path(std::string_view path) {
  return path == kPrefix || (path.starts_with(kPrefix) && path.size() > kPrefix.size() && path[kPrefix.size()] == '/');
}

Response console_response(const Request& req, const std::string& request_id) {
  std::string_view target = req.target();
  std::size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    Response res = error(req, http::status::method_not_allowed, "MethodNotAllowed",
                         "The console only answers GET and HEAD.", request_id);
    res.set(http::field::allow, "GET, HEAD");
    return res;
  }
  if (path == kPrefix) {
    Response res = plain(req, http::status::moved_permanently);
    res.set(http::field::location,
            "/console/" + std::string(q == std::string_view::npos ? std::string_view() : target.substr(q)));
    return res;
  }
  std::string_view name = path.substr(kPrefix.size() + 1);
  if (name.empty()) name = kIndex;
  const ConsoleAsset* asset = find_console_asset(name);
  if (!asset) {
    return error(req, http::status::not_found, "NotFound", "No such console file.", request_id);
  }
  const std::string& etag = etag_of(*asset);
  if (req[http::field::if_none_match] == etag) {
    Response res = plain(req, http::status::not_modified);
    res.set(http::field::etag, etag);
    return res;
  }
  Response res = plain(req, http::status::ok);
  res.set(http::field::content_type, asset->content_type);
  res.set(http::field::etag, etag);
  if (asset->content_type.starts_with("text/html")) {
    res.set("Content-Security-Policy", kHtmlPolicy);
    res.set("Referrer-Policy", "no-referrer");
  }
  res.body() = std::string(asset->body);
  return res;
}

}  // namespace sl::api
