// PoolManagerService over real sockets on 127.0.0.1 (wildcard ports, read
// back). The test plays the monitor: it binds the event PUSH, the ack PULL and
// the control ROUTER the service connects to, so it can push any event and
// answer (or ignore) first-heartbeat checks. Every receive has a timeout;
// waits poll observable state.

#include <gtest/gtest.h>

#include <fstream>
#include <memory>

#include "../support/api_client.hpp"
#include "../support/engines.hpp"
#include "../support/loopback.hpp"
#include "../support/postgres.hpp"
#include "../support/temp_dir.hpp"
#include "pool_service.hpp"
#include "pool_test_support.hpp"
#include "rmon/protocol/codec.hpp"
#include "rmon/zmq_util.hpp"

namespace rmon::pool {
namespace {

using protocol::MapBuilder;
using rmon::testing::Engine;
using testing::acquire_fields;
using testing::read_pools;
using testing::read_reply;
using testing::reply_u64;
using testing::timeout_event;
using testing::wait_until;

constexpr int kRecvTimeoutMs = 3000;

SocketOptions test_opts() { return rmon::testing::timeouts(kRecvTimeoutMs); }

class PoolServiceTest : public ::testing::TestWithParam<Engine> {
 protected:
  void SetUp() override {
    events = make_socket(ctx, zmq::socket_type::push, test_opts());
    acks = make_socket(ctx, zmq::socket_type::pull, test_opts());
    monitor = make_socket(ctx, zmq::socket_type::router, test_opts());
    events_ep = bind_endpoint(events, rmon::testing::kLoopbackAnyPort);
    acks_ep = bind_endpoint(acks, rmon::testing::kLoopbackAnyPort);
    monitor_ep = bind_endpoint(monitor, rmon::testing::kLoopbackAnyPort);
    start(config());
  }
  void TearDown() override {
    client.reset();
    service.reset();
  }

  PoolConfig config() const {
    auto c = rmon::testing::loopback_consumer_config<PoolConfig>(dir.str());
    c.events_endpoints = {events_ep};
    c.ack_endpoints = {acks_ep};
    c.monitor_endpoints = {monitor_ep};
    c.pools = {"local=local-process:4", "docker=docker:2"};
    c.first_heartbeat_grace_ms = 600'000;
    c.monitor_timeout_ms = 300;
    c.tick_interval_ms = 50;
    if (GetParam() == Engine::kPostgres) {
      if (url.empty()) url = rmon::testing::Postgres::shared().fresh_database();
      c.store = url;
    }
    return c;
  }
  void start(const PoolConfig& c) {
    client.reset();
    service.reset();
    service = std::make_unique<PoolManagerService>(c, SystemClock::instance());
    service->start();
    client =
        std::make_unique<rmon::testing::ApiClient>(ctx, service->endpoints().api, kRecvTimeoutMs);
  }

  std::string acquire(const std::string& pool, const std::string& runner, uint64_t attempt = 1) {
    return client->call("acquire", acquire_fields(pool, runner, "task-" + runner, attempt));
  }
  uint64_t stat(const char* key) { return reply_u64(client->call("stats"), key).value_or(~0ULL); }
  void push_event(const protocol::TimeoutEvent& ev) {
    ASSERT_TRUE(send_frames(events, {protocol::encode_timeout_event(ev)}, zmq::send_flags::none));
  }
  std::optional<std::string> next_ack() {
    zmq::message_t m;
    if (!acks.recv(m)) return std::nullopt;
    auto ack = protocol::decode_ack(m.to_string_view());
    EXPECT_TRUE(ack.ok());
    if (!ack.ok()) return std::nullopt;
    EXPECT_EQ(ack->group, "pool-manager");
    return ack->event_id;
  }

