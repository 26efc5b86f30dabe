// The console's static files: what each path under /console answers, that
// only embedded files are reachable, and that the Service routes /console
// there (not to the ECS RPC handler).
#include "api/console_assets.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api_test_server.h"

namespace sl::api {
namespace {

using testing::ServiceFixture;

Response Serve(const std::string& target, http::verb verb = http::verb::get) {
  Request req{verb, target, 11};
  return console_response(req, "req-1");
}

TEST(ConsoleAssets, BareConsoleRedirectsToTheFolderKeepingTheQuery) {
  Response res = Serve("/console?x=1");
  EXPECT_EQ(res.result_int(), 301);
  EXPECT_EQ(res[http::field::location], "/console/?x=1");
  EXPECT_EQ(Serve("/console")[http::field::location], "/console/");
}

TEST(ConsoleAssets, FolderServesIndexHtmlWithAPolicyThatAllowsOnlyThisOrigin) {
  Response res = Serve("/console/");
  ASSERT_EQ(res.result_int(), 200);
  EXPECT_EQ(res[http::field::content_type], "text/html; charset=utf-8");
  EXPECT_EQ(res.body(), find_console_asset("index.html")->body);
  EXPECT_EQ(res[http::field::cache_control], "no-cache");
  EXPECT_EQ(res["X-Content-Type-Options"], "nosniff");
  std::string csp(res["Content-Security-Policy"]);
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(csp.find("http"), std::string::npos) << "no remote origin (no CDN)";
  EXPECT_EQ(Serve("/console/?from=login").body(), res.body());
}

TEST(ConsoleAssets, EveryEmbeddedFileIsServedWithItsType) {
  ASSERT_GT(kConsoleAssetCount, 5u);
  for (std::size_t i = 0; i < kConsoleAssetCount; ++i) {
    const ConsoleAsset& a = kConsoleAssets[i];
    if (i > 0) {
      EXPECT_LT(kConsoleAssets[i - 1].path, a.path) << "sorted, for find_console_asset";
    }
    Response res = Serve("/console/" + std::string(a.path));
    ASSERT_EQ(res.result_int(), 200) << a.path;
    EXPECT_EQ(res[http::field::content_type], a.content_type) << a.path;
    EXPECT_EQ(res.body(), a.body) << a.path;
    EXPECT_FALSE(res[http::field::etag].empty());
  }
  EXPECT_EQ(find_console_asset("js/app.js")->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(find_console_asset("style.css")->content_type, "text/css; charset=utf-8");
}

TEST(ConsoleAssets, UnknownFilesAreNotFound) {
  for (const char* target : {"/console/nope.js", "/console/js/", "/console/js", "/console/INDEX.HTML",
                             "/console/index.html/"}) {
    Response res = Serve(target);
    EXPECT_EQ(res.result_int(), 404) << target;
    auto body = nlohmann::json::parse(res.body());
    EXPECT_EQ(body["code"], "NotFound");
    EXPECT_EQ(body["request_id"], "req-1");
  }
}

TEST(ConsoleAssets, TraversalReachesNothingOutsideTheEmbeddedFiles) {
  for (const char* target : {"/console/../CMakeLists.txt", "/console/%2e%2e/CMakeLists.txt",
                             "/console/..%2fCMakeLists.txt", "/console//etc/passwd", "/console/js/../index.html",
                             "/console/./index.html", "/console/%69ndex.html", "/console/index.html%00"}) {
    EXPECT_EQ(Serve(target).result_int(), 404) << target;
  }
}

TEST(ConsoleAssets, MatchingETagAnswers304WithoutABody) {
  Response first = Serve("/console/js/app.js");
  Request again{http::verb::get, "/console/js/app.js", 11};
  again.set(http::field::if_none_match, first[http::field::etag]);
  Response res = console_response(again, "req-2");
  EXPECT_EQ(res.result_int(), 304);
  EXPECT_TRUE(res.body().empty());
  again.set(http::field::if_none_match, "\"stale\"");
  EXPECT_EQ(console_response(again, "req-3").result_int(), 200);
}

TEST(ConsoleAssets, OnlyGetAndHeadAreAllowed) {
  EXPECT_EQ(Serve("/console/", http::verb::head).result_int(), 200);
  Response res = Serve("/console/", http::verb::post);
  EXPECT_EQ(res.result_int(), 405);
  EXPECT_EQ(res[http::field::allow], "GET, HEAD");
}

TEST(ConsoleAssets, OnlyTheConsoleFolderIsAConsolePath) {
  EXPECT_TRUE(is_console_path("/console"));
  EXPECT_TRUE(is_console_path("/console/"));
  EXPECT_TRUE(is_console_path("/console/js/app.js"));
  EXPECT_FALSE(is_console_path("/consoles"));
  EXPECT_FALSE(is_console_path("/console.html"));
  EXPECT_FALSE(is_console_path("/v1/console"));
}

class ConsoleRouteTest : public ServiceFixture {};

TEST_F(ConsoleRouteTest, TheServiceServesTheConsoleWithoutAuthentication) {
  Response res = Call(Get("/console/js/api.js"));
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), find_console_asset("js/api.js")->body);
  EXPECT_EQ(Call(Get("/console")).result_int(), 301);
  EXPECT_EQ(Call(Get("/console/missing")).result_int(), 404);
}

}  // namespace
}  // namespace sl::api
