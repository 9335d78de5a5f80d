// Standing reconciliation with the whole stack in-process (monitor,
// task-queue, pool-manager over 127.0.0.1): the four ways a runner can be
// gone without a timeout event taking its task back, a live runner that is
// never touched, and a monitor restarted without its data folder.
// Every receive has a timeout; waits poll observable state.

#include <gtest/gtest.h>

#include <chrono>
#include <memory>

#include "../support/api_client.hpp"
#include "../support/heartbeats.hpp"
#include "../support/stack.hpp"
#include "../support/wait.hpp"
#include "rmon/protocol/codec.hpp"
#include "rmon/zmq_util.hpp"

namespace rmon {
namespace {

using namespace std::chrono_literals;
using protocol::MapBuilder;
using protocol::MapReader;
using testing::ApiClient;
using testing::wait_until;

constexpr uint64_t kGrace = 600, kInterval = 100, kSettle = 300;

class ReconcileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (ConsumerServiceConfig* c : {static_cast<ConsumerServiceConfig*>(&stack_.tasks),
                                     static_cast<ConsumerServiceConfig*>(&stack_.pools)}) {
      c->first_heartbeat_grace_ms = kGrace;
      c->reconcile_interval_ms = kInterval;
      c->end_settle_ms = kSettle;
      c->monitor_timeout_ms = 200;
    }
    stack_.start();
    tasks_ = std::make_unique<ApiClient>(ctx_, stack_.task_endpoint());
    pools_ = std::make_unique<ApiClient>(ctx_, stack_.pool_endpoint());
    pub_ = make_socket(ctx_, zmq::socket_type::pub, SocketOptions{});
    pub_->connect(stack_.heartbeat_endpoint());
  }

  // Submits a task, leases it for `runner` and takes a slot for it.
  std::string lease_and_hold(const std::string& runner) {
    const std::string submitted =
        tasks_->call("submit", MapBuilder().raw("payload", MapBuilder().str("k", "v").finish()));
    auto s = MapReader::parse(submitted);
    std::string id;
    EXPECT_TRUE(s && s->str("task_id", id).ok());
    const std::string leased_reply = tasks_->call("lease", MapBuilder().str("runner_id", runner));
    auto l = MapReader::parse(leased_reply);
    std::optional<MapReader> task;
    std::string leased;
    EXPECT_TRUE(l && l->opt_map("task", task).ok() && task && task->str("task_id", leased).ok());
    EXPECT_EQ(leased, id);
    const std::string acquired = pools_->call("acquire", MapBuilder()
                                                             .str("pool", "local")
                                                             .str("runner_id", runner)
                                                             .str("task_id", id)
                                                             .u64("attempt", 1));
    auto a = MapReader::parse(acquired);
    uint64_t slot = 0;
    EXPECT_TRUE(a && a->u64("slot", slot).ok());
    return id;
  }
  // Sends heartbeats until the monitor shows `runner` in `state`.
  void heartbeat(const std::string& runner, const std::string& task, uint64_t attempt,
                 protocol::RunnerState state, uint64_t timeout_ms = 60'000) {
    protocol::Heartbeat hb = testing::local_heartbeat(runner, task, attempt, timeout_ms);
    hb.state = state;
    hb.seq = seq_;
    ASSERT_TRUE(testing::heartbeat_until(*pub_, hb, [&] {
      auto v = stack_.monitor_svc->table().get(runner, SystemClock::instance().now());
      return v && v->runner.attempt == attempt && v->state == state;
    }));
    seq_ = hb.seq;
  }
  std::string task_field(const std::string& id, const char* key) {
    const std::string reply = tasks_->call("get", MapBuilder().str("task_id", id));
    auto m = MapReader::parse(reply);
    std::optional<MapReader> task;
    std::optional<std::string> value;
    if (m && m->opt_map("task", task).ok() && task) (void)task->opt_str(key, value, 4096);
    return value.value_or("");
  }
  bool holds(const std::string& runner) {
    const std::string reply = pools_->call("status", MapBuilder().str("pool", "local"));
    return reply.find(runner) != std::string::npos;
  }
  uint64_t task_stat(const char* key) {
    const std::string reply = tasks_->call("stats");
    auto m = MapReader::parse(reply);
    uint64_t v = 0;
    if (m) (void)m->u64(key, v);
    return v;
  }

  testing::Stack stack_;
  zmq::context_t ctx_;
  std::unique_ptr<ApiClient> tasks_, pools_;
  std::optional<zmq::socket_t> pub_;
  uint64_t seq_ = 0;
};