  rmon::testing::TempDir dir;
  mutable std::string url;  // PostgreSQL: this test's database
  zmq::context_t ctx;
  zmq::socket_t events, acks, monitor;
  std::string events_ep, acks_ep, monitor_ep;
  std::unique_ptr<PoolManagerService> service;
  std::unique_ptr<rmon::testing::ApiClient> client;
};

std::string with(const std::string& op, const MapBuilder& fields) {
  return MapBuilder().u64("v", 1).str("op", op).extend(fields).finish();
}

TEST_P(PoolServiceTest, BadRequestsOfEveryKindGetBadRequestAndChangeNothing) {
  ASSERT_EQ(read_reply(acquire("local", "r1")).slot, 0u);
  const std::string status_before = client->call("status");
  const std::string id(129, 'x');
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "empty frame"},
      {"\xc1garbage", "not MessagePack"},
      {"\x92\x01\x02", "an array"},
      {"\x81\x01\x01", "an integer key"},
      {MapBuilder().str("op", "stats").finish(), "no v"},
      {MapBuilder().u64("v", 2).str("op", "stats").finish(), "v 2"},
      {MapBuilder().str("v", "1").str("op", "stats").finish(), "v a string"},
      {MapBuilder().u64("v", 1).finish(), "no op"},
      {MapBuilder().u64("v", 1).u64("op", 7).finish(), "op an integer"},
      {with("acquire", MapBuilder().str("runner_id", "r2").str("task_id", "t").u64("attempt", 1)),
       "acquire without pool"},
      {with("acquire",
            MapBuilder().nil("pool").str("runner_id", "r2").str("task_id", "t").u64("attempt", 1)),
       "pool nil"},
      {with("acquire", MapBuilder()
                           .str("pool", "local")
                           .u64("runner_id", 2)
                           .str("task_id", "t")
                           .u64("attempt", 1)),
       "runner_id an integer"},
      {with("acquire", acquire_fields("local", "r2", "t", 0)), "attempt 0"},
      {with("acquire", MapBuilder()
                           .str("pool", "local")
                           .str("runner_id", "r2")
                           .str("task_id", "t")
                           .i64("attempt", -1)),
       "attempt negative"},
      {with("acquire", MapBuilder()
                           .str("pool", "local")
                           .str("runner_id", "r2")
                           .str("task_id", "t")
                           .str("attempt", "1")),
       "attempt a string"},
      {with("acquire", acquire_fields("local", id, "t", 1)), "runner_id of 129 bytes"},
      {with("acquire", acquire_fields("local", "", "t", 1)), "empty runner_id"},
      {with("release", MapBuilder().str("pool", "local")), "release without runner_id"},
      {with("release", MapBuilder().str("runner_id", "r1").u64("pool", 1)), "pool an integer"},
      {with("status", MapBuilder().boolean("pool", true)), "status pool a bool"},
      {with("acquire", acquire_fields("local", "r2", "t", 1).str("pad", std::string(100'000, 'p'))),
       "a 100 KB frame"},
  };
  for (const auto& [frame, what] : bad) {
    const auto reply = read_reply(client->call_raw(frame));
    ASSERT_TRUE(reply.decoded) << what;
    EXPECT_FALSE(reply.ok) << what;
    EXPECT_EQ(reply.error, "bad_request") << what << ": " << reply.json;
    EXPECT_FALSE(reply.detail.empty()) << what;
  }
  EXPECT_EQ(read_reply(client->call("explode")).error, "unknown_op");
  // Nothing changed: same holders (since_ms included), same counters.
  EXPECT_EQ(client->call("status"), status_before);
  EXPECT_EQ(stat("acquired"), 1u);
  EXPECT_EQ(stat("rejected_requests"), bad.size() + 1);
  EXPECT_EQ(read_reply(client->call("release", MapBuilder().str("runner_id", "r2"))).released,
            false);
}

TEST_P(PoolServiceTest, AcquireReleaseAndStatusOverSockets) {
  PoolConfig c = config();
  c.metrics_address = "127.0.0.1:0";
  start(c);
  EXPECT_EQ(read_reply(acquire("docker", "a")).slot, 0u);
  EXPECT_EQ(read_reply(acquire("docker", "b")).slot, 1u);
  EXPECT_EQ(read_reply(acquire("docker", "a")).slot, 0u);
  EXPECT_EQ(read_reply(acquire("docker", "c")).error, "pool_full");
  EXPECT_EQ(read_reply(acquire("docker", "a", 2)).error, "conflict");
  EXPECT_EQ(read_reply(acquire("gpu", "a")).error, "not_found");
  EXPECT_EQ(read_reply(client->call("status", MapBuilder().str("pool", "gpu"))).error, "not_found");
  auto pools = read_pools(client->call("status", MapBuilder().str("pool", "docker")));
  ASSERT_EQ(pools.size(), 1u);
  EXPECT_EQ(pools[0].in_use, 2u);
  ASSERT_EQ(pools[0].holders.size(), 2u);
  EXPECT_EQ(pools[0].holders[1].runner_id, "b");
  EXPECT_EQ(read_reply(client->call("release", MapBuilder().str("runner_id", "a"))).released, true);
  EXPECT_EQ(read_reply(acquire("docker", "c")).slot, 0u);
  EXPECT_EQ(read_pools(client->call("status")).size(), 2u);

  const std::string text = service->render_metrics();
  for (const char* line :
       {"pm_slots{pool=\"docker\",state=\"in_use\"} 2", "pm_slots{pool=\"local\",state=\"free\"} 4",
        "pm_requests_total{op=\"acquire\",outcome=\"pool_full\"} 1",
        "pm_releases_total{cause=\"request\"} 1", "pm_acquired_total 3",
        "pm_commit_batch_size_count"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
  EXPECT_GT(service->endpoints().metrics_port, 0);
}

TEST_P(PoolServiceTest, TimeoutEventsAreAppliedOnceAndAcknowledgedAfterCommit) {
  ASSERT_EQ(read_reply(acquire("local", "r1")).slot, 0u);
  ASSERT_EQ(read_reply(acquire("local", "r2")).slot, 1u);
  push_event(timeout_event("e1", "r1", "task-r1", 1));
  EXPECT_EQ(next_ack(), "e1");
  EXPECT_EQ(stat("released_by_timeout"), 1u);
  // Redelivered, stale attempt, unknown runner: nothing changes, all acknowledged.
  push_event(timeout_event("e1", "r1", "task-r1", 1));
  push_event(timeout_event("e2", "r2", "task-r2", 7));
  push_event(timeout_event("e3", "ghost", "t", 1));
  EXPECT_EQ(next_ack(), "e1");
  EXPECT_EQ(next_ack(), "e2");
  EXPECT_EQ(next_ack(), "e3");
  // A malformed event is dropped unacknowledged and counted.
  ASSERT_TRUE(send_frames(events, {"\x81\xa1v\x01"}, zmq::send_flags::none));
  ASSERT_TRUE(wait_until([&] {
    return service->render_metrics().find("pm_events_received_total{result=\"rejected\"} 1") !=
           std::string::npos;
  }));
  EXPECT_EQ(stat("events_applied"), 1u);
  EXPECT_EQ(stat("events_ignored"), 3u);
  EXPECT_EQ(stat("in_use"), 1u);
  EXPECT_EQ(read_reply(acquire("local", "r3")).slot, 0u);
}

TEST_P(PoolServiceTest, AnUnreachableMonitorReleasesNothingUntilItAnswers) {
  PoolConfig c = config();
  c.first_heartbeat_grace_ms = 300;
  start(c);
  ASSERT_EQ(read_reply(acquire("local", "r1")).slot, 0u);
  // The lookup times out unanswered (monitor_timeout 300 ms): undecided,
  // kept, retried.
  ASSERT_TRUE(wait_until([&] {
    return service->service_stats().verdicts[static_cast<int>(Verdict::kUndecided)].load() >= 1;
  }));
  EXPECT_EQ(stat("in_use"), 1u);
  EXPECT_GE(stat("undecided"), 1u);
  // Now answer every lookup: the monitor (up for an hour) does not know the
  // runner. (Answers to lookups already given up on go to a closed socket.)
  std::vector<zmq::message_t> frames;
  // {ok: true, runners: [nil], uptime_ms}: built by hand (GCC's
  // -Wmaybe-uninitialized misfires on a ControlReply here under ASan -O1).
  const std::string reply = MapBuilder()
                                .boolean("ok", true)
                                .array("runners", {std::string(1, '\xc0')})
                                .u64("uptime_ms", 3'600'000)
                                .finish();
  ASSERT_TRUE(wait_until([&] {
    while (recv_frames(monitor, frames, zmq::recv_flags::dontwait)) {
      auto req = protocol::decode_control_request(frames.back().to_string_view());
      // A round with no candidate yet (within the grace) pings instead.
      if (req.ok() && req->op == protocol::Op::kPing) continue;
      EXPECT_TRUE(req.ok() && req->op == protocol::Op::kLookup && req->runner_ids &&
                  req->runner_ids->size() == 1 && req->runner_ids->front() == "r1");
      (void)send_frames(monitor, {frames[0].to_string_view(), reply});
    }
    return service->metrics().counter(Counter::kReconciled) == 1;
  }));
  EXPECT_EQ(stat("in_use"), 0u);
}

TEST_P(PoolServiceTest, RestartKeepsHoldingsAndCounters) {
  ASSERT_EQ(read_reply(acquire("local", "r1")).slot, 0u);
  ASSERT_EQ(read_reply(acquire("local", "r2")).slot, 1u);
  ASSERT_EQ(read_reply(acquire("docker", "r3")).slot, 0u);
  ASSERT_EQ(read_reply(client->call("release", MapBuilder().str("runner_id", "r1"))).released,
            true);
  push_event(timeout_event("e1", "r3", "task-r3", 1));
  ASSERT_EQ(next_ack(), "e1");
  const std::string status_before = client->call("status");
  const std::string stats_before = client->call("stats");

  PoolConfig c = config();
  c.pools = {"local=local-process:1"};  // shrunk, docker gone
  start(c);
  const auto pools = read_pools(client->call("status"));
  ASSERT_EQ(pools.size(), 1u);
  EXPECT_EQ(pools[0].holders.size(), 1u);
  EXPECT_EQ(pools[0].holders[0].slot, 1u);                 // kept past the new size
  EXPECT_EQ(read_reply(acquire("local", "r2")).slot, 1u);  // its own, idempotent
  start(config());
  EXPECT_EQ(client->call("status"), status_before);
  EXPECT_EQ(client->call("stats"), stats_before);
  push_event(timeout_event("e1", "r3", "task-r3", 1));  // still remembered
  EXPECT_EQ(next_ack(), "e1");
  EXPECT_EQ(stat("events_ignored"), 1u);
}

TEST_P(PoolServiceTest, ACorruptDatabaseOrUnusableStoreFailsAtStart) {
  if (GetParam() == Engine::kPostgres) {
    PoolConfig c = config();
    c.store = "postgresql:///rmon?host=" + dir.str() + "/no-such-socket-dir&port=1";
    try {
      PoolManagerService s(c, SystemClock::instance());
      FAIL() << "started on a server that is not there";
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find("PostgreSQL"), std::string::npos) << e.what();
    }
    c.store = "mysql://x";  // not a store this service knows
    EXPECT_THROW(PoolManagerService(c, SystemClock::instance()), std::invalid_argument);
    return;
  }
  rmon::testing::TempDir other;
  std::ofstream(other.path() / "pool-manager.db") << "plain text, not SQLite\n";
  PoolConfig c = config();
  c.data_dir = other.str();
  EXPECT_THROW(
      {
        try {
          PoolManagerService s(c, SystemClock::instance());
        } catch (const std::exception& e) {
          EXPECT_NE(std::string(e.what()).find("not a database"), std::string::npos) << e.what();
          throw;
        }
      },
      std::exception);
  std::ofstream(other.path() / "file") << "x";
  c.data_dir = (other.path() / "file" / "sub").string();
  EXPECT_THROW(PoolManagerService(c, SystemClock::instance()), std::runtime_error);
  c = config();  // same folder as the running service
  EXPECT_THROW(PoolManagerService(c, SystemClock::instance()), std::runtime_error);
}

RMON_BOTH_ENGINES(PoolServiceTest);

}  // namespace
}  // namespace rmon::pool
