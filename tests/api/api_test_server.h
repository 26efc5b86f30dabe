// A Ledger on a temp dir behind a Service, called directly (no sockets), for
// the route tests of the console and /v1/verify. Call() hands a request to
// Service::handle() and waits, bounded, for whatever thread answers it.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <unistd.h>

#include "api/service.h"
#include "api/signature.h"
#include "projections/ledger.h"

namespace sl::api::testing {

inline constexpr const char* kAdminToken = "route-test-admin-token";

class ServiceFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("routes_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    Open();
  }
  void TearDown() override {
    Close();
    std::filesystem::remove_all(dir_);
  }

  void Open() {
    auto ledger = Ledger::open(dir_.string(), ledger_options_);
    ASSERT_TRUE(ledger.ok()) << ledger.error().message;
    ledger_ = std::move(*ledger);
    service_ = std::make_unique<Service>(*ledger_, service_options_);
  }
  void Close() {
    service_.reset();  // joins a running verification before the store goes
    ledger_.reset();
  }

  // Registers an account whose key is "LTAI" + id[0..16) + "xxxx" and secret "secret-" + id.
  void Register(const std::string& id) {
    auto r = ledger_->execute(RegisterAccount{id, "cn", KeyOf(id)}, CommandContext{{}, "test", "secret-" + id});
    ASSERT_TRUE(r.ok()) << r.error().code;
  }
  static std::string KeyOf(const std::string& id) { return "LTAI" + id.substr(0, 16) + "xxxx"; }

  static Request Get(const std::string& target, const std::string& bearer = kAdminToken) {
    Request req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (!bearer.empty()) req.set(http::field::authorization, "Bearer " + bearer);
    return req;
  }

  // GET path signed with the v1 (HMAC-SHA1, query) scheme as account `id`;
  // `signed_params` ("Action=...&...", encoded) are signed with the rest.
  static Request SignedGet(const std::string& path, const std::string& id, const std::string& signed_params = "") {
    char stamp[32];
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    static int nonce = 0;
    std::string query = (signed_params.empty() ? "" : signed_params + "&") + "AccessKeyId=" + KeyOf(id) +
                        "&SignatureMethod=HMAC-SHA1&SignatureNonce=n" + std::to_string(++nonce) +
                        "&SignatureVersion=1.0&Timestamp=" + percent_encode_rfc3986(stamp);
    auto params = parse_params(query);
    EXPECT_TRUE(params.ok());
    std::string signature = hmac_sha1_base64("secret-" + id + "&", v1_string_to_sign("GET", *params));
    return Get(path + "?" + query + "&Signature=" + percent_encode_rfc3986(signature), "");
  }

  Response Call(Request req) {
    auto answer = std::make_shared<std::promise<Response>>();
    auto got = answer->get_future();
    service_->handle(std::move(req), PeerInfo{}, [answer](Response res) { answer->set_value(std::move(res)); });
    if (got.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
      ADD_FAILURE() << "no answer within 30 s";
      return Response{http::status::gateway_timeout, 11};
    }
    return got.get();
  }

  std::filesystem::path dir_;
  ServiceOptions service_options_{kAdminToken, std::chrono::milliseconds(0)};  // set before Open()
  LedgerOptions ledger_options_;                                               // set before Open()
  std::unique_ptr<Ledger> ledger_;
  std::unique_ptr<Service> service_;
};

}  // namespace sl::api::testing
