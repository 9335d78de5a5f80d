// Several monitors (contract amendment "Several monitors"), in-process:
//   - an availability pair: runners publish to both (the C++ runner library's
//     endpoint list), both consumers listen to both; a dead runner's task is
//     requeued and its slot freed once, the second monitor's copy of the
//     event is acknowledged to its sender and counted as a duplicate, and
//     either monitor alone still convicts;
//   - partitions by runner-id prefix (--subscribe): each monitor convicts
//     only its own runners and no event is duplicated.

#include <gtest/gtest.h>

#include <array>
#include <memory>

#include "../support/loopback.hpp"
#include "../support/temp_dir.hpp"
#include "../support/wait.hpp"
#include "pool_service.hpp"
#include "rmon/runner/heartbeat_publisher.hpp"
#include "rmon/runner/pool_manager_client.hpp"
#include "rmon/runner/task_queue_client.hpp"
#include "service.hpp"
#include "task_service.hpp"

namespace rmon::runner {
namespace {

using protocol::MapBuilder;
using rmon::testing::wait_until;

class SeveralMonitors : public ::testing::Test {
 protected:
  // Two monitors, with `subscribe` prefixes each (a pair: both "hb/"), and
  // both consumers listening to both.
  void start(const std::array<std::vector<std::string>, 2>& subscribe) {
    for (std::size_t i = 0; i < 2; ++i) {
      monitor::MonitorConfig c = testing::loopback_monitor_config();
      c.subscribe = subscribe[i];
      c.instance = i == 0 ? "mon-a" : "mon-b";
      // No redelivery within a test: a redelivered event is a duplicate
      // too, and exact counts here mean one copy per monitor.
      c.redelivery_interval_ms = 600'000;
      monitors[i] = std::make_unique<monitor::MonitorService>(c, SystemClock::instance());
      monitors[i]->start();
    }
    tasks_cfg = testing::loopback_consumer_config<tq::TaskQueueConfig>(dir.str());
    pools_cfg = testing::loopback_consumer_config<pool::PoolConfig>(dir.str());
    tasks_cfg.backoff_base_ms = 1;
    tasks_cfg.backoff_cap_ms = 1;
    pools_cfg.pools = {"local=local-process:8"};
    for (ConsumerServiceConfig* c : {static_cast<ConsumerServiceConfig*>(&tasks_cfg),
                                     static_cast<ConsumerServiceConfig*>(&pools_cfg)}) {
      const std::size_t group = c == &tasks_cfg ? 0 : 1;
      c->events_endpoints.clear();
      c->ack_endpoints.clear();
      c->monitor_endpoints.clear();
      for (auto& m : monitors) {
        c->events_endpoints.push_back(m->endpoints().groups.at(group));
        c->ack_endpoints.push_back(m->endpoints().ack);
        c->monitor_endpoints.push_back(m->endpoints().control);
      }
      ASSERT_EQ(c->validate(), "");
    }
    task_svc = std::make_unique<tq::TaskQueueService>(tasks_cfg, SystemClock::instance());
    task_svc->start();
    pool_svc = std::make_unique<pool::PoolManagerService>(pools_cfg, SystemClock::instance());
    pool_svc->start();
    tasks = std::make_unique<TaskQueueClient>(ctx, task_svc->endpoints().api);
    pools = std::make_unique<PoolManagerClient>(ctx, pool_svc->endpoints().api);
  }
  void TearDown() override {
    publishers.clear();
    pool_svc.reset();
    task_svc.reset();
    for (auto& m : monitors) m.reset();
  }

