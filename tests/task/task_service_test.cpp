// task-queue over real sockets on 127.0.0.1, with the real runner-monitor
// in-process: a dead runner's task is requeued and its event acknowledged, a
// runner that never heartbeats loses its lease after the grace, one that
// heartbeats keeps it, and bad frames on every socket change nothing.
// Every receive has a timeout; waits poll observable state. Each test runs
// with the state in SQLite and in PostgreSQL (--store); replicas and
// PostgreSQL outages are in task_replicas_test.cpp.

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>

#include "../support/api_client.hpp"
#include "../support/heartbeats.hpp"
#include "../support/http_get.hpp"
#include "../support/stack.hpp"
#include "../support/temp_dir.hpp"
#include "../support/wait.hpp"
#include "rmon/protocol/codec.hpp"
#include "service.hpp"
#include "task_service.hpp"
#include "task_test_support.hpp"

namespace rmon::tq {
namespace {

using namespace std::chrono_literals;
using protocol::MapBuilder;
using protocol::MapReader;
using rmon::testing::ApiClient;
using rmon::testing::heartbeat_until_known;
using rmon::testing::local_heartbeat;
using rmon::testing::wait_until;

class TaskServiceTest : public ::testing::TestWithParam<Engine> {
 protected:
  void SetUp() override {
    monitor_ = std::make_unique<monitor::MonitorService>(rmon::testing::loopback_monitor_config(),
                                                         SystemClock::instance());
    monitor_->start();
  }
  TaskQueueConfig config() {
    auto c = rmon::testing::loopback_consumer_config<TaskQueueConfig>(dir_.str());
    rmon::testing::connect_to_monitor(c, monitor_->endpoints(), 0);
    c.backoff_base_ms = 1;
    c.backoff_cap_ms = 1;
    c.first_heartbeat_grace_ms = 60'000;
    c.end_settle_ms = 200;
    c.monitor_timeout_ms = 1000;
    if (GetParam() == Engine::kPostgres) {
      if (url_.empty()) url_ = rmon::testing::Postgres::shared().fresh_database();
      c.store = url_;
    }
    return c;
  }
  void start(TaskQueueConfig c) {
    tq_ = std::make_unique<TaskQueueService>(std::move(c), SystemClock::instance());
    tq_->start();
    client_ = std::make_unique<ApiClient>(ctx_, tq_->endpoints().api);
  }
  // /metrics on a wildcard port, one task submitted; returns the port.
  int start_with_metrics_and_one_task() {
    TaskQueueConfig c = config();
    c.metrics_address = "127.0.0.1:0";
    start(c);
    (void)submit();
    return tq_->endpoints().metrics_port;
  }
  std::string submit() {
    const std::string reply =
        client_->call("submit", MapBuilder().raw("payload", MapBuilder().str("k", "v").finish()));
    auto m = MapReader::parse(reply);
    std::string id;
    EXPECT_TRUE(m && m->str("task_id", id).ok()) << protocol::to_json(reply);
    return id;
  }
  uint64_t lease(const std::string& runner, std::string& task_id) {
    const std::string reply = client_->call("lease", MapBuilder().str("runner_id", runner));
    auto m = MapReader::parse(reply);
    std::optional<MapReader> task;
    EXPECT_TRUE(m && m->opt_map("task", task).ok() && task) << protocol::to_json(reply);
    uint64_t attempt = 0;
    if (task) {
      EXPECT_TRUE(task->str("task_id", task_id).ok());
      EXPECT_TRUE(task->u64("attempt", attempt).ok());
    }
    return attempt;
  }
  std::string state_of(const std::string& id) {
    const std::string reply = client_->call("get", MapBuilder().str("task_id", id));
    auto m = MapReader::parse(reply);
    std::optional<MapReader> task;
    std::string state;
    if (m && m->opt_map("task", task).ok() && task) (void)task->str("state", state);
    return state;
  }
  uint64_t verdicts(Verdict v) const {
    return tq_->service_stats().verdicts[static_cast<std::size_t>(v)].load();
  }
  zmq::socket_t publisher() {
    SocketOptions o;
    auto pub = make_socket(ctx_, zmq::socket_type::pub, o);
    pub.connect(monitor_->endpoints().heartbeat);
    return pub;
  }

