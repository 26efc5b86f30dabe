// The stored form of an event (SPEC.md §2.1, events/codec.h): canonical JSON,
// the SHA-256 hash chain, and a strict decoder that rejects anything it did
// not write.

#include "events/codec.h"

#include <openssl/evp.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <variant>
#include <vector>

namespace sl {
namespace {

using ordered_json = nlohmann::ordered_json;

// ---- generic walks over each() ----------------------------------------------

// Gives every field a distinct, non-default value.
struct Filler {
  int n = 0;
  void operator()(const char* name, std::string& s) { s = std::string(name) + "-" + std::to_string(++n); }
  void operator()(const char*, bool& b) { b = true; }
  void operator()(const char* name, std::vector<std::string>& v) {
    v = {std::string(name) + "-a", std::string(name) + "-b", std::to_string(++n)};
  }
  template <class T>
  void operator()(const char*, T& nested) {
    nested.each(*this);
  }
};

// Every field as "path=value", independent of the codec.
struct Flattener {
  std::vector<std::string>& out;
  std::string prefix;
  void operator()(const char* name, const std::string& s) { out.push_back(prefix + name + "=" + s); }
  void operator()(const char* name, bool b) { out.push_back(prefix + name + "=" + (b ? "true" : "false")); }
  void operator()(const char* name, const std::vector<std::string>& v) {
    std::string joined;
    for (const auto& s : v) joined += "[" + s + "]";
    out.push_back(prefix + name + "=" + joined);
  }
  template <class T>
  void operator()(const char* name, const T& nested) {
    const_cast<T&>(nested).each(Flattener{out, prefix + name + "."});
  }
};

std::vector<std::string> flatten(const EventData& d) {
  std::vector<std::string> out;
  std::visit([&](const auto& x) { const_cast<std::decay_t<decltype(x)>&>(x).each(Flattener{out, ""}); }, d);
  return out;
}

template <class F, std::size_t I = 0>
void for_each_event_type(F&& f) {
  if constexpr (I < std::variant_size_v<EventData>) {
    std::variant_alternative_t<I, EventData> data;
    Filler filler;
    data.each(filler);
    f(EventData(std::move(data)));
    for_each_event_type<F, I + 1>(std::forward<F>(f));
  }
}

// ---- fixtures -----------------------------------------------------------------

const std::string kPrev = sha256_hex("the previous event");

Event sample(EventData data, const std::string& prev_hash = kPrev) {
  Event e;
  e.seq = 7;
  e.time_us = 1'700'000'000'123'456;
  e.actor = Actor{"1234567890123456", "LTAIabcdefghijklmnopqrst"};
  e.request_id = "6A7B1C2D-0000-4000-8000-00000000000A";
  e.region = "cn-hangzhou";
  e.data = std::move(data);
  e.prev_hash = prev_hash;
  return e;
}

Event shared_event() {
  return sample(ImageShared{"m-0000000000000000000a", {"1234567890123456", "9007199254740993"}});
}

Event image_event(const std::string& name) {
  Origin origin;
  origin.marketplace_derived = true;
  origin.product_code = "cmjj022001";
  origin.paid = true;
  return sample(ImageCreated{"m-0000000000000000000b", "1234567890123456", "cn-hangzhou", name, "custom", "", origin,
                             "Available"});
}

// hex SHA-256(raw prev || body), computed here with OpenSSL, not with the codec.
std::string independent_hash(const std::string& prev_hex, const std::string& body) {
  std::string raw;
  for (std::size_t i = 0; i < prev_hex.size(); i += 2) {
    raw += static_cast<char>(std::stoi(prev_hex.substr(i, 2), nullptr, 16));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx, raw.data(), raw.size());
  EVP_DigestUpdate(ctx, body.data(), body.size());
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

// The stored text with the "hash" member removed, re-serialised in place.
std::string without_hash(const std::string& stored) {
  ordered_json j = ordered_json::parse(stored);
  j.erase("hash");
  return j.dump();
}

std::string replaced(std::string s, const std::string& from, const std::string& to) {
  std::size_t at = s.find(from);
  if (at == std::string::npos) {
    ADD_FAILURE() << "'" << from << "' not in " << s;
    return s;
  }
  return s.replace(at, from.size(), to);
}

testing::AssertionResult RejectedNaming(const std::string& text, const std::string& needle) {
  auto r = decode_event(text);
  if (r.ok()) return testing::AssertionFailure() << "decoded: " << text;
  if (r.error().http != 400 || r.error().code != "InvalidEvent") {
    return testing::AssertionFailure() << "wanted 400 InvalidEvent, got " << r.error().http << " " << r.error().code;
  }
  if (r.error().message.find(needle) == std::string::npos) {
    return testing::AssertionFailure() << "message '" << r.error().message << "' does not name '" << needle << "'";
  }
  return testing::AssertionSuccess();
}

bool keys_sorted(const ordered_json& j) {
  if (j.is_array()) {
    for (const auto& item : j) {
      if (!keys_sorted(item)) return false;
    }
  }
  if (!j.is_object()) return true;
  std::string last;
  bool first = true;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!first && !(last < it.key())) return false;
    last = it.key();
    first = false;
    if (!keys_sorted(it.value())) return false;
  }
  return true;
}

// ---- sealing and the chain ------------------------------------------------------

TEST(EventCodec, SealedBytesVerifyAgainstTheirPrevHash) {
  Event e = shared_event();
  std::string stored = seal_event(e);
  ASSERT_EQ(e.hash.size(), 64u);
  auto verified = verify_event_bytes(stored, kPrev);
  ASSERT_TRUE(verified.ok()) << verified.error().message;
  EXPECT_EQ(*verified, e.hash);
  EXPECT_EQ(encode_event(e), stored);
}

TEST(EventCodec, HashIsSha256OfRawPrevHashAndTheJsonWithoutHash) {
  Event e = image_event("with spaces, \"quotes\" and ✓");
  std::string stored = seal_event(e);
  EXPECT_EQ(e.hash, independent_hash(kPrev, without_hash(stored)));
  EXPECT_EQ(ordered_json::parse(stored)["hash"], e.hash);
}

TEST(EventCodec, FirstEventChainsFromSixtyFourZeros) {
  Event first = sample(AccountRegistered{"1234567890123456", "cn"}, std::string(kGenesisHash));
  first.seq = 1;
  std::string stored = seal_event(first);
  EXPECT_EQ(first.hash, independent_hash(std::string(64, '0'), without_hash(stored)));
  EXPECT_TRUE(verify_event_bytes(stored, kGenesisHash).ok());

  Event second = sample(AccessKeyIssued{"1234567890123456", "LTAIabcdefghijklmnopqrst"}, first.hash);
  second.seq = 2;
  std::string stored2 = seal_event(second);
  EXPECT_TRUE(verify_event_bytes(stored2, first.hash).ok());
  EXPECT_FALSE(verify_event_bytes(stored2, kGenesisHash).ok());
}

TEST(EventCodec, VerifyRejectsTheWrongPrevHash) {
  Event e = shared_event();
  std::string stored = seal_event(e);
  auto r = verify_event_bytes(stored, sha256_hex("another event"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().http, 400);
  EXPECT_EQ(r.error().code, "InvalidEvent");
}

TEST(EventCodec, StoredPrevHashMustNameThePreviousEvent) {
  // Bytes whose hash was computed over the real previous hash but whose text
  // claims another prev_hash: the hash checks out, the link does not.
  const std::string other = sha256_hex("some other event");
  Event e = shared_event();
  e.prev_hash = other;
  std::string stored = seal_event(e);
  std::string forged = replaced(stored, e.hash, independent_hash(kPrev, without_hash(stored)));
  EXPECT_FALSE(verify_event_bytes(forged, kPrev).ok());
  EXPECT_FALSE(verify_event_bytes(forged, other).ok());
}

TEST(EventCodec, VerifyRejectsBytesWithoutAHash) {
  Event e = shared_event();
  std::string stored = seal_event(e);
  EXPECT_FALSE(verify_event_bytes(without_hash(stored), kPrev).ok());
  EXPECT_FALSE(verify_event_bytes("", kPrev).ok());
}

TEST(EventCodec, FlippingAnySingleByteIsDetected) {
  Event e = image_event("LAMP stack (cn)");
  std::string stored = seal_event(e);
  for (std::size_t i = 0; i < stored.size(); ++i) {
    for (unsigned mask : {0x01u, 0x02u, 0x04u, 0x08u, 0x10u, 0x20u, 0x40u, 0x80u}) {
      std::string bad = stored;
      bad[i] = static_cast<char>(static_cast<unsigned char>(bad[i]) ^ mask);
      bool caught = !verify_event_bytes(bad, kPrev).ok() || !decode_event(bad).ok();
      EXPECT_TRUE(caught) << "byte " << i << " ('" << stored[i] << "') ^ " << mask << " went unnoticed";
    }
  }
}

TEST(EventCodec, QuotesInsideValuesCannotForgeTheHashMember) {
  Event e = image_event(R"(x,"hash":"0000000000000000000000000000000000000000000000000000000000000000",)");
  std::string stored = seal_event(e);
  ASSERT_TRUE(verify_event_bytes(stored, kPrev).ok());
  auto decoded = decode_event(stored);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(std::get<ImageCreated>(decoded->data).name, std::get<ImageCreated>(e.data).name);
}

TEST(EventCodec, PeekReadsSeqAndTime) {
  Event e = shared_event();
  auto r = peek_seq_time(seal_event(e));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->first, 7u);
  EXPECT_EQ(r->second, 1'700'000'000'123'456);
}

// ---- canonical form -------------------------------------------------------------

TEST(EventCodec, StoredFormHasSortedKeysAndNoWhitespace) {
  for_each_event_type([](EventData data) {
    Event e = sample(std::move(data));
    std::string stored = seal_event(e);
    ordered_json j = ordered_json::parse(stored);
    EXPECT_TRUE(keys_sorted(j)) << stored;
    EXPECT_EQ(j.dump(), stored) << "not compact";
    std::vector<std::string> keys;
    for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
    EXPECT_EQ(keys, (std::vector<std::string>{"actor", "data", "hash", "prev_hash", "region", "request_id", "seq",
                                              "time", "type"}));
  });
}

TEST(EventCodec, EncodingIsDeterministic) {
  Event a = image_event("same");
  Event b = image_event("same");
  EXPECT_EQ(seal_event(a), seal_event(b));
  EXPECT_EQ(encode_data(a.data), encode_data(b.data));
}

TEST(EventCodec, AccountIdsStayStrings) {
  Event e = sample(AccountRegistered{"9007199254740993", "intl"});
  e.actor.account_id = "1234567890123457";
  std::string stored = seal_event(e);
  EXPECT_NE(stored.find(R"("account_id":"9007199254740993")"), std::string::npos) << stored;
  EXPECT_NE(stored.find(R"("account_id":"1234567890123457")"), std::string::npos) << stored;
  auto decoded = decode_event(stored);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(std::get<AccountRegistered>(decoded->data).account_id, "9007199254740993");
  EXPECT_EQ(decoded->actor.account_id, "1234567890123457");
  EXPECT_TRUE(RejectedNaming(replaced(stored, R"("9007199254740993")", "9007199254740993"), "account_id"));
  EXPECT_TRUE(RejectedNaming(replaced(stored, R"("1234567890123457")", "1234567890123457"), "actor.account_id"));
}

// ---- decoding -------------------------------------------------------------------

TEST(EventCodec, EveryEventTypeDecodesToWhatWasEncoded) {
  std::set<std::string> types;
  for_each_event_type([&](EventData data) {
    Event e = sample(std::move(data));
    std::string stored = seal_event(e);
    auto r = decode_event(stored);
    ASSERT_TRUE(r.ok()) << e.type() << ": " << r.error().message;
    const Event& d = *r;
    types.insert(std::string(d.type()));
    EXPECT_EQ(d.type(), e.type());
    EXPECT_EQ(d.seq, e.seq);
    EXPECT_EQ(d.time_us, e.time_us);
    EXPECT_EQ(d.actor.account_id, e.actor.account_id);
    EXPECT_EQ(d.actor.access_key_id, e.actor.access_key_id);
    EXPECT_EQ(d.request_id, e.request_id);
    EXPECT_EQ(d.region, e.region);
    EXPECT_EQ(d.prev_hash, e.prev_hash);
    EXPECT_EQ(d.hash, e.hash);
    EXPECT_EQ(flatten(d.data), flatten(e.data)) << e.type();
    EXPECT_EQ(encode_event(d), stored);
  });
  // SPEC §2.1's list, plus the pending-invitation event.
  EXPECT_EQ(types, (std::set<std::string>{
                       "AccountRegistered", "AccessKeyIssued", "EncryptShareRoleAuthorized", "EncryptShareRoleRevoked",
                       "ImageCreated", "ImageBecameAvailable", "ImageShared", "ImageUnshared", "ImagePublicityChanged",
                       "ImageDeleted", "InstanceCreated", "SystemDiskReplaced", "SystemDiskReinitialized",
                       "InstanceDeleted", "ResourceDirectoryEnabled", "FolderCreated", "HandshakeCreated",
                       "AccountJoinedDirectory", "AccountMoved", "AccountLeftDirectory",
                       "SharingWithDirectoryEnabled", "ResourceShareCreated", "ResourceShareAssociated",
                       "ResourceShareDisassociated", "ResourceShareDeleted"}));
}

// The log reader decodes a long log into a few reused Events: whatever the
// Event held before (another type, the same type with longer lists or other
// values), the result is exactly a fresh decode.
TEST(EventCodec, DecodingIntoAReusedEventEqualsAFreshDecode) {
  std::vector<std::string> stored;
  for_each_event_type([&](EventData data) {
    Event e = sample(std::move(data));
    stored.push_back(seal_event(e));
  });
  Event sparse = sample(ImageDeleted{"m-1", false, {}});  // same type as one above, shorter list
  stored.push_back(seal_event(sparse));
  Event reused;
  for (int pass = 0; pass < 2; ++pass) {  // the second pass meets every type already held
    for (const std::string& bytes : stored) {
      ASSERT_TRUE(decode_event_into(bytes, reused).ok());
      auto fresh = decode_event(bytes);
      ASSERT_TRUE(fresh.ok());
      EXPECT_EQ(encode_event(reused), bytes);
      EXPECT_EQ(flatten(reused.data), flatten(fresh->data)) << fresh->type();
    }
  }
}

TEST(EventCodec, EmptyListsAndFalseFlagsRoundTrip) {
  Event e = sample(ImageDeleted{"m-0000000000000000000a", false, {}});
  auto r = decode_event(seal_event(e));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(flatten(r->data), flatten(e.data));
  EXPECT_NE(encode_event(e).find(R"("blocked_instances":[])"), std::string::npos);
}

TEST(EventCodec, UnknownTypeIsRejected) {
  Event e = shared_event();
  std::string stored = seal_event(e);
  EXPECT_TRUE(RejectedNaming(replaced(stored, R"("type":"ImageShared")", R"("type":"ImageStolen")"), "ImageStolen"));
  EXPECT_TRUE(RejectedNaming(replaced(stored, R"(,"type":"ImageShared")", ""), "type"));
}

TEST(EventCodec, MissingFieldIsRejected) {
  Event e = shared_event();
  std::string stored = seal_event(e);
  EXPECT_TRUE(RejectedNaming(replaced(stored, R"("request_id":")" + e.request_id + R"(",)", ""), "request_id"));
  EXPECT_TRUE(RejectedNaming(replaced(stored, R"(,"seq":7)", ""), "seq"));
  EXPECT_TRUE(RejectedNaming(replaced(stored, R"("hash":")" + e.hash + R"(",)", ""), "hash"));
  EXPECT_TRUE(RejectedNaming(replaced(stored, R"(,"image_id":"m-0000000000000000000a")", ""), "data.image_id"));
  EXPECT_TRUE(RejectedNaming(replaced(stored, R"("access_key_id":"LTAIabcdefghijklmnopqrst",)", ""),
                             "actor.access_key_id"));
  Event img = image_event("n");
  EXPECT_TRUE(RejectedNaming(replaced(seal_event(img), R"(,"paid":true)", ""), "data.origin.paid"));
}

TEST(EventCodec, ExtraFieldIsRejected) {
  Event e = shared_event();
  std::string stored = seal_event(e);
  EXPECT_TRUE(RejectedNaming(replaced(stored, R"("seq":7)", R"("seq":7,"surprise":1)"), "surprise"));
  EXPECT_TRUE(RejectedNaming(replaced(stored, R"("data":{)", R"("data":{"owner":"x",)"), "data.owner"));
  EXPECT_TRUE(RejectedNaming(replaced(stored, R"("actor":{)", R"("actor":{"secret":"s",)"), "actor.secret"));
  Event img = image_event("n");
  EXPECT_TRUE(RejectedNaming(replaced(seal_event(img), R"("origin":{)", R"("origin":{"zone":"a",)"),
                             "data.origin.zone"));
}

TEST(EventCodec, DuplicatedFieldIsRejected) {
  Event e = shared_event();
  std::string stored = seal_event(e);
  EXPECT_TRUE(RejectedNaming(replaced(stored, R"("seq":7)", R"("seq":7,"seq":7)"), "seq"));
  EXPECT_TRUE(RejectedNaming(replaced(stored, R"("type":"ImageShared")", R"("type":"ImageShared","type":"ImageShared")"),
                             "type"));
  EXPECT_TRUE(RejectedNaming(
      replaced(stored, R"("data":{)", R"("data":{"image_id":"m-0000000000000000000a",)"), "data.image_id"));
  EXPECT_TRUE(RejectedNaming(replaced(stored, R"("actor":{)", R"("actor":{"account_id":"1",)"), "actor.account_id"));
}

TEST(EventCodec, WrongTypeIsRejected) {
  Event e = shared_event();
  std::string stored = seal_event(e);
  EXPECT_TRUE(RejectedNaming(replaced(stored, R"("seq":7)", R"("seq":"7")"), "seq"));
  EXPECT_TRUE(RejectedNaming(replaced(stored, R"("seq":7)", R"("seq":-7)"), "seq"));
  EXPECT_TRUE(RejectedNaming(replaced(stored, R"("time":1700000000123456)", R"("time":1.5)"), "time"));
  EXPECT_TRUE(RejectedNaming(replaced(stored, R"("region":"cn-hangzhou")", R"("region":null)"), "region"));
  EXPECT_TRUE(RejectedNaming(replaced(stored, R"("accounts":[)", R"("accounts":[7,)"), "data.accounts"));
  EXPECT_TRUE(RejectedNaming(
      replaced(stored, R"("accounts":["1234567890123456","9007199254740993"])", R"("accounts":"1234567890123456")"),
      "data.accounts"));
  EXPECT_TRUE(RejectedNaming(replaced(stored, R"("actor":{)", R"("actor":[],"x":{)"), "actor"));
  EXPECT_TRUE(RejectedNaming(replaced(stored, R"("type":"ImageShared")", R"("type":1)"), "type"));
  EXPECT_TRUE(RejectedNaming(replaced(stored, R"("hash":")" + e.hash, R"("hash":")" + std::string(64, 'G')), "hash"));
  Event img = image_event("n");
  EXPECT_TRUE(RejectedNaming(replaced(seal_event(img), R"("paid":true)", R"("paid":"true")"), "data.origin.paid"));
  EXPECT_TRUE(RejectedNaming(replaced(seal_event(img), R"("paid":true)", R"("paid":1)"), "data.origin.paid"));
}

TEST(EventCodec, NonJsonAndNonObjectsAreRejected) {
  EXPECT_TRUE(RejectedNaming("", "malformed JSON"));
  EXPECT_TRUE(RejectedNaming("not json", "malformed JSON"));
  EXPECT_TRUE(RejectedNaming("{\"seq\":7,}", "malformed JSON"));
  EXPECT_TRUE(RejectedNaming("[1,2,3]", "object"));
  EXPECT_TRUE(RejectedNaming("\"ImageShared\"", "object"));
}

TEST(EventCodec, TruncatedJsonIsRejectedAtEveryLength) {
  Event e = shared_event();
  std::string stored = seal_event(e);
  for (std::size_t len = 0; len < stored.size(); ++len) {
    auto r = decode_event(std::string_view(stored).substr(0, len));
    ASSERT_FALSE(r.ok()) << "decoded a prefix of " << len << " bytes";
    EXPECT_EQ(r.error().code, "InvalidEvent");
    EXPECT_EQ(r.error().http, 400);
  }
  EXPECT_TRUE(RejectedNaming(stored.substr(0, stored.size() / 2), "malformed JSON"));
}

TEST(EventCodec, TrailingGarbageIsRejected) {
  Event e = shared_event();
  EXPECT_TRUE(RejectedNaming(seal_event(e) + "{}", "malformed JSON"));
}

}  // namespace
}  // namespace sl