  // A runner leases a task, takes a slot and heartbeats (300 ms timeout) to
  // the monitors in `to` (indexes).
  struct Leased {
    TaskInfo task;
    HeartbeatPublisher* hb = nullptr;
  };
  Leased lease_and_beat(const std::string& runner, const std::vector<std::size_t>& to) {
    Leased out;
    EXPECT_TRUE(tasks->submit(MapBuilder().str("runner", runner).finish()));
    auto t = tasks->lease(runner);
    EXPECT_TRUE(t && t.value());
    if (!t || !t.value()) return out;
    out.task = *t.value();
    EXPECT_TRUE(pools->acquire("local", runner, out.task.task_id, out.task.attempt));
    HeartbeatOptions o;
    o.endpoints.clear();
    for (std::size_t i : to) o.endpoints.push_back(monitors[i]->endpoints().heartbeat);
    o.runner.runner_id = runner;
    o.runner.task_id = out.task.task_id;
    o.runner.attempt = out.task.attempt;
    o.runner.pool = "local";
    o.interval_ms = 50;
    o.timeout_ms = 300;
    publishers.push_back(std::make_unique<HeartbeatPublisher>(ctx, o));
    out.hb = publishers.back().get();
    return out;
  }
  bool known_to(std::size_t monitor, const std::string& runner) {
    return monitors[monitor]->table().get(runner, SystemClock::instance().now()).has_value();
  }
  std::string task_state(const std::string& id) {
    auto g = tasks->get(id);
    return g ? g->state : "?";
  }
  uint64_t slots_in_use() {
    auto s = pools->status("local");
    return s && !s->empty() ? s.value()[0].in_use : 99;
  }
  uint64_t stat(bool task_queue, const std::string& key) {
    auto s = task_queue ? tasks->stats() : pools->stats();
    if (!s) return 999'999;
    auto it = s->find(key);
    return it == s->end() ? 999'999 : it->second;
  }
  // Summed over the monitor's two groups.
  uint64_t group_sum(std::size_t monitor, std::atomic<uint64_t> monitor::GroupStats::*field) {
    const monitor::MonitorStats& s = monitors[monitor]->stats();
    uint64_t n = 0;
    for (std::size_t g = 0; g < s.groups.size(); ++g) {
      n += (s.per_group[g].*field).load(std::memory_order_relaxed);
    }
    return n;
  }
  uint64_t pending(std::size_t monitor) {
    return group_sum(monitor, &monitor::GroupStats::pending);
  }
  uint64_t acked(std::size_t monitor) { return group_sum(monitor, &monitor::GroupStats::acks); }

