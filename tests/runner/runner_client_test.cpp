// The C++ runner library against the real services in-process: a runner's
// whole lifecycle through the clients, errors as values, heartbeats the
// monitor sees (terminal states included), and a runner that abandons its
// work losing task and slot to the monitor.

#include <gtest/gtest.h>

#include <chrono>

#include "../support/stack.hpp"
#include "../support/wait.hpp"
#include "rmon/runner/heartbeat_publisher.hpp"
#include "rmon/runner/pool_manager_client.hpp"
#include "rmon/runner/task_queue_client.hpp"

namespace rmon::runner {
namespace {

using protocol::MapBuilder;
using rmon::testing::wait_until;

class RunnerClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack.pools.pools = {"gpu=kubernetes:1", "local=local-process:4"};
    stack.start();
    tasks = std::make_unique<TaskQueueClient>(ctx, stack.task_endpoint());
    pools = std::make_unique<PoolManagerClient>(ctx, stack.pool_endpoint());
  }
  std::optional<protocol::RunnerState> monitor_state(const std::string& runner) {
    auto v = stack.monitor_svc->table().get(runner, SystemClock::instance().now());
    if (!v) return std::nullopt;
    return v->state;
  }
  HeartbeatOptions beat(const TaskInfo& t, const std::string& runner, uint64_t timeout_ms) {
    HeartbeatOptions o;
    o.endpoint = stack.heartbeat_endpoint();  // one monitor: the single field
    o.runner.runner_id = runner;
    o.runner.task_id = t.task_id;
    o.runner.attempt = t.attempt;
    o.runner.pool = "local";
    o.interval_ms = 50;
    o.timeout_ms = timeout_ms;
    return o;
  }

  rmon::testing::Stack stack;
  zmq::context_t ctx;
  std::unique_ptr<TaskQueueClient> tasks;
  std::unique_ptr<PoolManagerClient> pools;
};

TEST_F(RunnerClientTest, ARunnersWholeLifecycleThroughTheClients) {
  SubmitOptions o;
  o.priority = 2;
  auto sub = tasks->submit(MapBuilder().str("cmd", "train").finish(), o);
  ASSERT_TRUE(sub) << sub.error().to_string();
  EXPECT_TRUE(sub->created);
  auto leased = tasks->lease("r-1");
  ASSERT_TRUE(leased && leased.value().has_value());
  const TaskInfo t = *leased.value();
  EXPECT_EQ(t.task_id, sub->task_id);
  EXPECT_EQ(t.attempt, 1u);
  EXPECT_EQ(t.priority, 2);
  auto slot = pools->acquire("local", "r-1", t.task_id, t.attempt);
  ASSERT_TRUE(slot) << slot.error().to_string();
  {
    HeartbeatPublisher hb(ctx, beat(t, "r-1", 60'000));
    ASSERT_TRUE(wait_until([&] { return monitor_state("r-1").has_value(); }));
    hb.set_progress(MapBuilder().u64("step", 3).finish());
    ASSERT_TRUE(tasks->complete(t.task_id, t.attempt, MapBuilder().str("ok", "yes").finish()));
    hb.complete();
    EXPECT_GE(hb.sent(), 3u);
  }
  ASSERT_TRUE(
      wait_until([&] { return monitor_state("r-1") == protocol::RunnerState::kCompleted; }));
  auto released = pools->release("r-1");
  ASSERT_TRUE(released);
  EXPECT_TRUE(released.value());
  auto got = tasks->get(t.task_id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->state, "completed");
  EXPECT_EQ(got->result, MapBuilder().str("ok", "yes").finish());
  auto st = pools->status("local");
  ASSERT_TRUE(st);
  ASSERT_EQ(st->size(), 1u);
  EXPECT_EQ(st.value()[0].in_use, 0u);
}

TEST_F(RunnerClientTest, WithSeveralEndpointsAnUnansweredRequestGoesToTheNextAndStaysThere) {
  // A replica that accepts connections and never answers (hung), then the
  // real task-queue: the contract's client retry on the next endpoint.
  zmq::socket_t hung(ctx, zmq::socket_type::router);
  hung.set(zmq::sockopt::linger, 0);
  hung.bind("tcp://127.0.0.1:*");
  const std::string hung_endpoint = hung.get(zmq::sockopt::last_endpoint);
  constexpr int kTimeoutMs = 300;
  TaskQueueClient replicas(ctx, std::vector<std::string>{hung_endpoint, stack.task_endpoint()},
                           kTimeoutMs);
  const auto t0 = std::chrono::steady_clock::now();
  auto sub = replicas.submit(MapBuilder().str("cmd", "x").finish());
  ASSERT_TRUE(sub) << sub.error().to_string();
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(kTimeoutMs));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2 * kTimeoutMs));
  // It stays with the replica that answered: the next request does not wait.
  const auto t1 = std::chrono::steady_clock::now();
  auto got = replicas.get(sub->task_id);
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_LT(std::chrono::steady_clock::now() - t1, std::chrono::milliseconds(kTimeoutMs));
  EXPECT_EQ(replicas.failovers(), 1u) << "one move, to the replica that answered";

  // Nobody answers: a timeout naming every endpoint tried, once each.
  zmq::socket_t hung2(ctx, zmq::socket_type::router);
  hung2.set(zmq::sockopt::linger, 0);
  hung2.bind("tcp://127.0.0.1:*");
  const std::string hung2_endpoint = hung2.get(zmq::sockopt::last_endpoint);
  TaskQueueClient none(ctx, std::vector<std::string>{hung_endpoint, hung2_endpoint}, kTimeoutMs);
  auto lost = none.ping();
  ASSERT_FALSE(lost);
  EXPECT_EQ(lost.error().code, "timeout");
  EXPECT_NE(lost.error().detail.find(hung_endpoint), std::string::npos) << lost.error().detail;
  EXPECT_NE(lost.error().detail.find(hung2_endpoint), std::string::npos) << lost.error().detail;
  EXPECT_EQ(none.failovers(), 1u) << "each endpoint tried once: one move";
  EXPECT_THROW(TaskQueueClient(ctx, std::vector<std::string>{}), std::invalid_argument);
}

