// Heartbeat encoding and decoding: round trips and every rejection reason.
// The decoder's routes are compared in heartbeat_routes_test.cpp.

#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <string>
#include <vector>

#include "codec_test_support.hpp"

namespace rmon::protocol::codec_testing {
namespace {

TEST(HeartbeatCodec, RoundTripsEveryField) {
  const Heartbeat hb = full_heartbeat();
  auto decoded = decode_heartbeat(heartbeat_topic(hb.runner.runner_id), encode_heartbeat(hb));
  ASSERT_TRUE(decoded.ok()) << decoded.error().to_string();
  EXPECT_EQ(decoded.value(), hb);
}

TEST(HeartbeatCodec, EncodesExactlyTheDocumentedKeys) {
  Heartbeat hb;
  hb.runner.runner_id = "r";
  hb.runner.task_id = "t";
  hb.runner.pool = "p";
  const std::string bytes = encode_heartbeat(hb);
  auto oh = msgpack::unpack(bytes.data(), bytes.size());
  auto m = oh.get().as<std::map<std::string, msgpack::object>>();
  std::vector<std::string> keys;
  for (const auto& [k, v] : m) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"attempt", "pool", "pool_type", "runner_id", "seq",
                                            "state", "task_id", "v"}));
}

TEST(HeartbeatCodec, EachPoolTypeKeepsItsOwnIdentifier) {
  for (PoolType t : {PoolType::kLocalProcess, PoolType::kDocker, PoolType::kKubernetes}) {
    Heartbeat hb = full_heartbeat();
    hb.runner.pool_type = t;
    hb.runner.container_id.reset();
    if (t == PoolType::kLocalProcess) hb.runner.pid = 4242;
    if (t == PoolType::kDocker) hb.runner.container_id = std::string(64, 'a');
    if (t == PoolType::kKubernetes) hb.runner.job_name = "job-abc-123";
    auto d = decode_heartbeat(heartbeat_topic(hb.runner.runner_id), encode_heartbeat(hb));
    ASSERT_TRUE(d.ok()) << to_string(t);
    EXPECT_EQ(d.value(), hb) << to_string(t);
  }
}

TEST(HeartbeatCodec, AttemptDefaultsToOneAndOptionalsStayAbsent) {
  auto d = decode_heartbeat("hb/r-1", valid_heartbeat_map().build());
  ASSERT_TRUE(d.ok()) << d.error().to_string();
  EXPECT_EQ(d->runner.attempt, 1u);
  EXPECT_FALSE(d->runner.pid);
  EXPECT_FALSE(d->runner.progress);
  EXPECT_FALSE(d->timeout_ms);
  EXPECT_EQ(d->seq, 7u);
}

TEST(HeartbeatCodec, UnknownKeysAreIgnored) {
  auto d = decode_heartbeat("hb/r-1", valid_heartbeat_map()
                                          .set("future_key", std::vector<int>{1, 2, 3})
                                          .set("another", std::string("x"))
                                          .build());
  EXPECT_TRUE(d.ok());
}

TEST(HeartbeatCodec, ReusedStructDoesNotKeepOptionalsOfAnEarlierMessage) {
  Heartbeat hb;
  const Heartbeat full = full_heartbeat();
  ASSERT_TRUE(
      decode_heartbeat_into(heartbeat_topic(full.runner.runner_id), encode_heartbeat(full), hb));
  ASSERT_TRUE(decode_heartbeat_into("hb/r-1", valid_heartbeat_map().build(), hb));
  EXPECT_FALSE(hb.runner.container_id);
  EXPECT_FALSE(hb.runner.progress);
  EXPECT_FALSE(hb.timeout_ms);
  EXPECT_FALSE(hb.sent_at_ms);
  EXPECT_EQ(hb.runner.attempt, 1u);
}

TEST(HeartbeatCodec, ProgressOfEveryKindRoundTrips) {
  msgpack::sbuffer ext_buf;
  msgpack::packer<msgpack::sbuffer> ep(ext_buf);
  ep.pack_ext(3, 5);
  ep.pack_ext_body("abc", 3);
  const std::vector<std::string> kinds = {
      pack(msgpack::type::nil_t()),
      pack(true),
      pack(42u),
      pack(-42),
      pack(1.5),
      pack(1.5f),
      pack(std::string("half way")),
      pack(std::vector<char>{'\x00', '\x01'}),
      pack(std::vector<int>{1, 2, 3}),
      pack(std::map<std::string, std::vector<int>>{{"steps", {1, 2}}}),
      std::string(ext_buf.data(), ext_buf.size()),
  };
  for (const std::string& progress : kinds) {
    Heartbeat hb = full_heartbeat();
    hb.runner.progress = progress;
    auto d = decode_heartbeat(heartbeat_topic(hb.runner.runner_id), encode_heartbeat(hb));
    ASSERT_TRUE(d.ok()) << d.error().to_string();
    EXPECT_EQ(d->runner.progress, progress);
  }
}

