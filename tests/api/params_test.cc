#include "api/params.h"

#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <string>

#include "api/ids.h"

namespace sl::api {
namespace {

Params ParseOk(std::string_view query, std::string_view body = {}) {
  auto r = parse_params(query, body);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().code + ": " + r.error().message);
  return r.ok() ? *r : Params{};
}

Error ParseErr(std::string_view query, std::string_view body = {}) {
  auto r = parse_params(query, body);
  EXPECT_FALSE(r.ok());
  return r.ok() ? Error{} : r.error();
}

std::string ManyParams(int n) {
  std::string q;
  for (int i = 1; i <= n; ++i) {
    if (i > 1) q += '&';
    q += "P." + std::to_string(i) + "=" + std::to_string(i);
  }
  return q;
}

TEST(Params, KeepsPairsInArrivalOrderQueryThenBody) {
  Params p = ParseOk("b=2&a=1", "d=4&c=3");
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p.items()[0], (Params::Item{"b", "2"}));
  EXPECT_EQ(p.items()[1], (Params::Item{"a", "1"}));
  EXPECT_EQ(p.items()[2], (Params::Item{"d", "4"}));
  EXPECT_EQ(p.items()[3], (Params::Item{"c", "3"}));
  EXPECT_EQ(*p.get("c"), "3");
}

TEST(Params, GetIsExactAndCaseSensitive) {
  Params p = ParseOk("RegionId=cn-hangzhou");
  ASSERT_NE(p.get("RegionId"), nullptr);
  EXPECT_EQ(p.get("regionid"), nullptr);
  EXPECT_EQ(p.get("Region"), nullptr);
}

TEST(Params, EmptyInputGivesNoParams) {
  EXPECT_TRUE(ParseOk("", "").empty());
}

TEST(Params, PercentEscapesDecode) {
  Params p = ParseOk("ImageName=my%20image%20%2A~!()%27%2B%25%26%3D%2F%3F");
  EXPECT_EQ(*p.get("ImageName"), "my image *~!()'+%&=/?");
}

TEST(Params, PlusDecodesToSpaceInQueryAndBody) {
  Params p = ParseOk("q=a+b", "f=c+d&g=%2B");
  EXPECT_EQ(*p.get("q"), "a b");
  EXPECT_EQ(*p.get("f"), "c d");
  EXPECT_EQ(*p.get("g"), "+");
}

TEST(Params, DecodesUtf8) {
  Params p = ParseOk("Name=%E4%B8%AD%E6%96%87");
  EXPECT_EQ(*p.get("Name"), "\xe4\xb8\xad\xe6\x96\x87");  // 中文
}

TEST(Params, KeyWithoutEqualsHasEmptyValue) {
  Params p = ParseOk("DryRun&a=");
  EXPECT_EQ(*p.get("DryRun"), "");
  EXPECT_EQ(*p.get("a"), "");
}

TEST(Params, EmptySegmentsAreSkipped) {
  Params p = ParseOk("&a=1&&b=2&");
  EXPECT_EQ(p.size(), 2u);
}

TEST(Params, StrayCharactersThatClientsSendUnencodedAreKept) {
  Params p = ParseOk("a=b|c d&e=[1]&f=\xe4\xb8\xad&g=\"x\"");
  EXPECT_EQ(*p.get("a"), "b|c d");
  EXPECT_EQ(*p.get("e"), "[1]");
  EXPECT_EQ(*p.get("f"), "\xe4\xb8\xad");
  EXPECT_EQ(*p.get("g"), "\"x\"");
}

TEST(Params, RejectsMalformedPercentEncoding) {
  for (const char* q : {"a=%zz", "a=1%", "a=%4", "a=%G0", "%=1", "ok=1&b=x%2"}) {
    Error e = ParseErr(q);
    EXPECT_EQ(e.http, 400) << q;
    EXPECT_EQ(e.code, "InvalidParameter") << q;
    EXPECT_NE(e.message.find("percent-encoding"), std::string::npos) << e.message;
  }
}

