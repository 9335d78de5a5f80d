#pragma once
// The runner table tests' shared pieces: a heartbeat maker, options, and a
// fixture that drives one table with a fake clock.

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
