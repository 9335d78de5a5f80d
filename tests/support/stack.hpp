#pragma once
// The whole stack in-process for tests: runner-monitor, task-queue and
// pool-manager on 127.0.0.1 wildcard ports (loopback.hpp), data in a temp
// folder, /metrics off. Each service's settings can be adjusted before
// start().

#include <memory>

#include "loopback.hpp"
#include "pool_service.hpp"
#include "rmon/clock.hpp"
#include "service.hpp"
#include "task_service.hpp"
#include "temp_dir.hpp"

namespace rmon::testing {

class Stack {
 public:
  Stack()
      : monitor(loopback_monitor_config()),
        tasks(loopback_consumer_config<tq::TaskQueueConfig>(dir.str())),
        pools(loopback_consumer_config<pool::PoolConfig>(dir.str())) {
    for (ConsumerServiceConfig* c : {static_cast<ConsumerServiceConfig*>(&tasks),
                                     static_cast<ConsumerServiceConfig*>(&pools)}) {
      c->monitor_timeout_ms = 1000;
      c->end_settle_ms = 300;
    }
    tasks.backoff_base_ms = 1;
    tasks.backoff_cap_ms = 1;
  }
  void start() {
    monitor_svc = std::make_unique<monitor::MonitorService>(monitor, SystemClock::instance());
    monitor_svc->start();
    connect_to_monitor(tasks, monitor_svc->endpoints(), 0);
    connect_to_monitor(pools, monitor_svc->endpoints(), 1);
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
