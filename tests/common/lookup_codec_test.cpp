// The `lookup` control op: its request (runner_ids and their bounds) and its
// reply (nil entries, short maps), as the monitor and its clients see them.

#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "codec_test_support.hpp"

namespace rmon::protocol::codec_testing {
namespace {

ControlRequest lookup_of(std::vector<std::string> ids) {
  ControlRequest r;
  r.op = Op::kLookup;
  r.runner_ids = std::move(ids);
  return r;
}

// {v: 1, op: "lookup", runner_ids: <raw bytes>}
std::string lookup_frame(const std::string& runner_ids) {
  MapBuilder b;
  b.set("v", 1u).set("op", std::string("lookup")).raw("runner_ids", runner_ids);
  return b.build();
}

std::vector<std::string> full_ids(std::size_t n) {
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < n; ++i) {
    std::string id = std::to_string(i);
    id.resize(kMaxIdBytes, 'x');
    ids.push_back(std::move(id));
  }
  return ids;
}

// An array of `n` nils (n < 65536).
std::string nils(std::size_t n) {
  std::string out = {'\xdc', static_cast<char>(n >> 8), static_cast<char>(n & 0xff)};
  return out + std::string(n, '\xc0');
}

TEST(LookupCodec, RequestsRoundTrip) {
  for (const auto& ids :
       {std::vector<std::string>{"r-1"},
        std::vector<std::string>{"r-1", "r-1", "\xc3\xa9t\xc3\xa9"}, full_ids(kMaxLookupIds)}) {
    const ControlRequest r = lookup_of(ids);
    auto d = decode_control_request(encode_control_request(r));
    ASSERT_TRUE(d.ok()) << d.error().to_string();
    EXPECT_EQ(d.value(), r);
  }
}

// 1000 ids of 128 bytes do not fit the 64 KiB of the other frames.
TEST(LookupCodec, TheLargestRequestFitsTheControlRequestLimit) {
  const std::string frame = encode_control_request(lookup_of(full_ids(kMaxLookupIds)));
  EXPECT_GT(frame.size(), kMaxFrame);
  EXPECT_LE(frame.size(), kMaxControlRequestFrame);
  EXPECT_TRUE(decode_control_request(frame).ok());
  auto over = decode_control_request(std::string(kMaxControlRequestFrame + 1, '\x80'));
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(reason_of(over), "too_large");
}

TEST(LookupCodec, ALookupWithoutRunnerIdsIsMissingThem) {
  MapBuilder b;
  b.set("v", 1u).set("op", std::string("lookup"));
  auto d = decode_control_request(b.build());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(reason_of(d), "missing_field");
  EXPECT_EQ(d.error().field, "runner_ids");
}

TEST(LookupCodec, RunnerIdsOutOfBoundsAreRejectedNamingTheKey) {
  std::vector<std::string> too_many(kMaxLookupIds + 1, "r");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {pack(std::vector<std::string>{}), "bad_value"},                       // no ids
      {pack(too_many), "too_large"},                                         // 1001 ids
      {pack(std::vector<std::string>{std::string(129, 'r')}), "too_large"},  // 129 bytes
      {pack(std::vector<std::string>{"r-1", ""}), "bad_value"},              // an empty id
      {pack(std::vector<std::string>{"r-1", "\xff"}), "bad_value"},          // not UTF-8
      {pack(std::vector<int>{1}), "wrong_type"},                             // not a string
      {pack(std::string("r-1")), "wrong_type"},                              // not an array
      {pack(std::map<std::string, int>{{"r-1", 1}}), "wrong_type"},
      {std::string("\xc0", 1), "wrong_type"},  // nil
  };
  for (const auto& [ids, reason] : cases) {
    auto d = decode_control_request(lookup_frame(ids));
    ASSERT_FALSE(d.ok()) << reason;
    EXPECT_EQ(reason_of(d), reason);
    EXPECT_EQ(d.error().field, "runner_ids") << reason;
  }
  // Exactly the limits are accepted.
  std::vector<std::string> most(kMaxLookupIds, std::string(kMaxIdBytes, 'r'));
  EXPECT_TRUE(decode_control_request(lookup_frame(pack(most))).ok());
}

