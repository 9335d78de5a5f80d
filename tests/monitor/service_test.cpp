// runner-monitor over real sockets on 127.0.0.1 (wildcard ports, read back).
// Runners that must not time out use a long timeout, runners that must use a
// short one, so scheduling noise cannot turn into a false or missed timeout.
// Every receive has a timeout; waits poll observable state, never sleep blindly.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <set>
#include <thread>

#include "../support/http_get.hpp"
#include "../support/temp_dir.hpp"
#include "rmon/protocol/codec.hpp"
#include "rmon/zmq_util.hpp"
#include "service.hpp"

namespace rmon::monitor {
namespace {

using namespace std::chrono_literals;
using protocol::ControlReply;
using protocol::ControlRequest;
using protocol::Heartbeat;
using protocol::Op;
using protocol::TimeoutEvent;

constexpr int kRecvTimeoutMs = 3000;

MonitorConfig test_config() {
  MonitorConfig c;
  c.heartbeat_endpoint = "tcp://127.0.0.1:*";
  c.groups = {"task-queue=tcp://127.0.0.1:*", "pool-manager=tcp://127.0.0.1:*"};
  c.ack_endpoint = "tcp://127.0.0.1:*";
  c.control_endpoint = "tcp://127.0.0.1:*";
  c.metrics_address = "127.0.0.1:0";
  c.shards = 8;
  c.redelivery_interval_ms = 300;
  c.retention_ms = 60'000;
  c.data_dir.clear();  // in memory; the restart tests set a folder
  return c;
}

Heartbeat heartbeat(const std::string& id, uint64_t seq, uint64_t timeout_ms) {
  Heartbeat h;
  h.runner.runner_id = id;
  h.runner.task_id = "task-" + id;
  h.runner.pool = "pool";
  h.runner.pool_type = protocol::PoolType::kKubernetes;
  h.runner.job_name = "job-" + id;
  h.seq = seq;
  h.timeout_ms = timeout_ms;
  return h;
}

SocketOptions client_opts() {
  SocketOptions o;
  o.recv_timeout_ms = kRecvTimeoutMs;
  o.send_timeout_ms = kRecvTimeoutMs;
  return o;
}

class MonitorServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { start(test_config()); }

  void start(MonitorConfig config) {
    service = std::make_unique<MonitorService>(std::move(config), SystemClock::instance());
    service->start();
    const auto& ep = service->endpoints();
    pub = make_socket(ctx, zmq::socket_type::pub, client_opts());
    pub.connect(ep.heartbeat);
    for (const auto& g : ep.groups) {
      consumers.push_back(make_socket(ctx, zmq::socket_type::pull, client_opts()));
      consumers.back().connect(g);
    }
    acker = make_socket(ctx, zmq::socket_type::push, client_opts());
    acker.connect(ep.ack);
    control = make_socket(ctx, zmq::socket_type::dealer, client_opts());
    control.connect(ep.control);
    wait_for_subscription();
  }

  void TearDown() override { service->stop(); }

  void publish(const Heartbeat& h) {
    ASSERT_TRUE(send_frames(
        pub, {protocol::heartbeat_topic(h.runner.runner_id), protocol::encode_heartbeat(h)},
        zmq::send_flags::none));
  }