TEST(HeartbeatCodec, ProgressAtTheLimitIsAcceptedAndOneByteOverIsRejected) {
  // A str8/16 header plus body: choose the body so the encoding is exactly 4096.
  const std::string at_limit = pack(std::string(kMaxProgressBytes - 3, 'x'));
  ASSERT_EQ(at_limit.size(), kMaxProgressBytes);
  const std::string over = pack(std::string(kMaxProgressBytes - 2, 'x'));
  EXPECT_TRUE(decode_heartbeat("hb/r-1", valid_heartbeat_map().raw("progress", at_limit).build()));
  auto d = decode_heartbeat("hb/r-1", valid_heartbeat_map().raw("progress", over).build());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(reason_of(d), "too_large");
  EXPECT_EQ(d.error().field, "progress");
}

TEST(HeartbeatCodec, MissingRequiredKeysAreNamed) {
  for (const char* key : {"v", "runner_id", "task_id", "pool", "pool_type", "state", "seq"}) {
    auto d = decode_heartbeat("hb/r-1", valid_heartbeat_map().erase(key).build());
    ASSERT_FALSE(d.ok()) << key;
    EXPECT_EQ(reason_of(d), "missing_field") << key;
    EXPECT_EQ(d.error().field, key);
  }
}

TEST(HeartbeatCodec, WrongTypesAreRejected) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"v", pack(std::string("1"))},
      {"runner_id", pack(7)},
      {"task_id", pack(true)},
      {"attempt", pack(-1)},
      {"attempt", pack(1.5)},
      {"pool", pack(std::vector<int>{})},
      {"pool_type", pack(1)},
      {"pid", pack(std::string("12"))},
      {"container_id", pack(1)},
      {"job_name", pack(false)},
      {"state", pack(0)},
      {"seq", pack(-3)},
      {"timeout_ms", pack(std::string())},
      {"interval_ms", pack(2.5)},
      {"sent_at_ms", pack(std::string("now"))},
  };
  for (const auto& [key, bytes] : cases) {
    auto d = decode_heartbeat("hb/r-1", valid_heartbeat_map().raw(key, bytes).build());
    ASSERT_FALSE(d.ok()) << key;
    EXPECT_EQ(reason_of(d), "wrong_type") << key;
    EXPECT_EQ(d.error().field, key);
  }
}

TEST(HeartbeatCodec, BadValuesAreRejected) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"attempt", pack(0u)},
      {"pool_type", pack(std::string("vm"))},
      {"state", pack(std::string("suspect"))},
      {"state", pack(std::string("RUNNING"))},
      {"task_id", pack(std::string())},
      {"pool", pack(std::string("\xff\xfe"))},
  };
  for (const auto& [key, bytes] : cases) {
    auto d = decode_heartbeat("hb/r-1", valid_heartbeat_map().raw(key, bytes).build());
    ASSERT_FALSE(d.ok()) << key;
    EXPECT_EQ(reason_of(d), "bad_value") << key;
  }
}

TEST(HeartbeatCodec, OtherVersionsAreRejected) {
  for (unsigned v : {0u, 2u, 100u}) {
    auto d = decode_heartbeat("hb/r-1", valid_heartbeat_map().set("v", v).build());
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(reason_of(d), "bad_version");
  }
}

TEST(HeartbeatCodec, IdentifiersLongerThan128BytesAreTooLarge) {
  const std::string id128(128, 'r');
  auto ok = decode_heartbeat("hb/" + id128, valid_heartbeat_map().set("runner_id", id128).build());
  EXPECT_TRUE(ok.ok());
  const std::string id129(129, 'r');
  auto d = decode_heartbeat("hb/r-1", valid_heartbeat_map().set("task_id", id129).build());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(reason_of(d), "too_large");
}

TEST(HeartbeatCodec, TopicMustNameTheSameRunner) {
  const std::string payload = valid_heartbeat_map().build();
  for (const char* topic : {"hb/r-2", "hb/", "r-1", "xx/r-1", "hb/r-1x", ""}) {
    auto d = decode_heartbeat(topic, payload);
    ASSERT_FALSE(d.ok()) << topic;
    EXPECT_EQ(reason_of(d), "topic_mismatch") << topic;
  }
}

TEST(HeartbeatCodec, FramesOver8KiBAreRejected) {
  std::string payload = valid_heartbeat_map().set("pad", std::string(8200, 'p')).build();
  ASSERT_GT(payload.size(), kMaxHeartbeatFrame);
  auto d = decode_heartbeat("hb/r-1", payload);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(reason_of(d), "too_large");
}

TEST(HeartbeatCodec, NonMapsAndTrailingBytesAreMalformed) {
  for (const std::string& bad :
       {pack(std::vector<int>{1}), pack(5), std::string(), valid_heartbeat_map().build() + "x",
        pack(std::map<int, int>{{1, 2}})}) {
    auto d = decode_heartbeat("hb/r-1", bad);
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(reason_of(d), "malformed");
  }
}

}  // namespace
}  // namespace rmon::protocol::codec_testing
