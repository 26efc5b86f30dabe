// The web console's static files (console/ in the source tree), embedded into
// the server at build time by cmake/embed_console.cmake, and the answers to
// requests under /console. Nothing is read from the filesystem at run time:
// a request names an embedded file exactly or gets 404, so no path (`..`,
// percent-encoded or not) can reach anything else.
// Thread safety: immutable data and pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "api/http_server.h"

namespace sl::api {

struct ConsoleAsset {
  std::string_view path;          // relative to console/, e.g. "index.html", "js/app.js"
  std::string_view content_type;  // from the extension
  std::string_view body;
};

// Defined in the generated console_assets_data.cc, sorted by path.
extern const ConsoleAsset kConsoleAssets[];
extern const std::size_t kConsoleAssetCount;

// The asset with exactly this relative path; nullptr when there is none.
const ConsoleAsset* find_console_asset(std::string_view path);

// True for "/console" and every path under "/console/" (the request path,
// without the query).
bool is_console_path(std::string_view path);

// The answer to a request whose path is_console_path():
//   GET|HEAD /console           301 Location: /console/ (query kept)
//   GET|HEAD /console/          200 index.html
//   GET|HEAD /console/<asset>   200 with the asset's Content-Type, an ETag and
//                               Cache-Control: no-cache (names carry no content
//                               hash, so clients revalidate); 304 when
//                               If-None-Match names the current ETag
//   GET|HEAD anything else      404 NotFound
//   other methods               405 MethodNotAllowed, Allow: GET, HEAD
// Errors use the native JSON shape {"code","message","request_id"}.
// Every answer carries X-Content-Type-Options: nosniff; HTML also a
// Content-Security-Policy allowing only same-origin scripts, styles and
// connections (no CDN, no inline script).
Response console_response(const Request& req, const std::string& request_id);

}  // namespace sl::api