TEST_F(RunnerClientTest, ErrorsComeBackAsCodes) {
  SubmitOptions o;
  o.pool = "gpu";
  auto sub = tasks->submit(MapBuilder().finish(), o);
  ASSERT_TRUE(sub);
  auto none = tasks->lease("r-1");  // without a pool: gpu tasks are not offered
  ASSERT_TRUE(none);
  EXPECT_FALSE(none.value().has_value());
  auto t = tasks->lease("r-1", "gpu");
  ASSERT_TRUE(t && t.value());
  auto stale = tasks->complete(sub->task_id, 7);
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, "stale_attempt");
  EXPECT_EQ(tasks->get("t-nope-1").error().code, "not_found");
  ASSERT_TRUE(pools->acquire("gpu", "r-1", sub->task_id, 1));
  auto full = pools->acquire("gpu", "r-2", "other", 1);
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code, "pool_full");
  EXPECT_EQ(pools->acquire("tpu", "r-1", "x", 1).error().code, "not_found");
  EXPECT_EQ(pools->acquire("gpu", "r-1", "another-task", 1).error().code, "conflict");
  // Nobody listening: a timeout, and the client keeps working afterwards.
  TaskQueueClient lost(ctx, "ipc://" + stack.dir.str() + "/nobody", 100);
  EXPECT_EQ(lost.ping().error().code, "timeout");
  EXPECT_EQ(lost.ping().error().code, "timeout");
}

TEST_F(RunnerClientTest, AnAbandonedRunnerLosesItsTaskAndSlotToTheMonitor) {
  ASSERT_TRUE(tasks->submit(MapBuilder().finish()));
  auto t = tasks->lease("r-crash");
  ASSERT_TRUE(t && t.value());
  const TaskInfo task = *t.value();
  ASSERT_TRUE(pools->acquire("local", "r-crash", task.task_id, task.attempt));
  HeartbeatPublisher hb(ctx, beat(task, "r-crash", 300));
  ASSERT_TRUE(wait_until([&] { return monitor_state("r-crash").has_value(); }));
  hb.abandon();  // stops beating, sends nothing: what a crash looks like
  ASSERT_TRUE(wait_until([&] {
    auto g = tasks->get(task.task_id);
    return g && g->state == "queued";
  }));
  ASSERT_TRUE(wait_until([&] {
    auto s = pools->status("local");
    return s && s.value()[0].in_use == 0;
  }));
  // The zombie's completion of its old attempt is refused.
  Outcome<std::optional<TaskInfo>> again = ApiError{};
  ASSERT_TRUE(wait_until([&] {
    again = tasks->lease("r-next");
    return again && again.value().has_value();
  }));
  EXPECT_EQ(tasks->complete(task.task_id, task.attempt).error().code, "stale_attempt");
}

TEST_F(RunnerClientTest, APublisherLeftByAnExceptionReportsFailed) {
  TaskInfo t;
  t.task_id = "t-manual-1";
  t.attempt = 1;
  try {
    HeartbeatPublisher hb(ctx, beat(t, "r-throw", 60'000));
    ASSERT_TRUE(wait_until([&] { return monitor_state("r-throw").has_value(); }));
    throw std::runtime_error("agent crashed");
  } catch (const std::runtime_error&) {
  }
  ASSERT_TRUE(
      wait_until([&] { return monitor_state("r-throw") == protocol::RunnerState::kFailed; }));
  HeartbeatOptions bad = beat(t, "", 1000);
  EXPECT_THROW(HeartbeatPublisher(ctx, bad), std::invalid_argument);
}

}  // namespace
}  // namespace rmon::runner
