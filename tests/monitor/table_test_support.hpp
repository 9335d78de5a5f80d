#pragma once
// The monitor unit tests' shared pieces: a heartbeat maker, a timeout event
// maker and the two groups, table options, and a fixture that drives one
// table with a fake clock.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "rmon/fake_clock.hpp"
#include "runner_table.hpp"

namespace rmon::monitor {

using protocol::PoolType;

inline Heartbeat hb(const std::string& runner, uint64_t seq, const std::string& task = "t-1",
                    uint64_t attempt = 1) {
  Heartbeat h;
  h.runner.runner_id = runner;
  h.runner.task_id = task;
  h.runner.attempt = attempt;
  h.runner.pool = "pool-a";
  h.runner.pool_type = PoolType::kLocalProcess;
  h.runner.pid = 4321;
  h.seq = seq;
  h.timeout_ms = 1000;
  return h;
}

// The groups of a default stack, in the monitor's order.
inline const std::vector<std::string> kGroups = {"task-queue", "pool-manager"};

// Runner r-<n>'s first timeout event, ev-<n>, for task t-<n> attempt 1.
inline TimeoutEvent event(int n) {
  TimeoutEvent ev;
  ev.event_id = "ev-" + std::to_string(n);
  ev.runner.runner_id = "r-" + std::to_string(n);
  ev.runner.task_id = "t-" + std::to_string(n);
  ev.runner.attempt = 1;
  ev.runner.pool = "pool";
  ev.delivery = 1;
  return ev;
}

inline TableOptions options(uint32_t shards = 4) {
  TableOptions o;
  o.shards = shards;
  o.retention_ms = 10'000;
  o.event_id_prefix = "test";
  return o;
}

class RunnerTableTest : public ::testing::Test {
 protected:
  Applied apply(const Heartbeat& h) { return table.apply(h, clock.now(), clock.wall_ms()); }
  std::vector<Expired> sweep() {
    std::vector<Expired> out;
    table.sweep(clock.now(), clock.wall_ms(), out);
    return out;
  }
  RunnerState state(const std::string& id) { return table.get(id, clock.now())->state; }

  FakeClock clock;
  RunnerTable table{options()};
};

}  // namespace rmon::monitor
