#pragma once
// The whole stack in-process for tests: runner-monitor, task-queue and
// pool-manager on 127.0.0.1 wildcard ports, data in a temp folder, /metrics
// off. Each service's settings can be adjusted before start().

#include <memory>

#include "pool_service.hpp"
#include "rmon/clock.hpp"
#include "service.hpp"
#include "task_service.hpp"
#include "temp_dir.hpp"

namespace rmon::testing {

// A monitor on 127.0.0.1 wildcard ports (read them back from endpoints()),
// /metrics off, few shards, quick redelivery.
inline monitor::MonitorConfig loopback_monitor_config() {
  monitor::MonitorConfig c;
  c.heartbeat_endpoint = "tcp://127.0.0.1:*";
  c.groups = {"task-queue=tcp://127.0.0.1:*", "pool-manager=tcp://127.0.0.1:*"};
  c.ack_endpoint = "tcp://127.0.0.1:*";
  c.control_endpoint = "tcp://127.0.0.1:*";
  c.metrics_address = "";
  c.shards = 4;
  c.redelivery_interval_ms = 500;
  c.data_dir.clear();  // in memory: these tests are not about restarts
  return c;
}

class Stack {
 public:
  Stack() : monitor(loopback_monitor_config()) {
    for (ConsumerServiceConfig* c : {static_cast<ConsumerServiceConfig*>(&tasks),
                                     static_cast<ConsumerServiceConfig*>(&pools)}) {
      c->data_dir = dir.str();
      c->sync = "normal";
      c->api_endpoint = "tcp://127.0.0.1:*";
      c->metrics_address = "";
      c->monitor_timeout_ms = 1000;
      c->reconcile_interval_ms = 100;
      c->end_settle_ms = 300;
    }
    tasks.backoff_base_ms = 1;
    tasks.backoff_cap_ms = 1;
  }
  void start() {
    monitor_svc = std::make_unique<monitor::MonitorService>(monitor, SystemClock::instance());
    monitor_svc->start();
    const auto& ep = monitor_svc->endpoints();
    tasks.events_endpoint = ep.groups[0];
    pools.events_endpoint = ep.groups[1];
    for (ConsumerServiceConfig* c : {static_cast<ConsumerServiceConfig*>(&tasks),
                                     static_cast<ConsumerServiceConfig*>(&pools)}) {
      c->ack_endpoint = ep.ack;
      c->monitor_endpoint = ep.control;
    }
    task_svc = std::make_unique<tq::TaskQueueService>(tasks, SystemClock::instance());
    task_svc->start();
    pool_svc = std::make_unique<pool::PoolManagerService>(pools, SystemClock::instance());
    pool_svc->start();
  }
  ~Stack() {
    pool_svc.reset();
    task_svc.reset();
    monitor_svc.reset();
  }
  const std::string& heartbeat_endpoint() const { return monitor_svc->endpoints().heartbeat; }
  const std::string& monitor_endpoint() const { return monitor_svc->endpoints().control; }
  const std::string& task_endpoint() const { return task_svc->endpoints().api; }
  const std::string& pool_endpoint() const { return pool_svc->endpoints().api; }

  TempDir dir;
  monitor::MonitorConfig monitor;
  tq::TaskQueueConfig tasks;
  pool::PoolConfig pools;
  std::unique_ptr<monitor::MonitorService> monitor_svc;
  std::unique_ptr<tq::TaskQueueService> task_svc;
  std::unique_ptr<pool::PoolManagerService> pool_svc;
};

}  // namespace rmon::testing
