// Timeout events, acks, control requests and replies, progress validation:
// round trips and rejection reasons.

#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <limits>
#include <map>
#include <string>
#include <vector>

#include "codec_test_support.hpp"
#include "rmon/protocol/msgmap.hpp"

namespace rmon::protocol::codec_testing {
namespace {

TimeoutEvent sample_event() {
  TimeoutEvent ev;
  ev.event_id = "mon-1:00000042";
  ev.runner = full_heartbeat().runner;
  ev.runner.pid = 12;
  ev.last_seq = 99;
  ev.last_heartbeat_ms = 1'700'000'000'000;
  ev.detected_at_ms = 1'700'000'060'001;
  ev.timeout_ms = 60000;
  ev.delivery = 2;
  return ev;
}

TEST(TimeoutEventCodec, RoundTripsEveryField) {
  const TimeoutEvent ev = sample_event();
  auto d = decode_timeout_event(encode_timeout_event(ev));
  ASSERT_TRUE(d.ok()) << d.error().to_string();
  EXPECT_EQ(d.value(), ev);
}

TEST(TimeoutEventCodec, CarriesTypeAndVersion) {
  const std::string bytes = encode_timeout_event(sample_event());
  auto oh = msgpack::unpack(bytes.data(), bytes.size());
  auto m = oh.get().as<std::map<std::string, msgpack::object>>();
  EXPECT_EQ(m.at("type").as<std::string>(), "runner_timeout");
  EXPECT_EQ(m.at("v").as<unsigned>(), 1u);
  EXPECT_EQ(m.count("seq"), 0u);  // an event says last_seq
}

TEST(TimeoutEventCodec, WrongTypeWordIsRejected) {
  const std::string bytes = encode_timeout_event(sample_event());
  auto oh = msgpack::unpack(bytes.data(), bytes.size());
  auto m = oh.get().as<std::map<std::string, msgpack::object>>();
  MapBuilder b;
  for (const auto& [k, v] : m) b.raw(k, pack(v));
  b.set("type", std::string("ack"));
  auto d = decode_timeout_event(b.build());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(reason_of(d), "bad_value");
  b.erase("delivery").set("type", std::string("runner_timeout"));
  auto m2 = decode_timeout_event(b.build());
  ASSERT_FALSE(m2.ok());
  EXPECT_EQ(reason_of(m2), "missing_field");
  EXPECT_EQ(m2.error().field, "delivery");
}

TEST(AckCodec, RoundTrips) {
  const Ack ack{"task-queue", "mon-1:7"};
  auto d = decode_ack(encode_ack(ack));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d.value(), ack);
}

TEST(AckCodec, RejectsMissingGroupAndWrongType) {
  MapBuilder b;
  b.set("v", 1u).set("type", std::string("ack")).set("event_id", std::string("e"));
  auto d = decode_ack(b.build());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(reason_of(d), "missing_field");
  EXPECT_EQ(d.error().field, "group");
  b.set("group", 5);
  EXPECT_EQ(reason_of(decode_ack(b.build())), "wrong_type");
  b.set("group", std::string("g")).set("v", 2u);
  EXPECT_EQ(reason_of(decode_ack(b.build())), "bad_version");
}

TEST(ControlCodec, EveryRequestRoundTrips) {
  std::vector<ControlRequest> reqs;
  reqs.push_back({Op::kPing, {}, {}, {}, {}, {}, {}, {}});
  reqs.push_back({Op::kGet, "r-1", {}, {}, {}, {}, {}, {}});
  reqs.push_back({Op::kList, {}, RunnerState::kSuspect, "gpu", 10, {}, {}, {}});
  reqs.push_back({Op::kList, {}, {}, {}, 10, "r-5", {}, {}});  // the next page
  reqs.push_back({Op::kCount, {}, RunnerState::kFailed, {}, {}, {}, {}, {}});
  Heartbeat add = full_heartbeat();
  add.seq = 0;
  add.sent_at_ms.reset();
  reqs.push_back({Op::kAdd, {}, {}, {}, {}, {}, add, {}});
  reqs.push_back({Op::kRemove, "r-1", {}, {}, {}, {}, {}, {}});
  reqs.push_back({Op::kSetState, "r-1", RunnerState::kCompleted, {}, {}, {}, {}, {}});
  reqs.push_back({Op::kStats, {}, {}, {}, {}, {}, {}, {}});
  for (const ControlRequest& r : reqs) {
    auto d = decode_control_request(encode_control_request(r));
    ASSERT_TRUE(d.ok()) << to_string(r.op) << ": " << d.error().to_string();
    EXPECT_EQ(d.value(), r) << to_string(r.op);
  }
}

TEST(ControlCodec, AddRunnerNeedsNoSeqOrVersion) {
  ControlRequest r{Op::kAdd, {}, {}, {}, {}, {}, full_heartbeat(), {}};
  const std::string bytes = encode_control_request(r);
  auto oh = msgpack::unpack(bytes.data(), bytes.size());
  auto m = oh.get().as<std::map<std::string, msgpack::object>>();
  auto runner = m.at("runner").as<std::map<std::string, msgpack::object>>();
  EXPECT_EQ(runner.count("seq"), 0u);
  EXPECT_EQ(runner.count("v"), 0u);
}

TEST(ControlCodec, RequestsMissingTheirKeysAreRejected) {
  MapBuilder b;
  b.set("v", 1u).set("op", std::string("get"));
  auto d = decode_control_request(b.build());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(reason_of(d), "missing_field");
  EXPECT_EQ(d.error().field, "runner_id");
  b.set("op", std::string("set_state")).set("runner_id", std::string("r"));
  EXPECT_EQ(decode_control_request(b.build()).error().field, "state");
  b.set("op", std::string("add"));
  EXPECT_EQ(decode_control_request(b.build()).error().field, "runner");
  b.set("runner", std::map<std::string, int>{{"pool", 1}});
  EXPECT_EQ(reason_of(decode_control_request(b.build())), "wrong_type");
}

TEST(ControlCodec, UnknownOpIsItsOwnReason) {
  MapBuilder b;
  b.set("v", 1u).set("op", std::string("reboot"));
  auto d = decode_control_request(b.build());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(reason_of(d), "unknown_op");
}

RunnerView sample_view(const std::string& id) {
  RunnerView v;
  v.runner = full_heartbeat().runner;
  v.runner.runner_id = id;
  v.state = RunnerState::kSuspect;
  v.last_seq = 5;
  v.last_heartbeat_ms = 1'700'000'000'000;
  v.silence_ms = 31000;
  v.timeout_ms = 60000;
  v.added_at_ms = 1'699'999'000'000;
  v.interval_ms = 1000;
  return v;
}

TEST(ControlCodec, EveryReplyShapeRoundTrips) {
  std::vector<ControlReply> replies(6);
  replies[0].version = 1;
  replies[1].runner = sample_view("r-1");
  replies[2].runners = std::vector<RunnerView>{sample_view("a"), sample_view("b")};
  replies[2].more = true;
  replies[3].count = 17;
  replies[4].removed = true;
  replies[5].stats = {{"heartbeats", 10}, {"rejected", 2}, {"timeouts", 1}, {"runners", 3}};
  replies.push_back(ControlReply::failure("not_found", "no runner r-9"));
  for (const ControlReply& r : replies) {
    auto d = decode_control_reply(encode_control_reply(r));
    ASSERT_TRUE(d.ok()) << d.error().to_string();
    EXPECT_EQ(d.value(), r);
  }
}

// list replies are budgeted with encoded_size_bound before encoding: it must
// never be below what a runner really takes, whatever its fields hold.
TEST(ControlCodec, EncodedSizeBoundIsAtLeastTheEncodedSize) {
  ControlReply empty;
  empty.runners.emplace();
  const std::size_t base = encode_control_reply(empty).size();
  std::vector<RunnerView> views = {sample_view("r")};
  RunnerView big = sample_view(std::string(kMaxIdBytes, 'r'));
  big.runner.task_id = std::string(kMaxIdBytes, 't');
  big.runner.pool = std::string(kMaxIdBytes, 'p');
  big.runner.pool_type = PoolType::kLocalProcess;  // the longest name
  big.runner.attempt = big.last_seq = big.silence_ms = big.timeout_ms = ~uint64_t{0};
  big.runner.pid = ~uint64_t{0};
  big.last_heartbeat_ms = big.added_at_ms = INT64_MIN;
  big.interval_ms = ~uint64_t{0};
  big.runner.container_id = std::string(kMaxShortString, 'c');
  big.runner.job_name = std::string(kMaxShortString, 'j');
  big.runner.progress = "\xc5\x0f\xf0" + std::string(4080, 'x');
  big.state = RunnerState::kCompleted;  // the longest state name
  views.push_back(big);
  for (const RunnerView& v : views) {
    ControlReply one;
    one.runners = std::vector<RunnerView>{v};
    EXPECT_LE(encode_control_reply(one).size() - base, encoded_size_bound(v));
  }
}

TEST(ControlCodec, FailureReplyHasExactlyOkErrorDetail) {
  const std::string bytes = encode_control_reply(ControlReply::failure("bad_request", "x"));
  auto oh = msgpack::unpack(bytes.data(), bytes.size());
  auto m = oh.get().as<std::map<std::string, msgpack::object>>();
  EXPECT_EQ(m.size(), 3u);
  EXPECT_FALSE(m.at("ok").as<bool>());
}

TEST(Progress, ValidateAcceptsOneValueAndRejectsGarbage) {
  EXPECT_TRUE(validate_progress(pack(std::vector<int>{1, 2})));
  EXPECT_EQ(reason_of(validate_progress(std::string("\x92\x01", 2))), "malformed");
  EXPECT_EQ(reason_of(validate_progress(pack(1) + pack(2))), "malformed");
  EXPECT_EQ(reason_of(validate_progress(pack(std::string(5000, 'x')))), "too_large");
}

}  // namespace
}  // namespace rmon::protocol::codec_testing

// JSON has no NaN or infinity: a payload or progress holding one (MessagePack
// carries them) is written as null, so a page's JSON.parse never fails on it.
TEST(ToJson, NonFiniteFloatsAreNull) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(4);
  pk.pack_double(std::numeric_limits<double>::quiet_NaN());
  pk.pack_double(std::numeric_limits<double>::infinity());
  pk.pack_double(-std::numeric_limits<double>::infinity());
  pk.pack_double(1.5);
  EXPECT_EQ(rmon::protocol::to_json(std::string_view(buf.data(), buf.size())),
            "[null,null,null,1.5]");
}