TEST(Params, MalformedEncodingMessageNamesTheSegmentAndPart) {
  Error e = ParseErr("ok=1", "ImageName=x%2");
  EXPECT_NE(e.message.find("request body"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("ImageName=x%2"), std::string::npos) << e.message;
}

TEST(Params, RejectsDuplicateKeyInQuery) {
  Error e = ParseErr("AddAccount.1=1&AddAccount.1=2");
  EXPECT_EQ(e.code, "InvalidParameter");
  EXPECT_NE(e.message.find("duplicate parameter: AddAccount.1"), std::string::npos) << e.message;
}

TEST(Params, RejectsDuplicateKeyAcrossQueryAndBody) {
  Error e = ParseErr("RegionId=cn-hangzhou", "RegionId=cn-beijing");
  EXPECT_EQ(e.code, "InvalidParameter");
}

TEST(Params, DuplicateDetectionComparesDecodedKeys) {
  EXPECT_EQ(ParseErr("a%20b=1&a+b=2").code, "InvalidParameter");
}

TEST(Params, AcceptsExactlyTheMaximumNumberOfParams) {
  EXPECT_EQ(ParseOk(ManyParams(static_cast<int>(kMaxParams))).size(), kMaxParams);
}

TEST(Params, RejectsOneParamOverTheMaximum) {
  Error e = ParseErr(ManyParams(static_cast<int>(kMaxParams) + 1));
  EXPECT_EQ(e.code, "InvalidParameter");
  EXPECT_NE(e.message.find("too many parameters"), std::string::npos);
}

TEST(Params, MaximumCountsQueryAndBodyTogether) {
  std::string body;
  for (int i = 1; i <= 2; ++i) body += (i > 1 ? "&" : "") + std::string("B.") + std::to_string(i) + "=x";
  EXPECT_EQ(ParseErr(ManyParams(static_cast<int>(kMaxParams) - 1), body).code, "InvalidParameter");
}

TEST(Params, RejectsTenThousandParamsQuickly) {
  const std::string q = ManyParams(10000);
  const auto start = std::chrono::steady_clock::now();
  Error e = ParseErr(q);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(e.code, "InvalidParameter");
  EXPECT_LT(took, std::chrono::milliseconds(500));
}

TEST(Params, RejectsValueThatIsNotUtf8) {
  for (const char* q : {"a=%FF", "a=%C0%AF", "a=%ED%A0%80", "a=%F4%90%80%80", "a=%E4%B8",
                        "a=%80", "a=\xff"}) {
    Error e = ParseErr(q);
    EXPECT_EQ(e.code, "InvalidParameter") << q;
    EXPECT_NE(e.message.find("UTF-8"), std::string::npos) << q;
  }
}

TEST(Params, RejectsKeyThatIsNotUtf8AndKeepsMessageValidUtf8) {
  Error e = ParseErr("%FF%FE=1");
  EXPECT_EQ(e.code, "InvalidParameter");
  EXPECT_TRUE(is_valid_utf8(e.message)) << e.message;
}

TEST(Params, RejectsNul) {
  EXPECT_EQ(ParseErr("a=x%00y").code, "InvalidParameter");
}

TEST(Params, RejectsEmptyKeyWithValue) {
  EXPECT_EQ(ParseErr("=x").code, "InvalidParameter");
}

TEST(Utf8, AcceptsWellFormedText) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("\xe4\xb8\xad\xe6\x96\x87"));   // 中文
  EXPECT_TRUE(is_valid_utf8("\xf0\x9f\x98\x80"));           // U+1F600
  EXPECT_TRUE(is_valid_utf8("\xf4\x8f\xbf\xbf"));           // U+10FFFF
  EXPECT_TRUE(is_valid_utf8("\xed\x9f\xbf"));               // U+D7FF
}

TEST(Utf8, RejectsMalformedText) {
  EXPECT_FALSE(is_valid_utf8("\xc0\x80"));           // overlong NUL
  EXPECT_FALSE(is_valid_utf8("\xe0\x80\xaf"));       // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));       // surrogate
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));   // > U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xe4\xb8"));           // truncated
  EXPECT_FALSE(is_valid_utf8("\xbf"));               // lone continuation
  EXPECT_FALSE(is_valid_utf8("\xe4\x41\x41"));       // bad continuation
}

TEST(IdsTest, RequestIdsAreVersion4UuidsInUpperCaseHex) {
  const std::regex v4("[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}");
  for (int i = 0; i < 200; ++i) {
    std::string id = new_request_id();
    EXPECT_TRUE(std::regex_match(id, v4)) << id;
  }
}

}  // namespace
}  // namespace sl::api
