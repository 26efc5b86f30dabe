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

// verify_log()'s lines, the progress ones then the last.
std::vector<Json> VerifyLines(const Store& store, std::uint64_t to_seq, std::uint64_t every,
                              const std::atomic<bool>& cancel) {
  std::string body;
  body += verify_log(store, to_seq, every, cancel, [&body](std::string_view line) {
    body += line;
    return true;
  });
  return Lines(body);
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
  auto lines = VerifyLines(ledger_->store(), head, every, cancel);
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
    auto lines = VerifyLines(**store, head, 1000, cancel);
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
  auto lines = VerifyLines(ledger_->store(), head + 4, 1000, cancel);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_FALSE(lines[0]["ok"].get<bool>());
  EXPECT_EQ(lines[0]["seq"], head + 1);
}

TEST_F(VerifyRouteTest, OnlyOneScanRunsAtATimeAndTheVerifierIsFreeWhenDoneRuns) {
  std::optional<ChainVerifier> verifier;
  verifier.emplace(ledger_->store());
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::vector<std::string> lasts;
  const auto hold = [&](std::string_view) {  // the first scan waits at its first progress line
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return release; });
    return true;
  };
  const auto done = [&](std::string last) {
    std::lock_guard lock(mu);
    lasts.push_back(std::move(last));
    cv.notify_all();
  };
  ASSERT_TRUE(verifier->start(5, 1, hold, done).ok());
  Status second = verifier->start(5, 1, [](std::string_view) { return true; }, [](std::string) {});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error(), (Error{409, "VerifyInProgress", second.error().message}));
  {
    std::unique_lock lock(mu);
    release = true;
    cv.notify_all();
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return lasts.size() == 1; }));
  }
  // `done` ran, so the verifier is free: no retry needed.
  ASSERT_TRUE(verifier->start(5, 1, [](std::string_view) { return true; }, done).ok());
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return lasts.size() == 2; }));
  for (const std::string& last : lasts) EXPECT_TRUE(Json::parse(last)["ok"].get<bool>()) << last;
}

TEST_F(VerifyRouteTest, ACancelledScanSaysSo) {
  std::atomic<bool> cancel{true};
  auto lines = VerifyLines(ledger_->store(), ledger_->head().seq, 1000, cancel);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_FALSE(lines[0]["ok"].get<bool>());
  EXPECT_EQ(lines[0]["checked"], 0);
  EXPECT_NE(lines[0]["problem"].get<std::string>().find("cancelled"), std::string::npos);
}

TEST_F(VerifyRouteTest, AReaderThatLeavesStopsTheScanAtItsNextEvent) {
  std::atomic<bool> cancel{false};
  int calls = 0;
  std::string last = verify_log(ledger_->store(), ledger_->head().seq, 3, cancel, [&](std::string_view) {
    ++calls;
    return false;
  });
  EXPECT_EQ(calls, 1);
  const Json line = Json::parse(last);
  EXPECT_FALSE(line["ok"].get<bool>());
  EXPECT_EQ(line["checked"], 3);
  EXPECT_EQ(line["problem"], "cancelled: the client went away");
}

}  // namespace
}  // namespace sl::api