  rmon::testing::TempDir dir_;
  std::string url_;  // PostgreSQL: this test's database
  zmq::context_t ctx_;
  std::unique_ptr<monitor::MonitorService> monitor_;
  std::unique_ptr<TaskQueueService> tq_;
  std::unique_ptr<ApiClient> client_;
};

TEST_P(TaskServiceTest, DeadRunnersTaskIsRequeuedOnceAndTheEventAcknowledged) {
  start(config());
  const std::string id = submit();
  std::string leased;
  ASSERT_EQ(lease("r-dead", leased), 1u);
  ASSERT_EQ(leased, id);
  auto pub = publisher();
  ASSERT_TRUE(heartbeat_until_known(pub, *monitor_, local_heartbeat("r-dead", id, 1, 300)));
  // Silence: the monitor times the runner out, the queue takes the task back.
  ASSERT_TRUE(wait_until([&] { return state_of(id) == "queued"; })) << state_of(id);
  EXPECT_EQ(tq_->stats().reassigned.load(), 1u);
  ASSERT_TRUE(wait_until([&] {
    return monitor_->stats().per_group[0].acks.load() == 1 &&
           monitor_->stats().per_group[0].pending.load() == 0;
  }));
  // Leasable again once its backoff (at most 1 ms here) has passed.
  ASSERT_TRUE(wait_until([&] { return state_of(id) == "queued"; }));
  std::string again;
  uint64_t attempt = 0;
  ASSERT_TRUE(wait_until([&] {
    const std::string reply = client_->call("lease", MapBuilder().str("runner_id", "r-next"));
    auto m = MapReader::parse(reply);
    std::optional<MapReader> task;
    if (!m || !m->opt_map("task", task).ok() || !task) return false;
    return task->str("task_id", again).ok() && task->u64("attempt", attempt).ok();
  }));
  EXPECT_EQ(attempt, 2u);
  EXPECT_EQ(again, id);
  EXPECT_EQ(tq_->stats().events_applied.load(), 1u);
}

TEST_P(TaskServiceTest, LeaseWhoseRunnerNeverHeartbeatsIsRequeuedAfterTheGrace) {
  TaskQueueConfig c = config();
  c.first_heartbeat_grace_ms = 300;
  start(c);
  const std::string id = submit();
  std::string leased;
  ASSERT_EQ(lease("r-never", leased), 1u);
  ASSERT_TRUE(wait_until([&] { return state_of(id) == "queued"; }));
  EXPECT_EQ(tq_->stats().reassigned.load(), 1u);
  EXPECT_EQ(tq_->stats().reconciled.load(), 1u);
  EXPECT_GE(verdicts(Verdict::kGone), 1u);
}

TEST_P(TaskServiceTest, LeaseWhoseRunnerHeartbeatsSurvivesTheGrace) {
  TaskQueueConfig c = config();
  c.first_heartbeat_grace_ms = 300;
  start(c);
  const std::string id = submit();
  std::string leased;
  ASSERT_EQ(lease("r-alive", leased), 1u);
  auto pub = publisher();
  ASSERT_TRUE(heartbeat_until_known(pub, *monitor_, local_heartbeat("r-alive", id, 1, 60'000)));
  ASSERT_TRUE(wait_until([&] { return verdicts(Verdict::kAlive) >= 3; }));
  EXPECT_EQ(state_of(id), "leased");
  EXPECT_EQ(tq_->stats().reassigned.load(), 0u);
}

TEST_P(TaskServiceTest, UnreachableMonitorRequeuesNothing) {
  TaskQueueConfig c = config();
  c.first_heartbeat_grace_ms = 200;
  c.monitor_timeout_ms = 100;
  c.monitor_endpoints = {"ipc://" + dir_.str() + "/nobody"};
  start(c);
  const std::string id = submit();
  std::string leased;
  ASSERT_EQ(lease("r-x", leased), 1u);
  ASSERT_TRUE(wait_until([&] { return verdicts(Verdict::kUndecided) >= 2; }));
  EXPECT_EQ(state_of(id), "leased");
  EXPECT_EQ(tq_->stats().reassigned.load(), 0u);
}

TEST_P(TaskServiceTest, BadFramesOnEverySocketChangeNothing) {
  // The events socket is fed by this test instead of the monitor.
  SocketOptions o;
  o.send_timeout_ms = 3000;
  auto fake_monitor = make_socket(ctx_, zmq::socket_type::push, o);
  const std::string events_ep = bind_endpoint(fake_monitor, rmon::testing::kLoopbackAnyPort);
  TaskQueueConfig c = config();
  c.events_endpoints = {events_ep};
  start(c);
  const std::string id = submit();
  std::string leased;
  ASSERT_EQ(lease("r-1", leased), 1u);
  for (const std::string& junk :
       {std::string(), std::string("\xc1"), std::string("\x91\x01"),
        MapBuilder().u64("v", 1).str("type", "runner_timeout").finish()}) {
    ASSERT_TRUE(send_frames(fake_monitor, {junk}, zmq::send_flags::none));
  }
  ASSERT_TRUE(send_frames(fake_monitor, {"a", "b"}, zmq::send_flags::none));
  ASSERT_TRUE(wait_until([&] { return tq_->service_stats().events_rejected.load() == 5; }));
  // API: garbage, multi-frame garbage, and an oversized frame.
  for (const std::string& junk : {std::string("\xc1"), std::string("\x92\x01\x02")}) {
    const std::string reply = client_->call_raw(junk);
    auto m = MapReader::parse(reply);
    std::string error;
    ASSERT_TRUE(m && m->str("error", error).ok());
    EXPECT_EQ(error, "bad_request");
  }
  EXPECT_EQ(state_of(id), "leased");
  const std::string reply = client_->call("stats");
  auto m = MapReader::parse(reply);
  uint64_t leased_n = 0, queued_n = 1;
  ASSERT_TRUE(m->u64("leased", leased_n).ok() && m->u64("queued", queued_n).ok());
  EXPECT_EQ(leased_n, 1u);
  EXPECT_EQ(queued_n, 0u);
}

TEST_P(TaskServiceTest, MetricsNameEveryFamily) {
  const int port = start_with_metrics_and_one_task();
  ASSERT_GT(port, 0);
  // The render the exposer serves; promtool checks the served text in CI.
  const std::string text = tq_->render_metrics();
  for (const char* name :
       {"tq_tasks{state=\"queued\"} 1", "tq_requests_total{op=\"submit\",outcome=\"ok\"} 1",
        "tq_events_total", "tq_reassigned_total", "tq_reconcile_verdicts_total",
        "tq_monitor_lookups_total", "tq_commits_total", "tq_commit_batch_size",
        "tq_reassign_lateness_seconds"}) {
    EXPECT_NE(text.find(name), std::string::npos) << name << "\n" << text;
  }
}

// /metrics keeps being scraped while the service stops and goes away: a
// scrape may read only what outlives the loop (under ASan, a use after free
// here was the task-queue's /metrics holding the event consumer).
TEST_P(TaskServiceTest, ScrapesDuringStopReadNothingThatIsGone) {
  const int port = start_with_metrics_and_one_task();
  ASSERT_GT(port, 0);
  std::atomic<bool> done{false};
  std::atomic<int> scrapes{0};
  std::thread scraper([&] {
    while (!done.load()) {
      if (!rmon::testing::http_get(port, "/metrics").empty()) scrapes.fetch_add(1);
    }
  });
  ASSERT_TRUE(wait_until([&] { return scrapes.load() >= 3; }));
  tq_->stop();
  const int after_stop = scrapes.load();
  ASSERT_TRUE(wait_until([&] { return scrapes.load() >= after_stop + 3; }));
  tq_.reset();
  done = true;
  scraper.join();
}

RMON_BOTH_ENGINES(TaskServiceTest);

}  // namespace
}  // namespace rmon::tq