// A nil or a short map per id, the short map with exactly its five keys.
TEST(LookupCodec, RepliesRoundTripWithNilEntries) {
  ControlReply reply;
  reply.lookup = std::vector<std::optional<LookupEntry>>{
      LookupEntry{"t-1", 3, RunnerState::kSuspect, false, 1200},
      std::nullopt,
      LookupEntry{"t-2", 1, RunnerState::kFailed, true, 0},
      LookupEntry{"t-3", 2, RunnerState::kCompleted, false, ~uint64_t{0}},
      std::nullopt,
  };
  reply.uptime_ms = 45'000;
  const std::string bytes = encode_control_reply(reply);
  auto d = decode_lookup_reply(bytes);
  ASSERT_TRUE(d.ok()) << d.error().to_string();
  EXPECT_TRUE(d->ok);
  EXPECT_EQ(d->runners, *reply.lookup);
  EXPECT_EQ(d->uptime_ms, 45'000u);

  auto oh = msgpack::unpack(bytes.data(), bytes.size());
  auto m = oh.get().as<std::map<std::string, msgpack::object>>();
  EXPECT_EQ(m.size(), 3u);  // ok, runners, uptime_ms
  const auto runners = m.at("runners").as<std::vector<msgpack::object>>();
  ASSERT_EQ(runners.size(), 5u);
  EXPECT_TRUE(runners[1].is_nil());
  auto first = runners[0].as<std::map<std::string, msgpack::object>>();
  EXPECT_EQ(first.size(), 5u);
  EXPECT_EQ(first.at("state").as<std::string>(), "suspect");
  EXPECT_EQ(first.at("timed_out").as<bool>(), false);
  EXPECT_EQ(first.at("state_for_ms").as<uint64_t>(), 1200u);
}

TEST(LookupCodec, AReplyWithoutUptimeHasNone) {
  ControlReply reply;
  reply.lookup = std::vector<std::optional<LookupEntry>>{std::nullopt};
  auto d = decode_lookup_reply(encode_control_reply(reply));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->uptime_ms, std::nullopt);
  EXPECT_EQ(d->runners.size(), 1u);
}

TEST(LookupCodec, ARefusalIsAnAnswerNotARejection) {
  auto d = decode_lookup_reply(
      encode_control_reply(ControlReply::failure("bad_request", "too_large: runner_ids")));
  ASSERT_TRUE(d.ok()) << d.error().to_string();
  EXPECT_FALSE(d->ok);
  EXPECT_EQ(d->error, "bad_request");
  EXPECT_EQ(d->detail, "too_large: runner_ids");
  EXPECT_TRUE(d->runners.empty());
}

TEST(LookupCodec, RepliesBreakingTheContractAreRejected) {
  const std::string entry = [] {
    MapBuilder e;
    e.set("task_id", std::string("t-1"))
        .set("attempt", 1u)
        .set("state", std::string("running"))
        .set("timed_out", false)
        .set("state_for_ms", 5u);
    return e.build();
  }();
  const auto reply_with = [](const std::string& runners) {
    MapBuilder b;
    b.set("ok", true).raw("runners", runners);
    return b.build();
  };
  const auto entry_with = [](const std::string& key, const std::string& value) {
    MapBuilder e;
    e.set("task_id", std::string("t-1"))
        .set("attempt", 1u)
        .set("state", std::string("running"))
        .set("timed_out", false)
        .set("state_for_ms", 5u)
        .raw(key, value);
    return "\x91" + e.build();
  };
  ASSERT_TRUE(decode_lookup_reply(reply_with("\x92" + entry + "\xc0")).ok());

  struct Case {
    std::string frame, reason, field;
  };
  const std::vector<Case> cases = {
      {MapBuilder().set("ok", true).build(), "missing_field", "runners"},
      {MapBuilder().set("runners", std::vector<int>{}).build(), "missing_field", "ok"},
      {reply_with(pack(7u)), "wrong_type", "runners"},
      {reply_with("\x91" + pack(std::string("r-1"))), "wrong_type", "runners"},
      {reply_with(nils(kMaxLookupIds + 1)), "too_large", "runners"},
      {reply_with(entry_with("attempt", pack(0u))), "bad_value", "attempt"},
      {reply_with(entry_with("state", pack(std::string("gone")))), "bad_value", "state"},
      {reply_with(entry_with("timed_out", pack(1u))), "wrong_type", "timed_out"},
      {reply_with(entry_with("state_for_ms", pack(-1))), "wrong_type", "state_for_ms"},
      {reply_with(entry_with("task_id", pack(std::string()))), "bad_value", "task_id"},
      {reply_with("\x91" + MapBuilder().set("task_id", std::string("t")).build()), "missing_field",
       "attempt"},
  };
  for (const Case& c : cases) {
    auto d = decode_lookup_reply(c.frame);
    ASSERT_FALSE(d.ok()) << c.reason << " " << c.field;
    EXPECT_EQ(reason_of(d), c.reason) << c.field;
    EXPECT_EQ(d.error().field, c.field) << c.reason;
  }
}

}  // namespace
}  // namespace rmon::protocol::codec_testing
