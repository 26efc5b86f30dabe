// GET /v1/verify over a real socket: the lines arrive while the scan runs
// (chunked), a client that leaves cancels the scan and frees the verifier,
// the connection serves the next request, 403 and 409 still apply.
//
// No test relies on timing: the service's verify_observer holds the scan at
// its first progress line until the test releases it, so "the line arrived
// before the scan ended" is a fact, not a race. Every client operation is
// bounded (kClientTimeout), so a server that does not stream fails the test
// instead of hanging it.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "api/http_server.h"
#include "api/verify_route.h"
#include "api_test_server.h"
#include "test_client.h"

namespace sl::api {
namespace {

using Json = nlohmann::json;
using testing::kClientTimeout;
using testing::ServiceFixture;
using testing::TestClient;

constexpr std::uint64_t kEvery = 2;  // events between progress lines

bool IsLast(std::string_view line) { return line.find("\"ok\":") != std::string_view::npos; }

// The service's verify_observer: records every line and, while armed, holds
// the scan at its first progress line until Release().
class ScanGate {
 public:
  void See(std::string_view line) {
    std::unique_lock lock(mu_);
    lines_.emplace_back(line);
    cv_.notify_all();
    if (IsLast(line) || held_ || !armed_) return;
    held_ = true;
    cv_.wait(lock, [&] { return released_; });
  }

  void Arm() {
    std::lock_guard lock(mu_);
    armed_ = true;
  }

  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

  // The last line of the scan, once the verifier is free again; empty if none
  // came within kClientTimeout.
  std::string WaitLast() {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, kClientTimeout, [&] { return !lines_.empty() && IsLast(lines_.back()); });
    return lines_.empty() || !IsLast(lines_.back()) ? std::string() : lines_.back();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
  bool armed_ = false;
  bool held_ = false;
  bool released_ = false;
};

class VerifyStreamTest : public ServiceFixture {
 protected:
  VerifyStreamTest() {
    service_options_.verify_progress_every = kEvery;
    service_options_.verify_observer = [this](std::string_view line) { gate_.See(line); };
  }

  void SetUp() override {
    ServiceFixture::SetUp();
    for (int i = 0; i < 5; ++i) Register("100000000000000" + std::to_string(i));
    head_ = ledger_->head().seq;
    ASSERT_GE(head_, 4 * kEvery) << "the tests need progress lines after the first";
    HttpServerOptions options;
    options.threads = 2;
    server_ = std::make_unique<HttpServer>(options, [this](Request&& req, const PeerInfo& peer, Responder respond) {
      service_->handle(std::move(req), peer, std::move(respond));
    });
    const Status started = server_->start();
    ASSERT_TRUE(started.ok()) << started.error().message;
  }

  void TearDown() override {
    gate_.Release();  // a failed test may have left the scan held
    server_.reset();
    ServiceFixture::TearDown();
  }

  Request VerifyRequest() const {
    Request req = Get("/v1/verify");
    req.set(http::field::host, "127.0.0.1");
    return req;
  }

  // What a whole verification of the log says, line by line.
  std::string Expected() {
    std::atomic<bool> cancel{false};
    std::string body;
    body += verify_log(ledger_->store(), head_, kEvery, cancel, [&body](std::string_view line) {
      body += line;
      return true;
    });
    return body;
  }

  // Reads the answer's body until it holds `lines` lines or ends.
  static ::testing::AssertionResult ReadLines(TestClient& c, http::response_parser<http::string_body>& p,
                                              std::size_t lines) {
    while (!p.is_done() && static_cast<std::size_t>(std::count(p.get().body().begin(), p.get().body().end(), '\n')) < lines) {
      if (const boost::beast::error_code ec = c.ReadSome(p); ec) {
        return ::testing::AssertionFailure() << "read: " << ec.message() << "; body so far: " << p.get().body();
      }
    }
    return ::testing::AssertionSuccess();
  }

  // Sends GET /v1/verify on `c` and reads its header.
  static void StartVerify(TestClient& c, http::response_parser<http::string_body>& p, Request req) {
    ASSERT_FALSE(c.Send(std::move(req)));
    ASSERT_FALSE(c.ReadHeader(p));
    ASSERT_EQ(p.get().result_int(), 200);
    EXPECT_TRUE(p.get().chunked());
    EXPECT_EQ(p.get()[http::field::content_type], "application/x-ndjson");
    EXPECT_EQ(p.get().count(http::field::content_length), 0u);
  }