  ControlReply request(const ControlRequest& req) {
    return request_raw(protocol::encode_control_request(req));
  }
  ControlReply request_raw(const std::string& bytes) {
    const std::string frame = exchange(bytes);
    if (frame.empty()) return ControlReply::failure("test", "bad envelope");
    auto reply = protocol::decode_control_reply(frame);
    EXPECT_TRUE(reply.ok());
    return reply.ok() ? reply.value() : ControlReply::failure("test", "undecodable");
  }
  // The reply frame to one request frame; empty when none came.
  std::string exchange(const std::string& bytes) {
    EXPECT_TRUE(send_frames(control, {"", bytes}, zmq::send_flags::none));
    std::vector<zmq::message_t> frames;
    EXPECT_TRUE(recv_frames(control, frames)) << "no control reply";
    if (frames.size() != 2) return {};
    return frames[1].to_string();
  }
  std::optional<protocol::RunnerView> get(const std::string& id) {
    ControlRequest req;
    req.op = Op::kGet;
    req.runner_id = id;
    auto r = request(req);
    if (!r.ok) return std::nullopt;
    return r.runner;
  }
  uint64_t stat(const std::string& name) {
    ControlRequest req;
    req.op = Op::kStats;
    for (const auto& [k, v] : request(req).stats) {
      if (k == name) return v;
    }
    ADD_FAILURE() << "no stat " << name;
    return 0;
  }

  // PUB/SUB joins asynchronously: publish a probe until the monitor has
  // counted one. The probe is an empty frame, rejected without touching the
  // table, so late copies of it change nothing a test looks at.
  void wait_for_subscription() {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      ASSERT_TRUE(send_frames(pub, {"hb/probe"}, zmq::send_flags::none));
      if (service->stats().heartbeat_frames.load() > 0) return;
      std::this_thread::sleep_for(5ms);
    }
    FAIL() << "subscription never reached the monitor";
  }

  // Waits until `pred` holds, polling; fails after `limit`.
  template <class Pred>
  bool eventually(Pred pred, std::chrono::milliseconds limit = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(2ms);
    }
    return pred();
  }

  std::optional<TimeoutEvent> receive(std::size_t group, int timeout_ms = kRecvTimeoutMs) {
    consumers[group].set(zmq::sockopt::rcvtimeo, timeout_ms);
    std::vector<zmq::message_t> frames;
    if (!recv_frames(consumers[group], frames)) return std::nullopt;
    EXPECT_EQ(frames.size(), 1u);
    auto ev = protocol::decode_timeout_event(frames[0].to_string_view());
    EXPECT_TRUE(ev.ok());
    if (!ev.ok()) return std::nullopt;
    return ev.value();
  }
  void ack(const std::string& group, const std::string& event_id) {
    ASSERT_TRUE(
        send_frames(acker, {protocol::encode_ack({group, event_id})}, zmq::send_flags::none));
  }

  // Stops the service (cleanly) and starts a new one with `config`.
  void restart(MonitorConfig config) {
    service.reset();  // stops it and closes its data folder
    consumers.clear();
    start(std::move(config));
  }

  zmq::context_t ctx;
  std::unique_ptr<MonitorService> service;
  zmq::socket_t pub;
  std::vector<zmq::socket_t> consumers;
  zmq::socket_t acker;
  zmq::socket_t control;
};

