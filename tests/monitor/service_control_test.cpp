// runner-monitor's control socket over real sockets: every op answers,
// `lookup` up to its bounds and a bad_request past them, and malformed frames
// on any socket change nothing.

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "service_test_support.hpp"

namespace rmon::monitor {
namespace {

TEST_F(MonitorServiceTest, EveryControlOpAnswers) {
  ControlRequest ping;
  ping.op = Op::kPing;
  auto r = request(ping);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.version, 1u);

  ControlRequest add;
  add.op = Op::kAdd;
  add.runner = heartbeat("added", 0, 600'000);
  add.runner->runner.pool = "gpu";
  EXPECT_TRUE(request(add).ok);
  auto dup = request(add);
  EXPECT_FALSE(dup.ok);
  EXPECT_EQ(dup.error, "exists");
  publish(heartbeat("other", 1, 600'000));
  ASSERT_TRUE(wait_until([&] { return service->table().size() == 2; }));

  auto view = get("added");
  ASSERT_TRUE(view);
  EXPECT_EQ(view->runner.pool, "gpu");
  EXPECT_EQ(view->state, protocol::RunnerState::kRunning);

  // One `list` page: the ids it holds, then "+" when it says more match.
  const auto list = [&](std::optional<std::string> pool, std::optional<uint64_t> limit,
                        std::optional<std::string> after) {
    ControlRequest req;
    req.op = Op::kList;
    req.pool = std::move(pool);
    req.limit = limit;
    req.after = std::move(after);
    const auto reply = request(req);
    EXPECT_TRUE(reply.ok && reply.runners && reply.more) << reply.detail;
    std::vector<std::string> ids;
    for (const auto& v : reply.runners.value_or(std::vector<protocol::RunnerView>{})) {
      ids.push_back(v.runner.runner_id);
    }
    if (reply.more.value_or(false)) ids.push_back("+");
    return ids;
  };
  using Ids = std::vector<std::string>;
  EXPECT_EQ(list("gpu", std::nullopt, std::nullopt), Ids{"added"});
  // Paging: one at a time, on from the last id.
  EXPECT_EQ(list(std::nullopt, 1, std::nullopt), (Ids{"added", "+"}));
  EXPECT_EQ(list(std::nullopt, 1, "added"), Ids{"other"});

  ControlRequest count;
  count.op = Op::kCount;
  count.state = protocol::RunnerState::kRunning;
  EXPECT_EQ(request(count).count, 2u);

  ControlRequest set;
  set.op = Op::kSetState;
  set.runner_id = "added";
  set.state = protocol::RunnerState::kCompleted;
  EXPECT_TRUE(request(set).ok);
  EXPECT_EQ(get("added")->state, protocol::RunnerState::kCompleted);

  ControlRequest rm;
  rm.op = Op::kRemove;
  rm.runner_id = "added";
  EXPECT_EQ(request(rm).removed, true);
  EXPECT_EQ(request(rm).removed, false);

  ControlRequest missing;
  missing.op = Op::kGet;
  missing.runner_id = "added";
  auto nf = request(missing);
  EXPECT_FALSE(nf.ok);
  EXPECT_EQ(nf.error, "not_found");

  ControlRequest stats;
  stats.op = Op::kStats;
  const auto stats_reply = request(stats);
  std::map<std::string, uint64_t> counters(stats_reply.stats.begin(), stats_reply.stats.end());
  for (const char* key : {"heartbeats", "rejected", "timeouts", "runners"}) {
    EXPECT_TRUE(counters.count(key)) << key;
  }
  EXPECT_EQ(counters["runners"], 1u);

  auto unknown = request_raw(std::string("\x82\xa1v\x01\xa2op\xa6reboot", 14));
  EXPECT_FALSE(unknown.ok);
  EXPECT_EQ(unknown.error, "unknown_op");
}

TEST_F(MonitorServiceTest, MalformedFramesOnEverySocketChangeNothing) {
  publish(heartbeat("steady", 1, 600'000));
  ASSERT_TRUE(wait_until([&] { return service->table().size() == 1; }));
  const uint64_t rejected_before = stat("rejected");

  // Heartbeat socket: garbage payload, wrong topic, wrong frame count, too large.
  ASSERT_TRUE(send_frames(pub, {"hb/steady", "\xc1\xff\x00"}, zmq::send_flags::none));
  ASSERT_TRUE(send_frames(pub, {"hb/other", protocol::encode_heartbeat(heartbeat("steady", 9, 1))},
                          zmq::send_flags::none));
  ASSERT_TRUE(send_frames(pub, {"hb/steady"}, zmq::send_flags::none));
  ASSERT_TRUE(send_frames(pub, {"hb/steady", std::string(9000, '\x90')}, zmq::send_flags::none));
  ASSERT_TRUE(wait_until([&] { return stat("rejected") == rejected_before + 4; }));

  // Ack socket: garbage and a multi-frame message.
  ASSERT_TRUE(send_frames(acker, {"not msgpack"}, zmq::send_flags::none));
  ASSERT_TRUE(send_frames(acker, {"a", "b"}, zmq::send_flags::none));
  ASSERT_TRUE(wait_until([&] { return service->stats().ack_frames_rejected.load() == 2; }));

  // Control socket: garbage gets a bad_request reply.
  auto bad = request_raw("\xdd\xff\xff\xff\xff");
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.error, "bad_request");
  auto wrong = request_raw(std::string("\x82\xa1v\x01\xa2op\x07", 8));
  EXPECT_EQ(wrong.error, "bad_request");

  // Still serving, state untouched.
  auto view = get("steady");
  ASSERT_TRUE(view);
  EXPECT_EQ(view->last_seq, 1u);
  EXPECT_EQ(view->timeout_ms, 600'000u);
  EXPECT_EQ(service->table().size(), 1u);
  EXPECT_EQ(stat("timeouts"), 0u);
}

// `lookup` over the real ROUTER: the largest request (1000 ids of 128 bytes,
// over the 64 KiB of other frames) is answered; anything over the bounds is a
// bad_request that names them, and the socket keeps serving.
TEST_F(MonitorServiceTest, ALookupOfAThousandFullLengthIdsIsAnswered) {
  const auto long_id = [](int i) {
    std::string id = "runner-" + std::to_string(i) + "-";
    id.resize(protocol::kMaxIdBytes, 'x');
    return id;
  };
  std::vector<std::string> ids;
  for (int i = 0; i < static_cast<int>(protocol::kMaxLookupIds); ++i) ids.push_back(long_id(i));
  for (int i : {0, 499, 999}) {
    Heartbeat h = heartbeat(long_id(i), 1, 600'000);
    h.runner.task_id = "task-" + std::to_string(i);  // "task-" + the id is too long
    publish(h);
  }
  ASSERT_TRUE(wait_until([&] { return service->table().size() == 3; }));

  ControlRequest req;
  req.op = Op::kLookup;
  req.runner_ids = ids;
  const std::string frame = protocol::encode_control_request(req);
  ASSERT_GT(frame.size(), protocol::kMaxFrame);
  auto reply = protocol::decode_lookup_reply(exchange(frame));
  ASSERT_TRUE(reply.ok()) << reply.error().to_string();
  ASSERT_TRUE(reply->ok) << reply->error << ": " << reply->detail;
  ASSERT_EQ(reply->runners.size(), ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const auto& e = reply->runners[i];
    if (i != 0 && i != 499 && i != 999) {
      EXPECT_FALSE(e) << i;
      continue;
    }
    ASSERT_TRUE(e) << i;
    EXPECT_EQ(e->task_id, "task-" + std::to_string(i));
    EXPECT_EQ(e->attempt, 1u);
    EXPECT_EQ(e->state, protocol::RunnerState::kRunning);
    EXPECT_FALSE(e->timed_out);
    EXPECT_LT(e->state_for_ms, 600'000u);
  }
  EXPECT_TRUE(reply->uptime_ms);
  EXPECT_EQ(stat("lookups"), 1u);
  std::string body;
  EXPECT_TRUE(wait_until([&] {
    body = http_get(service->endpoints().metrics_port, "/metrics");
    return body.find("rmon_control_lookups_total 1\n") != std::string::npos;
  })) << body;
  EXPECT_NE(body.find("rmon_control_lookup_ids_total 1000\n"), std::string::npos) << body;
}

TEST_F(MonitorServiceTest, ALookupOutOfBoundsIsABadRequestAndChangesNothing) {
  publish(heartbeat("steady", 1, 600'000));
  ASSERT_TRUE(wait_until([&] { return service->table().size() == 1; }));
  const auto lookup_of = [](std::vector<std::string> ids) {
    ControlRequest req;
    req.op = Op::kLookup;
    req.runner_ids = std::move(ids);
    return protocol::encode_control_request(req);
  };
  const std::string over = lookup_of(std::vector<std::string>(
      protocol::kMaxLookupIds + 1, std::string(protocol::kMaxIdBytes, 'r')));
  ASSERT_LE(over.size(), protocol::kMaxControlRequestFrame);  // reaches the decoder
  const std::vector<std::string> frames = {
      over,
      lookup_of({}),
      lookup_of({"steady", std::string(protocol::kMaxIdBytes + 1, 'r')}),
      std::string("\x83\xa1v\x01\xa2op\xa6lookup\xaarunner_ids\x91\x07", 27),  // [7]
      std::string("\x82\xa1v\x01\xa2op\xa6lookup", 14),                        // no runner_ids
  };
  for (const std::string& f : frames) {
    auto reply = protocol::decode_lookup_reply(exchange(f));
    ASSERT_TRUE(reply.ok()) << reply.error().to_string();
    EXPECT_FALSE(reply->ok);
    EXPECT_EQ(reply->error, "bad_request");
    EXPECT_NE(reply->detail.find("runner_ids"), std::string::npos) << reply->detail;
    EXPECT_NE(reply->detail.find("1 to 1000 runner ids"), std::string::npos) << reply->detail;
  }
  EXPECT_EQ(stat("lookups"), 0u);
  auto view = get("steady");
  ASSERT_TRUE(view);
  EXPECT_EQ(view->state, protocol::RunnerState::kRunning);
  EXPECT_EQ(service->table().size(), 1u);
}

}  // namespace
}  // namespace rmon::monitor
