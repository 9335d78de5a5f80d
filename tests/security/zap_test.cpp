// The ZAP handler's decisions, without sockets: every result it can give.

#include <gtest/gtest.h>

#include <cstring>

#include "rmon/security/zap.hpp"
#include "security_test_support.hpp"

namespace rmon::security {
namespace {

namespace fs = std::filesystem;
using testing::enroll;

class ZapDecision : public ::testing::Test {
 protected:
  ZapDecision()
      : runner_(enroll(dir_.path(), "runner-a", Role::kRunner, "a-")),
        keyring_(dir_.path()),
        view_(keyring_) {}

  ZapRequest request(std::string domain, const PublicKey& key, std::string mechanism = "CURVE") {
    const auto& b = key.bytes();
    return {"1.0",
            "7",
            std::move(domain),
            "10.1.2.3",
            "",
            std::move(mechanism),
            {std::string(b.begin(), b.end())}};
  }

  rmon::testing::TempDir dir_;
  const KeyPair runner_;
  Keyring keyring_;
  KeyringView view_;
};

TEST_F(ZapDecision, AnEnrolledKeyOnADomainOfItsRoleIsAdmittedWithItsKeyAsUserId) {
  const ZapReply r = decide_zap(request("hb", runner_.public_key), view_);
  EXPECT_EQ(r.result, ZapResult::kAllowed);
  EXPECT_EQ(r.status_code, "200");
  EXPECT_EQ(r.user_id, runner_.public_key.z85());
  EXPECT_NE(r.detail.find("runner-a"), std::string::npos);
}

TEST_F(ZapDecision, EverythingElseIsRefused400) {
  const PublicKey stranger = KeyPair::generate().public_key;
  struct Row {
    ZapRequest request;
    ZapResult result;
    std::string detail;
  };
  ZapRequest bad_version = request("hb", runner_.public_key);
  bad_version.version = "2.0";
  ZapRequest short_key = request("hb", runner_.public_key);
  short_key.credentials[0].resize(31);
  const std::vector<Row> rows = {
      {request("hb", stranger), ZapResult::kUnknownKey, "key not enrolled: " + stranger.z85()},
      {request("control", runner_.public_key), ZapResult::kRoleDenied, "runner-a"},
      {request("hb", runner_.public_key, "NULL"), ZapResult::kBadMechanism, "mechanism NULL"},
      {request("hb", runner_.public_key, "PLAIN"), ZapResult::kBadMechanism, "PLAIN"},
      {request("nope", runner_.public_key), ZapResult::kBadDomain, "\"nope\""},
      {bad_version, ZapResult::kMalformed, "version"},
      {short_key, ZapResult::kMalformed, "credentials"},
  };
  for (const Row& row : rows) {
    const ZapReply r = decide_zap(row.request, view_);
    EXPECT_EQ(zap_result_name(r.result), zap_result_name(row.result)) << row.detail;
    EXPECT_EQ(r.status_code, "400");
    EXPECT_TRUE(r.user_id.empty());
    EXPECT_NE(r.detail.find(row.detail), std::string::npos) << r.detail;
  }
}

TEST_F(ZapDecision, RequestsAreParsedFromTheirFrames) {
  std::vector<zmq::message_t> frames;
  for (const char* f : {"1.0", "id", "hb", "127.0.0.1", "", "CURVE", "k"})
    frames.emplace_back(f, std::strlen(f));
  const auto r = parse_zap_request(frames);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->domain, "hb");
  EXPECT_EQ(r->mechanism, "CURVE");
  EXPECT_EQ(r->credentials, std::vector<std::string>{"k"});
  frames.resize(5);
  EXPECT_FALSE(parse_zap_request(frames));
}

}  // namespace
}  // namespace rmon::security