TEST_F(MonitorServiceTest, SilentRunnersReachEveryGroupExactlyOnce) {
  // Ten runners: 0-2 use a short timeout and stop; 3-9 have a long one.
  for (int i = 0; i < 10; ++i) {
    publish(heartbeat("r" + std::to_string(i), 1, i < 3 ? 200 : 600'000));
  }
  ASSERT_TRUE(eventually([&] { return service->table().size() == 10; }));
  const std::vector<std::string> groups = {"task-queue", "pool-manager"};
  // One event id per runner per group. A slow test may see a redelivery
  // (the interval is 300 ms) before its ack lands: the same event id again,
  // never a new one.
  std::vector<std::map<std::string, std::string>> ids(2);  // runner -> event id
  for (std::size_t g = 0; g < 2; ++g) {
    while (ids[g].size() < 3) {
      auto ev = receive(g);
      ASSERT_TRUE(ev) << "group " << groups[g] << " got only " << ids[g].size();
      EXPECT_EQ(ev->timeout_ms, 200u);
      EXPECT_EQ(ev->runner.task_id, "task-" + ev->runner.runner_id);
      EXPECT_EQ(ev->runner.job_name, "job-" + ev->runner.runner_id);
      EXPECT_GE(ev->detected_at_ms, ev->last_heartbeat_ms + 200);
      auto [it, fresh] = ids[g].emplace(ev->runner.runner_id, ev->event_id);
      EXPECT_TRUE(fresh || it->second == ev->event_id) << "a second event for one runner";
      ack(groups[g], ev->event_id);
    }
    std::set<std::string> got;
    for (const auto& [runner, id] : ids[g]) got.insert(runner);
    EXPECT_EQ(got, (std::set<std::string>{"r0", "r1", "r2"}));
  }
  // The ack thread counts an ack once committed; the dispatcher stops
  // counting the event as pending when it next takes the committed acks.
  ASSERT_TRUE(eventually([&] { return stat("acks") == 6 && stat("events_pending") == 0; }))
      << "acks " << stat("acks") << " pending " << stat("events_pending");
  EXPECT_EQ(stat("timeouts"), 3u);
  // Acknowledged: within several redelivery intervals nothing new arrives
  // (only a redelivery that was already on its way before an ack).
  for (std::size_t g = 0; g < 2; ++g) {
    while (auto ev = receive(g, g == 0 ? 1000 : 100)) {
      EXPECT_EQ(ids[g][ev->runner.runner_id], ev->event_id) << "new event after the acks";
      EXPECT_GT(ev->delivery, 1u);
    }
  }
  EXPECT_EQ(get("r0")->state, protocol::RunnerState::kFailed);
  EXPECT_EQ(get("r5")->state, protocol::RunnerState::kRunning);
}

TEST_F(MonitorServiceTest, AnUnacknowledgingGroupGetsRedeliveriesUntilItAcks) {
  publish(heartbeat("lost", 1, 150));
  auto first = receive(1);
  ASSERT_TRUE(first);
  auto tq = receive(0);
  ASSERT_TRUE(tq);
  ack("task-queue", tq->event_id);
  auto second = receive(1);
  ASSERT_TRUE(second);
  auto third = receive(1);
  ASSERT_TRUE(third);
  EXPECT_EQ(second->event_id, first->event_id);
  EXPECT_EQ(third->event_id, first->event_id);
  EXPECT_EQ(first->delivery, 1u);
  EXPECT_EQ(second->delivery, 2u);
  EXPECT_EQ(third->delivery, 3u);
  ack("pool-manager", first->event_id);
  ASSERT_TRUE(eventually([&] { return stat("events_pending") == 0; }));
  // Drain a redelivery that may have crossed the ack, then expect silence.
  while (auto late = receive(1, 400)) EXPECT_EQ(late->event_id, first->event_id);
  EXPECT_FALSE(receive(1, 1000));
  EXPECT_FALSE(receive(0, 100));  // the acknowledging group was never resent
  EXPECT_GE(stat("redeliveries"), 2u);
}

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
  ASSERT_TRUE(eventually([&] { return service->table().size() == 2; }));

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
  ASSERT_TRUE(eventually([&] { return service->table().size() == 1; }));
  const uint64_t rejected_before = stat("rejected");

  // Heartbeat socket: garbage payload, wrong topic, wrong frame count, too large.
  ASSERT_TRUE(send_frames(pub, {"hb/steady", "\xc1\xff\x00"}, zmq::send_flags::none));
  ASSERT_TRUE(send_frames(pub, {"hb/other", protocol::encode_heartbeat(heartbeat("steady", 9, 1))},
                          zmq::send_flags::none));
  ASSERT_TRUE(send_frames(pub, {"hb/steady"}, zmq::send_flags::none));
  ASSERT_TRUE(send_frames(pub, {"hb/steady", std::string(9000, '\x90')}, zmq::send_flags::none));
  ASSERT_TRUE(eventually([&] { return stat("rejected") == rejected_before + 4; }));

  // Ack socket: garbage and a multi-frame message.
  ASSERT_TRUE(send_frames(acker, {"not msgpack"}, zmq::send_flags::none));
  ASSERT_TRUE(send_frames(acker, {"a", "b"}, zmq::send_flags::none));
  ASSERT_TRUE(eventually([&] { return service->stats().ack_frames_rejected.load() == 2; }));

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

using rmon::testing::http_get;

TEST_F(MonitorServiceTest, MetricsEndpointServesCountersAndLateness) {
  publish(heartbeat("gone", 1, 150));
  auto ev = receive(0);
  ASSERT_TRUE(ev);
  ASSERT_TRUE(receive(1));
  // The dispatcher publishes its gauges and observes lateness after it has
  // sent: a consumer can hold the event before the scrape shows it. Scrape
  // until both show up (observable state, with a deadline).
  std::string body;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  do {
    body = http_get(service->endpoints().metrics_port, "/metrics");
    if (body.find("rmon_events_pending{group=\"task-queue\"} 1") != std::string::npos &&
        body.find("rmon_detection_lateness_seconds_count 2") != std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(20ms);
  } while (std::chrono::steady_clock::now() < deadline);
  EXPECT_NE(body.find("rmon_heartbeats_total"), std::string::npos) << body;
  EXPECT_NE(body.find("rmon_timeouts_total 1"), std::string::npos);
  EXPECT_NE(body.find("rmon_runners{state=\"failed\"} 1"), std::string::npos);
  EXPECT_NE(body.find("rmon_events_pending{group=\"task-queue\"} 1"), std::string::npos);
  EXPECT_NE(body.find("rmon_heartbeats_rejected_total{reason=\"too_large\"} 0"), std::string::npos);
  EXPECT_NE(body.find("rmon_detection_lateness_seconds_count 2"), std::string::npos);
  EXPECT_NE(body.find("rmon_stall_hold_expired_total 0"), std::string::npos);
  EXPECT_EQ(stat("stall_hold_expired"), 0u);  // in `stats` too
}

TEST(MonitorServiceConfig, BadSettingsFailAtStartup) {
  MonitorConfig c = test_config();
  c.groups = {"task-queue"};
  EXPECT_THROW(MonitorService(c, SystemClock::instance()), std::invalid_argument);
  c = test_config();
  c.shards = 6;
  EXPECT_THROW(MonitorService(c, SystemClock::instance()), std::invalid_argument);
  c = test_config();
  c.stall_threshold_ms = 5000;
  c.stall_max_hold_ms = 4000;  // a stall could never be seen before it expired
  EXPECT_THROW(MonitorService(c, SystemClock::instance()), std::invalid_argument);
  c = test_config();
  c.heartbeat_endpoint = "bogus://x";
  MonitorService s(c, SystemClock::instance());
  EXPECT_THROW(s.start(), zmq::error_t);
}

TEST_F(MonitorServiceTest, ARestartKeepsTheRunnersAndResendsPendingEventsWithTheirIds) {
  rmon::testing::TempDir dir;
  MonitorConfig c = test_config();
  c.data_dir = dir.str();
  c.sync = "normal";
  restart(c);
  publish(heartbeat("long", 1, 600'000));
  publish(heartbeat("short", 1, 200));
  auto first = receive(0);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->runner.runner_id, "short");
  ack("task-queue", first->event_id);
  ASSERT_TRUE(eventually([&] { return stat("pending_task-queue") == 0; }));
  EXPECT_EQ(stat("pending_pool-manager"), 1u);

  restart(c);
  auto lng = get("long");
  ASSERT_TRUE(lng);
  EXPECT_EQ(lng->state, RunnerState::kRunning);
  EXPECT_EQ(lng->runner.task_id, "task-long");
  EXPECT_EQ(lng->runner.job_name, "job-long");
  auto shrt = get("short");
  ASSERT_TRUE(shrt);
  EXPECT_EQ(shrt->state, RunnerState::kFailed);
  // Only the group that had not acknowledged gets it again, same id.
  auto again = receive(1);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->event_id, first->event_id);
  EXPECT_EQ(again->delivery, 2u);
  ack("pool-manager", again->event_id);
  ASSERT_TRUE(eventually([&] { return stat("events_pending") == 0; }));
  EXPECT_FALSE(receive(0, 700)) << "task-queue had acknowledged it";
  // A late heartbeat of the timed-out attempt is still fenced.
  publish(heartbeat("short", 2, 200));
  ASSERT_TRUE(eventually([&] { return stat("late") == 1; }));
  EXPECT_EQ(stat("timeouts"), 0u);  // this process convicted nobody

  // The outbox's log is checkpointed on a thread of its own once appends and
  // acks pause, and shows on /metrics.
  std::string body;
  EXPECT_TRUE(eventually([&] {
    body = http_get(service->endpoints().metrics_port, "/metrics");
    return body.find("rmon_outbox_checkpoints_total ") != std::string::npos &&
           body.find("rmon_outbox_checkpoints_total 0\n") == std::string::npos;
  })) << body;
  EXPECT_NE(body.find("rmon_outbox_checkpoint_failures_total 0\n"), std::string::npos) << body;
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
  ASSERT_TRUE(eventually([&] { return service->table().size() == 3; }));

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
  EXPECT_TRUE(eventually([&] {
    body = http_get(service->endpoints().metrics_port, "/metrics");
    return body.find("rmon_control_lookups_total 1\n") != std::string::npos;
  })) << body;
  EXPECT_NE(body.find("rmon_control_lookup_ids_total 1000\n"), std::string::npos) << body;
}

TEST_F(MonitorServiceTest, ALookupOutOfBoundsIsABadRequestAndChangesNothing) {
  publish(heartbeat("steady", 1, 600'000));
  ASSERT_TRUE(eventually([&] { return service->table().size() == 1; }));
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

TEST_F(MonitorServiceTest, AMisspelledGroupRefusesToStartUntilItsEventsAreDroppedDeliberately) {
  rmon::testing::TempDir dir;
  MonitorConfig c = test_config();
  c.data_dir = dir.str();
  restart(c);
  publish(heartbeat("short", 1, 200));
  auto ev = receive(1);
  ASSERT_TRUE(ev);
  ack("pool-manager", ev->event_id);
  ASSERT_TRUE(eventually([&] { return stat("pending_pool-manager") == 0; }));
  EXPECT_EQ(stat("pending_task-queue"), 1u);

  service.reset();
  consumers.clear();
  MonitorConfig typo = c;
  typo.groups = {"taks-queue=tcp://127.0.0.1:*", "pool-manager=tcp://127.0.0.1:*"};
  try {
    MonitorService refused(typo, SystemClock::instance());
    FAIL() << "started, losing task-queue's pending event";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("task-queue (1 pending event)"), std::string::npos)
        << e.what();
  }
  // Nothing was lost: with the right name the event is sent again.
  start(c);
  auto again = receive(0);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->event_id, ev->event_id);

  // Without task-queue, deliberately.
  MonitorConfig dropped = c;
  dropped.groups = {"pool-manager=tcp://127.0.0.1:*"};
  dropped.drop_groups = {"task-queue"};
  restart(dropped);
  EXPECT_EQ(stat("events_pending"), 0u);
  dropped.drop_groups = {"pool-manager"};  // a group still configured
  EXPECT_THROW(MonitorService(dropped, SystemClock::instance()), std::invalid_argument);
}

TEST_F(MonitorServiceTest, TwoMonitorsCannotShareADataFolder) {
  rmon::testing::TempDir dir;
  MonitorConfig c = test_config();
  c.data_dir = dir.str();
  restart(c);
  try {
    MonitorService second(c, SystemClock::instance());
    FAIL() << "a second monitor opened the same data folder";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("one runner-monitor per data folder"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace rmon::monitor