  testing::TempDir dir;
  zmq::context_t ctx;
  std::array<std::unique_ptr<monitor::MonitorService>, 2> monitors;
  tq::TaskQueueConfig tasks_cfg;
  pool::PoolConfig pools_cfg;
  std::unique_ptr<tq::TaskQueueService> task_svc;
  std::unique_ptr<pool::PoolManagerService> pool_svc;
  std::unique_ptr<TaskQueueClient> tasks;
  std::unique_ptr<PoolManagerClient> pools;
  std::vector<std::unique_ptr<HeartbeatPublisher>> publishers;
};

TEST_F(SeveralMonitors, APairConvictsADeadRunnerOnceAndEachCopyIsAckedToItsSender) {
  start({std::vector<std::string>{"hb/"}, std::vector<std::string>{"hb/"}});
  Leased r = lease_and_beat("r-pair", {0, 1});
  ASSERT_TRUE(r.hb);
  ASSERT_TRUE(wait_until([&] { return known_to(0, "r-pair") && known_to(1, "r-pair"); }));
  r.hb->abandon();
  // Both monitors send their event to both groups; each group applies the
  // first, counts the second as a duplicate and acknowledges both.
  ASSERT_TRUE(wait_until([&] {
    return stat(true, "events_duplicate") == 1 && stat(false, "events_duplicate") == 1;
  })) << "tq "
      << stat(true, "events_duplicate") << " pm " << stat(false, "events_duplicate");
  EXPECT_EQ(task_state(r.task.task_id), "queued");
  EXPECT_EQ(stat(true, "reassigned"), 1u);
  EXPECT_EQ(slots_in_use(), 0u);
  // Every event acknowledged on the ack socket of the monitor it came from:
  // neither outbox keeps anything.
  ASSERT_TRUE(wait_until([&] { return pending(0) == 0 && pending(1) == 0; }))
      << pending(0) << " " << pending(1);
  EXPECT_GE(acked(0), 2u);  // its event, by each group
  EXPECT_GE(acked(1), 2u);
  // The next attempt is leased by another runner; the dead one's attempt is
  // fenced whichever monitor reported it.
  auto next = tasks->lease("r-next");
  ASSERT_TRUE(next && next.value());
  EXPECT_EQ(next.value()->attempt, 2u);
  EXPECT_EQ(tasks->complete(r.task.task_id, r.task.attempt).error().code, "stale_attempt");
}

TEST_F(SeveralMonitors, OneMonitorOfAPairAloneStillConvicts) {
  start({std::vector<std::string>{"hb/"}, std::vector<std::string>{"hb/"}});
  Leased r = lease_and_beat("r-alone", {0, 1});
  ASSERT_TRUE(r.hb);
  ASSERT_TRUE(wait_until([&] { return known_to(0, "r-alone") && known_to(1, "r-alone"); }));
  monitors[0].reset();  // the first monitor goes away for good
  r.hb->abandon();
  ASSERT_TRUE(wait_until([&] { return task_state(r.task.task_id) == "queued"; }));
  ASSERT_TRUE(wait_until([&] { return slots_in_use() == 0; }));
  ASSERT_TRUE(wait_until([&] { return pending(1) == 0; }));
  EXPECT_EQ(stat(true, "reassigned"), 1u);
  EXPECT_EQ(stat(true, "events_duplicate"), 0u) << "one monitor left, one event";
  // The services keep answering with one monitor of their list gone.
  auto next = tasks->lease("r-next");
  ASSERT_TRUE(next && next.value());
  EXPECT_EQ(next.value()->attempt, 2u);
}

TEST_F(SeveralMonitors, PartitionsByPrefixConvictOnlyTheirOwnRunnersWithoutDuplicates) {
  // Monitor 0 watches runners a-*, monitor 1 runners b-*; every runner
  // publishes to both (a runner need not know its partition).
  start({std::vector<std::string>{"hb/a-"}, std::vector<std::string>{"hb/b-"}});
  Leased a = lease_and_beat("a-1", {0, 1});
  Leased b = lease_and_beat("b-1", {0, 1});
  ASSERT_TRUE(a.hb && b.hb);
  ASSERT_TRUE(wait_until([&] { return known_to(0, "a-1") && known_to(1, "b-1"); }));
  EXPECT_FALSE(known_to(1, "a-1"));
  EXPECT_FALSE(known_to(0, "b-1"));
  a.hb->abandon();
  b.hb->abandon();
  ASSERT_TRUE(wait_until([&] {
    return task_state(a.task.task_id) == "queued" && task_state(b.task.task_id) == "queued";
  }));
  ASSERT_TRUE(wait_until([&] { return slots_in_use() == 0; }));
  ASSERT_TRUE(wait_until([&] { return pending(0) == 0 && pending(1) == 0; }));
  EXPECT_GE(acked(0), 2u);  // a-1's event, by both groups
  EXPECT_GE(acked(1), 2u);  // b-1's
  EXPECT_EQ(stat(true, "reassigned"), 2u);
  EXPECT_EQ(stat(true, "events_duplicate"), 0u);
  EXPECT_EQ(stat(false, "events_duplicate"), 0u);
}

TEST(SeveralMonitorsConfig, ListsAreCheckedTogether) {
  tq::TaskQueueConfig c;
  EXPECT_EQ(c.validate(), "");  // one monitor, the defaults
  c.events_endpoints = {"tcp://a:5556", "tcp://b:5556"};
  EXPECT_NE(c.validate().find("same monitors (2, 1 and 1"), std::string::npos) << c.validate();
  c.ack_endpoints = {"tcp://a:5558", "tcp://b:5558"};
  c.monitor_endpoints = {"tcp://a:5559", "tcp://b:5559"};
  EXPECT_EQ(c.validate(), "");
  c.monitor_endpoints = {"tcp://a:5559", "tcp://a:5559"};
  EXPECT_NE(c.validate().find("monitor 2 repeats monitor 1"), std::string::npos) << c.validate();
  c.monitor_endpoints = {"tcp://a:5559", "tcp://b:5559"};
  c.ack_endpoints = {"tcp://a:5558", "tcp://a:5558"};  // b's acks would reach a
  EXPECT_NE(c.validate().find("monitor 2 repeats monitor 1"), std::string::npos) << c.validate();
  c.ack_endpoints = {"tcp://a:5558", " tcp://b:5558"};  // written "a, b"
  EXPECT_NE(c.validate().find("' tcp://b:5558' is not an endpoint"), std::string::npos)
      << c.validate();
  c.ack_endpoints = {"tcp://a:5558", "b:5558"};
  EXPECT_NE(c.validate().find("is not an endpoint"), std::string::npos) << c.validate();
  c.ack_endpoints = {"tcp://a:5558", "tcp://b:5558"};
  EXPECT_EQ(c.validate(), "");
  c.events_endpoints.assign(kMaxMonitors + 1, "tcp://x:1");
  c.ack_endpoints = c.events_endpoints;
  c.monitor_endpoints = c.events_endpoints;
  EXPECT_NE(c.validate().find("1 to 16 monitors"), std::string::npos) << c.validate();

  // Comma-separated on the command line, or the flag repeated.
  tq::TaskQueueConfig parsed;
  Settings s("task-queue", "test");
  parsed.register_settings(s);
  const char* argv[] = {"task-queue",     "--events-endpoint",  "tcp://a:5556,tcp://b:5556",
                        "--ack-endpoint", "tcp://a:5558",       "--ack-endpoint",
                        "tcp://b:5558",   "--monitor-endpoint", "tcp://a:5559,tcp://b:5559"};
  ASSERT_EQ(s.parse(static_cast<int>(std::size(argv)), argv), std::nullopt);
  EXPECT_EQ(parsed.events_endpoints, (std::vector<std::string>{"tcp://a:5556", "tcp://b:5556"}));
  EXPECT_EQ(parsed.ack_endpoints, (std::vector<std::string>{"tcp://a:5558", "tcp://b:5558"}));
  EXPECT_EQ(parsed.monitor_endpoints, (std::vector<std::string>{"tcp://a:5559", "tcp://b:5559"}));
  EXPECT_EQ(parsed.validate(), "");
}

TEST(SeveralMonitorsConfig, APublisherTakesOneToSixteenMonitors) {
  zmq::context_t ctx;
  HeartbeatOptions o;
  o.runner.runner_id = "r";
  o.runner.task_id = "t";
  o.runner.pool = "p";
  o.endpoints.clear();
  o.endpoint.clear();  // no list, and no single endpoint either
  EXPECT_THROW(HeartbeatPublisher(ctx, o), std::invalid_argument);
  o.endpoints.assign(kMaxMonitorEndpoints + 1, "tcp://127.0.0.1:1");
  EXPECT_THROW(HeartbeatPublisher(ctx, o), std::invalid_argument);
  o.endpoints = {"tcp://127.0.0.1:1", ""};
  EXPECT_THROW(HeartbeatPublisher(ctx, o), std::invalid_argument);
  o.endpoints = {"tcp://127.0.0.1:1", " tcp://127.0.0.1:2"};  // a list written "a, b"
  EXPECT_THROW(HeartbeatPublisher(ctx, o), std::invalid_argument);
}

}  // namespace
}  // namespace rmon::runner
