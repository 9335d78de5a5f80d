// runner-monitor's events over real sockets: a silent runner reaches every
// group once, a group that does not acknowledge gets the same event again
// until it does, and /metrics counts what was sent.

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "service_test_support.hpp"

namespace rmon::monitor {
namespace {

TEST_F(MonitorServiceTest, SilentRunnersReachEveryGroupExactlyOnce) {
  // Ten runners: 0-2 use a short timeout and stop; 3-9 have a long one.
  for (int i = 0; i < 10; ++i) {
    publish(heartbeat("r" + std::to_string(i), 1, i < 3 ? 200 : 600'000));
  }
  ASSERT_TRUE(wait_until([&] { return service->table().size() == 10; }));
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
  ASSERT_TRUE(wait_until([&] { return stat("acks") == 6 && stat("events_pending") == 0; }))
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
  ASSERT_TRUE(wait_until([&] { return stat("events_pending") == 0; }));
  // Drain a redelivery that may have crossed the ack, then expect silence.
  while (auto late = receive(1, 400)) EXPECT_EQ(late->event_id, first->event_id);
  EXPECT_FALSE(receive(1, 1000));
  EXPECT_FALSE(receive(0, 100));  // the acknowledging group was never resent
  EXPECT_GE(stat("redeliveries"), 2u);
}

TEST_F(MonitorServiceTest, MetricsEndpointServesCountersAndLateness) {
  publish(heartbeat("gone", 1, 150));
  auto ev = receive(0);
  ASSERT_TRUE(ev);
  ASSERT_TRUE(receive(1));
  // The dispatcher publishes its gauges and observes lateness after it has
  // sent: a consumer can hold the event before the scrape shows it. Scrape
  // until both show up (observable state, with a deadline).
  std::string body;
  (void)wait_until([&] {
    body = http_get(service->endpoints().metrics_port, "/metrics");
    return body.find("rmon_events_pending{group=\"task-queue\"} 1") != std::string::npos &&
           body.find("rmon_detection_lateness_seconds_count 2") != std::string::npos;
  });
  EXPECT_NE(body.find("rmon_heartbeats_total"), std::string::npos) << body;
  EXPECT_NE(body.find("rmon_timeouts_total 1"), std::string::npos);
  EXPECT_NE(body.find("rmon_runners{state=\"failed\"} 1"), std::string::npos);
  EXPECT_NE(body.find("rmon_events_pending{group=\"task-queue\"} 1"), std::string::npos);
  EXPECT_NE(body.find("rmon_heartbeats_rejected_total{reason=\"too_large\"} 0"), std::string::npos);
  EXPECT_NE(body.find("rmon_detection_lateness_seconds_count 2"), std::string::npos);
  EXPECT_NE(body.find("rmon_stall_hold_expired_total 0"), std::string::npos);
  EXPECT_EQ(stat("stall_hold_expired"), 0u);  // in `stats` too
}

}  // namespace
}  // namespace rmon::monitor
