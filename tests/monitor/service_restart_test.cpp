// runner-monitor's start-up and restarts: bad settings fail at start, a
// restart keeps the runners and resends pending events with their ids, a
// misspelled group refuses the start until its events are dropped
// deliberately, and one data folder serves one monitor.

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "service_test_support.hpp"

namespace rmon::monitor {
namespace {

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
  // Not loopback: refused by --security off's check unless allowed; then the bind fails.
  EXPECT_THROW(MonitorService(c, SystemClock::instance()), std::invalid_argument);
  c.security.insecure_listen = true;
  MonitorService s(c, SystemClock::instance());
  try {
    s.start();
    ADD_FAILURE() << "started on a bogus endpoint";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot bind bogus://x"), std::string::npos) << e.what();
  }
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
  ASSERT_TRUE(wait_until([&] { return stat("pending_task-queue") == 0; }));
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
  ASSERT_TRUE(wait_until([&] { return stat("events_pending") == 0; }));
  EXPECT_FALSE(receive(0, 700)) << "task-queue had acknowledged it";
  // A late heartbeat of the timed-out attempt is still fenced.
  publish(heartbeat("short", 2, 200));
  ASSERT_TRUE(wait_until([&] { return stat("late") == 1; }));
  EXPECT_EQ(stat("timeouts"), 0u);  // this process convicted nobody

  // The outbox's log is checkpointed on a thread of its own once appends and
  // acks pause, and shows on /metrics.
  std::string body;
  EXPECT_TRUE(wait_until([&] {
    body = http_get(service->endpoints().metrics_port, "/metrics");
    return body.find("rmon_outbox_checkpoints_total ") != std::string::npos &&
           body.find("rmon_outbox_checkpoints_total 0\n") == std::string::npos;
  })) << body;
  EXPECT_NE(body.find("rmon_outbox_checkpoint_failures_total 0\n"), std::string::npos) << body;
}

TEST_F(MonitorServiceTest, AMisspelledGroupRefusesToStartUntilItsEventsAreDroppedDeliberately) {
  rmon::testing::TempDir dir;
  MonitorConfig c = test_config();
  c.data_dir = dir.str();
  restart(c);
  publish(heartbeat("short", 1, 200));
  auto ev = receive(1);
  ASSERT_TRUE(ev);
  // Pending for both groups first: the gauges may follow the send (waiting
  // for pool-manager's 0 alone could pass before the event was counted).
  ASSERT_TRUE(wait_until(
      [&] { return stat("pending_task-queue") == 1 && stat("pending_pool-manager") == 1; }));
  ack("pool-manager", ev->event_id);
  ASSERT_TRUE(wait_until([&] { return stat("pending_pool-manager") == 0; }));
  EXPECT_EQ(stat("pending_task-queue"), 1u);

  service.reset();
  consumers.clear();
  MonitorConfig typo = c;
  typo.groups = {rmon::testing::loopback_group("taks-queue"),
                 rmon::testing::loopback_group("pool-manager")};
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
  dropped.groups = {rmon::testing::loopback_group("pool-manager")};
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
