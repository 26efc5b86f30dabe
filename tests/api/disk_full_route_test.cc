// Disk full through the API (issue 8): an ECS write on a full disk answers
// 503 with the ECS JSON error (Code ServiceUnavailable) and changes nothing;
// ECS and native reads keep answering; once space is back the same Service
// takes writes again, without a restart.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <thread>

#include "api_test_server.h"
#include "events/catalog.h"
#include "projections/full_disk_env.h"

namespace sl::api {
namespace {

using Json = nlohmann::json;

const std::string kOwner = "1000000000000001", kRecipient = "1000000000000002";
const std::string kImage = "m-full0000000000000002";
const std::string kShare = "Action=ModifyImageSharePermission&Version=2014-05-26&RegionId=cn-hangzhou&ImageId=" +
                           kImage + "&AddAccount.1=" + kRecipient;
const std::string kDescribe =
    "Action=DescribeImageSharePermission&Version=2014-05-26&RegionId=cn-hangzhou&ImageId=" + kImage;

class DiskFullRouteTest : public testing::ServiceFixture {
 protected:
  void SetUp() override {
    ledger_options_.store.env = &env_;
    ServiceFixture::SetUp();
    Register(kOwner);
    Register(kRecipient);
    const std::string system_image = builtin_catalog(Limits{}.regions)[0].image_id;
    ASSERT_TRUE(ledger_->execute(RunInstances{kOwner, "cn-hangzhou", system_image, {"i-f0000000000000000001"},
                                              {"d-f0000000000000000001"}}).ok());
    ASSERT_TRUE(ledger_->execute(CreateImage{kOwner, "cn-hangzhou", "i-f0000000000000000001", kImage, "golden", true}).ok());
  }

  // The accounts DescribeImageSharePermission lists for kImage (a 200 expected).
  Json SharedWith() {
    Response res = Call(SignedGet("/", kOwner, kDescribe));
    EXPECT_EQ(res.result_int(), 200) << res.body();
    return Json::parse(res.body(), nullptr, false)["Accounts"]["Account"];
  }

  sl::testing::FullDiskEnv env_{rocksdb::Env::Default()};
};

TEST_F(DiskFullRouteTest, WritesAnswer503JsonWhileFullReadsAnswerAndWritesResumeWithoutRestart) {
  const std::uint64_t before = ledger_->head().seq;
  env_.full = true;
  for (int attempt = 0; attempt < 2; ++attempt) {  // the first failure, then the reopen attempts' refusals
    Response res = Call(SignedGet("/", kOwner, kShare));
    EXPECT_EQ(res.result_int(), 503) << res.body();
    Json body = Json::parse(res.body(), nullptr, false);
    ASSERT_TRUE(body.is_object()) << res.body();
    EXPECT_EQ(body.value("Code", ""), "ServiceUnavailable") << res.body();
    EXPECT_FALSE(body.value("RequestId", "").empty()) << res.body();
    EXPECT_FALSE(res.count("x-shareledger-seq")) << "a refused write names no seq";
  }
  EXPECT_EQ(ledger_->head().seq, before);
  EXPECT_EQ(SharedWith(), Json::array());
  Response native = Call(Get("/v1/images/" + kImage + "/permissions"));
  EXPECT_EQ(native.result_int(), 200) << native.body();
  Response as_of = Call(Get("/v1/check?account=" + kRecipient + "&image=" + kImage +
                            "&as_of_seq=" + std::to_string(before)));
  EXPECT_EQ(as_of.result_int(), 200) << as_of.body();

  env_.full = false;  // space is back: the same Service, no restart
  Response res;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  do {
    res = Call(SignedGet("/", kOwner, kShare));
    if (res.result_int() != 503) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (std::chrono::steady_clock::now() < deadline);
  ASSERT_EQ(res.result_int(), 200) << res.body();
  EXPECT_EQ(res["x-shareledger-seq"], std::to_string(before + 1));  // the refused attempts used no seq
  Json shared = SharedWith();
  ASSERT_EQ(shared.size(), 1u) << shared.dump();
  EXPECT_EQ(shared[0].value("AliyunId", ""), kRecipient);
}

}  // namespace
}  // namespace sl::api