  // Starts a verification on `c` that the gate holds right after its first
  // progress line, and reads that line.
  void StartHeldVerify(TestClient& c, http::response_parser<http::string_body>& p) {
    gate_.Arm();
    ASSERT_NO_FATAL_FAILURE(StartVerify(c, p, VerifyRequest()));
    ASSERT_TRUE(ReadLines(c, p, 1));
  }

  ScanGate gate_;
  std::uint64_t head_ = 0;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(VerifyStreamTest, TheFirstProgressLineArrivesWhileTheScanIsStillRunning) {
  TestClient c(server_->port());
  http::response_parser<http::string_body> p;
  ASSERT_NO_FATAL_FAILURE(StartHeldVerify(c, p));
  EXPECT_EQ(p.get().body(), Json({{"checked", kEvery}, {"head", head_}}).dump() + "\n");
  EXPECT_FALSE(p.is_done());

  gate_.Release();
  ASSERT_TRUE(ReadLines(c, p, SIZE_MAX));
  ASSERT_TRUE(p.is_done());
  EXPECT_EQ(p.get().body(), Expected());
  EXPECT_TRUE(Json::parse(gate_.WaitLast())["ok"].get<bool>());
}

TEST_F(VerifyStreamTest, ASecondVerifyWhileOneStreamsIsRefused) {
  TestClient first(server_->port());
  http::response_parser<http::string_body> p;
  ASSERT_NO_FATAL_FAILURE(StartHeldVerify(first, p));

  TestClient second(server_->port());
  ASSERT_FALSE(second.Send(VerifyRequest()));
  Response refused;
  ASSERT_FALSE(second.Read(refused));
  EXPECT_EQ(refused.result_int(), 409);
  EXPECT_EQ(Json::parse(refused.body())["code"], "VerifyInProgress");

  gate_.Release();
  ASSERT_TRUE(ReadLines(first, p, SIZE_MAX));
  EXPECT_EQ(p.get().body(), Expected());
}

TEST_F(VerifyStreamTest, AClientThatLeavesCancelsTheScanAndFreesTheVerifier) {
  {
    TestClient c(server_->port());
    http::response_parser<http::string_body> p;
    ASSERT_NO_FATAL_FAILURE(StartHeldVerify(c, p));
    c.ShutdownSend();
    // The server noticed (it closed its end) while the scan is still held.
    ASSERT_TRUE(c.WaitClosed());
  }
  gate_.Release();
  const std::string last = gate_.WaitLast();
  ASSERT_FALSE(last.empty());
  EXPECT_EQ(Json::parse(last),
            (Json{{"ok", false}, {"checked", 2 * kEvery}, {"seq", 2 * kEvery + 1}, {"problem", "cancelled: the client went away"}}));

  // The verifier is free: the next request gets a whole verification.
  TestClient again(server_->port());
  http::response_parser<http::string_body> p;
  ASSERT_NO_FATAL_FAILURE(StartVerify(again, p, VerifyRequest()));
  ASSERT_TRUE(ReadLines(again, p, SIZE_MAX));
  EXPECT_EQ(p.get().body(), Expected());
}

TEST_F(VerifyStreamTest, TheConnectionServesTheNextRequestAfterAStreamedAnswer) {
  TestClient c(server_->port());
  for (int i = 0; i < 2; ++i) {  // the second also shows the verifier is free once the answer ended
    http::response_parser<http::string_body> p;
    ASSERT_NO_FATAL_FAILURE(StartVerify(c, p, VerifyRequest()));
    EXPECT_TRUE(p.get().keep_alive());
    ASSERT_TRUE(ReadLines(c, p, SIZE_MAX));
    ASSERT_TRUE(p.is_done());
    EXPECT_EQ(p.get().body(), Expected()) << "answer " << i;
  }
  ASSERT_FALSE(c.Send(Get("/v1/head")));
  Response res;
  ASSERT_FALSE(c.Read(res));
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(Json::parse(res.body())["seq"], head_);
}

TEST_F(VerifyStreamTest, AnAccountIsForbiddenWithAWholeAnswer) {
  TestClient c(server_->port());
  Request req = SignedGet("/v1/verify", "1000000000000001");
  ASSERT_FALSE(c.Send(std::move(req)));
  Response res;
  ASSERT_FALSE(c.Read(res));
  EXPECT_EQ(res.result_int(), 403);
  EXPECT_FALSE(res.chunked());
  EXPECT_EQ(Json::parse(res.body())["code"], "Forbidden");
}

}  // namespace
}  // namespace sl::api