TEST_F(ReconcileTest, EachGoneRunnerLosesItsTaskAndSlotAndALiveOneKeepsThem) {
  const auto t0 = std::chrono::steady_clock::now();
  // 1. Ended (completed) but its `complete` never reached the task-queue.
  const std::string completed = lease_and_hold("r-completed");
  heartbeat("r-completed", completed, 1, protocol::RunnerState::kRunning);
  heartbeat("r-completed", completed, 1, protocol::RunnerState::kCompleted);
  // 2. Ended (failed) and never called `fail`.
  const std::string failed = lease_and_hold("r-failed");
  heartbeat("r-failed", failed, 1, protocol::RunnerState::kRunning);
  heartbeat("r-failed", failed, 1, protocol::RunnerState::kFailed);
  // 3. Never heartbeats.
  const std::string never = lease_and_hold("r-never");
  // 4. Heartbeats for the wrong attempt, then dies: its timeout event is for
  //    attempt 2 and changes nothing; the monitor knows it on another attempt.
  const std::string wrong = lease_and_hold("r-wrong");
  heartbeat("r-wrong", wrong, 2, protocol::RunnerState::kRunning, 200);
  // A live runner, for comparison.
  const std::string live = lease_and_hold("r-live");
  heartbeat("r-live", live, 1, protocol::RunnerState::kRunning);

  for (const std::string& id : {completed, failed, never, wrong}) {
    EXPECT_TRUE(wait_until([&] { return task_field(id, "state") == "queued"; }))
        << id << " " << task_field(id, "state");
  }
  for (const char* r : {"r-completed", "r-failed", "r-never", "r-wrong"}) {
    EXPECT_TRUE(wait_until([&] { return !holds(r); })) << r;
  }
  // Within grace + interval + settle of the last lease, with slack for this
  // shared machine.
  const auto took =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  EXPECT_LT(took, static_cast<int64_t>(kGrace + kInterval + kSettle + 3000));
  EXPECT_NE(task_field(completed, "last_error").find("ended (completed)"), std::string::npos)
      << task_field(completed, "last_error");
  EXPECT_NE(task_field(failed, "last_error").find("ended (failed)"), std::string::npos);
  EXPECT_NE(task_field(never, "last_error").find("lost"), std::string::npos);
  EXPECT_NE(task_field(wrong, "last_error").find("lost"), std::string::npos);
  EXPECT_EQ(task_stat("reconciled"), 4u);
  // The live runner's lease and slot outlast several rounds.
  const uint64_t rounds = stack_.task_svc->service_stats().reconcile_rounds.load();
  ASSERT_TRUE(wait_until(
      [&] { return stack_.task_svc->service_stats().reconcile_rounds.load() >= rounds + 3; }));
  EXPECT_EQ(task_field(live, "state"), "leased");
  EXPECT_TRUE(holds("r-live"));
}

TEST_F(ReconcileTest, AMonitorRestartedWithoutItsDataFolderGetsLeasesBackOnlyOnceItAnswers) {
  const std::string a = lease_and_hold("r-a");
  heartbeat("r-a", a, 1, protocol::RunnerState::kRunning);
  const std::string b = lease_and_hold("r-b");
  heartbeat("r-b", b, 1, protocol::RunnerState::kRunning);
  // The monitor goes away (and with it every runner it knew).
  monitor::MonitorConfig again = stack_.monitor;
  const auto& ep = stack_.monitor_svc->endpoints();
  again.heartbeat_endpoint = ep.heartbeat;
  again.groups = {"task-queue=" + ep.groups[0], "pool-manager=" + ep.groups[1]};
  again.ack_endpoint = ep.ack;
  again.control_endpoint = ep.control;
  stack_.monitor_svc.reset();
  const ServiceStats& s = stack_.task_svc->service_stats();
  const auto undecided = [&] { return s.verdicts[static_cast<int>(Verdict::kUndecided)].load(); };
  ASSERT_TRUE(wait_until([&] { return undecided() >= 4; }));
  EXPECT_EQ(task_field(a, "state"), "leased");
  EXPECT_EQ(task_field(b, "state"), "leased");
  EXPECT_TRUE(holds("r-a"));
  EXPECT_GE(task_stat("undecided"), 4u);

  // Back, empty: its "unknown" counts only once it has been up for the grace.
  const auto restarted = std::chrono::steady_clock::now();
  stack_.monitor_svc = std::make_unique<monitor::MonitorService>(again, SystemClock::instance());
  stack_.monitor_svc->start();
  for (const std::string& id : {a, b}) {
    ASSERT_TRUE(wait_until([&] { return task_field(id, "state") == "queued"; })) << id;
  }
  EXPECT_GE(std::chrono::steady_clock::now() - restarted, std::chrono::milliseconds(kGrace));
  EXPECT_TRUE(wait_until([&] { return !holds("r-a") && !holds("r-b"); }));
}

}  // namespace
}  // namespace rmon
