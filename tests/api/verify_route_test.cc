// GET /v1/verify and the verifier behind it: the NDJSON lines, admin-only
// access, the first bad seq of a tampered log, one scan at a time.
#include "api/verify_route.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <sstream>

#include "api_test_server.h"
#include "storage/store.h"

namespace sl::api {
namespace {

using Json = nlohmann::json;
using testing::ServiceFixture;

std::vector<Json> Lines(const std::string& body) {
  std::vector<Json> out;
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);) out.push_back(Json::parse(line));
  return out;
}

class VerifyRouteTest : public ServiceFixture {
 protected:
  void SetUp() override {
    ServiceFixture::SetUp();
    for (int i = 0; i < 5; ++i) Register("100000000000000" + std::to_string(i));
  }
};

TEST_F(VerifyRouteTest, AdminGetsAnOkLineNamingTheHead) {
  Response res = Call(Get("/v1/verify"));
  ASSERT_EQ(res.result_int(), 200) << res.body();
  EXPECT_EQ(res[http::field::content_type], "application/x-ndjson");
  auto lines = Lines(res.body());
  ASSERT_EQ(lines.size(), 1u) << res.body();  // under kVerifyProgressEvery events: no progress line
  const Head head = ledger_->head();
  EXPECT_EQ(lines.back(), (Json{{"ok", true}, {"checked", head.seq}, {"head_seq", head.seq}, {"head_hash", head.hash}}));
  EXPECT_EQ(res["x-shareledger-seq"], std::to_string(head.seq));
}

TEST_F(VerifyRouteTest, ProgressLinesComeEveryNEventsBeforeTheResult) {
  std::atomic<bool> cancel{false};
  const std::uint64_t head = ledger_->head().seq;  // the built-in catalog, then 5 accounts
  const std::uint64_t every = head / 2 - 1;         // two progress lines, the second before the head
  auto lines = Lines(verify_log(ledger_->store(), head, every, cancel));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], (Json{{"checked", every}, {"head", head}}));
  EXPECT_EQ(lines[1], (Json{{"checked", 2 * every}, {"head", head}}));
  EXPECT_TRUE(lines[2]["ok"].get<bool>());
  EXPECT_EQ(lines[2]["checked"], head);
}

TEST_F(VerifyRouteTest, AnAccountIsForbidden) {
  Response res = Call(SignedGet("/v1/verify", "1000000000000001"));
  EXPECT_EQ(res.result_int(), 403) << res.body();
  EXPECT_EQ(Json::parse(res.body())["code"], "Forbidden");
}

TEST_F(VerifyRouteTest, AWrongTokenIsRejected) {
  Response res = Call(Get("/v1/verify", "not-the-token"));
  EXPECT_EQ(res.result_int(), 401);
  EXPECT_EQ(Json::parse(res.body())["code"], "InvalidToken");
}

TEST_F(VerifyRouteTest, ATamperedEventIsNamedWithTheCountVerifiedBeforeIt) {
  const std::uint64_t head = ledger_->head().seq, victim = head - 2;  // an AccountRegistered
  Close();
  {
    auto store = Store::open(dir_.string(), OpenMode::kReadWrite);
    ASSERT_TRUE(store.ok()) << store.error().message;
    std::string bytes = **(*store)->event_bytes(victim);
    bytes[bytes.find("\"data\":{") + 20] ^= 0x01;
    ASSERT_TRUE((*store)->db()->Put(rocksdb::WriteOptions(), (*store)->events(), be64(victim), bytes).ok());
    std::atomic<bool> cancel{false};
    auto lines = Lines(verify_log(**store, head, 1000, cancel));
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_FALSE(lines[0]["ok"].get<bool>());
    EXPECT_EQ(lines[0]["seq"], victim);
    EXPECT_EQ(lines[0]["checked"], victim - 1);
    EXPECT_NE(lines[0]["problem"].get<std::string>().find("seq " + std::to_string(victim)), std::string::npos)
        << lines[0];
  }
}

TEST_F(VerifyRouteTest, ALogShorterThanTheHeadIsAProblem) {
  std::atomic<bool> cancel{false};
  const std::uint64_t head = ledger_->head().seq;
  auto lines = Lines(verify_log(ledger_->store(), head + 4, 1000, cancel));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_FALSE(lines[0]["ok"].get<bool>());
  EXPECT_EQ(lines[0]["seq"], head + 1);
}

TEST_F(VerifyRouteTest, OnlyOneScanRunsAtATime) {
  std::optional<ChainVerifier> verifier;
  verifier.emplace(ledger_->store());
  std::mutex mu;
  std::condition_variable cv;
  bool release = false, finished = false;
  ASSERT_TRUE(verifier->start(5, [&](std::string) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return release; });
  }).ok());
  Status second = verifier->start(5, [](std::string) {});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error(), (Error{409, "VerifyInProgress", second.error().message}));
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  // Once the first has finished, a new scan starts (retry until it has).
  Status third = make_error(409, "VerifyInProgress");
  for (int i = 0; i < 1000 && !third.ok(); ++i) {
    third = verifier->start(5, [&](std::string body) {
      std::lock_guard lock(mu);
      finished = Lines(body).back()["ok"].get<bool>();
      cv.notify_all();
    });
    if (!third.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(third.ok());
  {
    std::unique_lock lock(mu);
    EXPECT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return finished; }));
  }
}

TEST_F(VerifyRouteTest, ACancelledScanSaysSo) {
  std::atomic<bool> cancel{true};
  auto lines = Lines(verify_log(ledger_->store(), ledger_->head().seq, 1000, cancel));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_FALSE(lines[0]["ok"].get<bool>());
  EXPECT_EQ(lines[0]["checked"], 0);
  EXPECT_NE(lines[0]["problem"].get<std::string>().find("cancelled"), std::string::npos);
}

}  // namespace
}  // namespace sl::api
