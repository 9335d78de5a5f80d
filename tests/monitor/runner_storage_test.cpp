// How the table stores runners (RunnerSet): ids live inside each runner's
// allocation, and a runner whose new task id does not fit moves to a larger
// one. Moving must keep everything the runner had: its timing in the deadline
// index, its fences, its counters. Fake clock, no sockets.

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "rmon/protocol/limits.hpp"
#include "table_test_support.hpp"

namespace rmon::monitor {
namespace {

std::string long_task(std::size_t i, std::size_t len = protocol::kMaxIdBytes) {
  std::string s = "task-" + std::to_string(i) + "-";
  s.resize(len, 'x');
  return s;
}

TEST_F(RunnerTableTest, ARunnerMovingToALongerTaskIdKeepsItsDeadline) {
  ASSERT_EQ(apply(hb("r1", 1, "t")), Applied::kAdded);
  clock.advance_ms(400);
  // Same lifecycle cannot change the task id; a new task can, and is longer.
  ASSERT_EQ(apply(hb("r1", 1, long_task(1))), Applied::kNewLifecycle);
  EXPECT_EQ(table.get("r1", clock.now())->runner.task_id, long_task(1));
  EXPECT_EQ(table.get("r1", clock.now())->runner.runner_id, "r1");
  clock.advance_ms(999);
  EXPECT_TRUE(sweep().empty());
  clock.advance_ms(1);
  auto out = sweep();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].event.runner.task_id, long_task(1));
  EXPECT_EQ(out[0].event.runner.pid, 4321u);
  EXPECT_EQ(table.size(), 1u);
}

TEST_F(RunnerTableTest, AMovedRunnerKeepsTheFencesOfTheTasksItLeft) {
  apply(hb("r1", 1, "t-1"));
  clock.advance_ms(1000);
  ASSERT_EQ(sweep().size(), 1u);  // t-1 timed out
  Heartbeat next = hb("r1", 1, long_task(2));
  next.timeout_ms = 3'600'000;
  ASSERT_EQ(apply(next), Applied::kNewLifecycle);
  EXPECT_EQ(apply(hb("r1", 5, "t-1")), Applied::kLate);
  EXPECT_EQ(table.get("r1", clock.now())->runner.task_id, long_task(2));
  EXPECT_EQ(table.counters().timeouts, 1u);
}

TEST_F(RunnerTableTest, ShorterTaskIdsReuseTheRoomALongerOneLeft) {
  apply(hb("r1", 1, long_task(1)));
  apply(hb("r1", 1, "t-2"));
  EXPECT_EQ(table.get("r1", clock.now())->runner.task_id, "t-2");
  apply(hb("r1", 1, long_task(3, 40)));
  EXPECT_EQ(table.get("r1", clock.now())->runner.task_id, long_task(3, 40));
}

TEST_F(RunnerTableTest, ControlAddOfALongerTaskMovesTheRunnerToo) {
  Heartbeat done = hb("r1", 1, "t");
  done.state = RunnerState::kCompleted;
  apply(done);
  ASSERT_EQ(table.add(hb("r1", 0, long_task(7)), clock.now(), clock.wall_ms()),
            ControlError::kNone);
  auto v = table.get("r1", clock.now());
  ASSERT_TRUE(v);
  EXPECT_EQ(v->runner.task_id, long_task(7));
  EXPECT_EQ(v->state, RunnerState::kRunning);
  clock.advance_ms(1000);
  EXPECT_EQ(sweep().size(), 1u);
}

// Many runners in a few shards move while armed at different times: the
// index must still hold each exactly once, at its own time.
TEST(RunnerStorage, ManyMovesKeepTheIndexConsistent) {
  FakeClock clock;
  RunnerTable table(options(2));
  const MonoTime start = clock.now();
  constexpr std::size_t kRunners = 300;
  for (std::size_t i = 0; i < kRunners; ++i) {
    Heartbeat h = hb("runner-" + std::to_string(i), 1, "t");
    h.timeout_ms = 1000 + 10 * i;
    ASSERT_EQ(table.apply(h, clock.now(), clock.wall_ms()), Applied::kAdded);
  }
  clock.advance_ms(50);
  for (std::size_t i = 0; i < kRunners; i += 2) {
    Heartbeat h = hb("runner-" + std::to_string(i), 1, long_task(i));
    h.timeout_ms = 1000 + 10 * i;
    ASSERT_EQ(table.apply(h, clock.now(), clock.wall_ms()), Applied::kNewLifecycle);
  }
  std::set<std::string> timed_out;
  std::vector<Expired> out;
  for (int step = 0; step < 500; ++step) {
    clock.advance_ms(10);
    out.clear();
    table.sweep(clock.now(), clock.wall_ms(), out);
    for (const Expired& x : out) {
      const std::size_t i = std::stoul(x.event.runner.runner_id.substr(7));
      EXPECT_EQ(x.event.runner.task_id, i % 2 == 0 ? long_task(i) : "t") << i;
      // Each at its own deadline (moved ones were heard from 50 ms later),
      // found by the first sweep after it.
      const int64_t heard_ms = i % 2 == 0 ? 50 : 0;
      EXPECT_EQ(x.deadline, start + Millis(heard_ms + 1000 + 10 * static_cast<int64_t>(i))) << i;
      EXPECT_LT(clock.now() - x.deadline, Millis(10)) << i;
      EXPECT_TRUE(timed_out.insert(x.event.runner.runner_id).second);
    }
  }
  EXPECT_EQ(timed_out.size(), kRunners);
  EXPECT_EQ(table.counters().timeouts, kRunners);
}

TEST_F(RunnerTableTest, IdsOfTheLongestAllowedLengthAreKeptWhole) {
  const std::string id(protocol::kMaxIdBytes, 'r');
  const std::string task(protocol::kMaxIdBytes, 't');
  ASSERT_EQ(apply(hb(id, 1, task)), Applied::kAdded);
  auto v = table.get(id, clock.now());
  ASSERT_TRUE(v);
  EXPECT_EQ(v->runner.runner_id, id);
  EXPECT_EQ(v->runner.task_id, task);
  EXPECT_FALSE(table.get(id.substr(1), clock.now()));
  auto page = table.list({}, 10, clock.now());
  ASSERT_EQ(page.runners.size(), 1u);
  EXPECT_EQ(page.runners[0].runner.runner_id, id);
  EXPECT_TRUE(table.remove(id));
  EXPECT_EQ(table.size(), 0u);
}

TEST_F(RunnerTableTest, IntervalAndPidAreKeptWithTheRunner) {
  Heartbeat h = hb("r1", 1);
  h.interval_ms = 250;
  apply(h);
  auto v = table.get("r1", clock.now());
  ASSERT_TRUE(v);
  EXPECT_EQ(v->interval_ms, 250u);
  EXPECT_EQ(v->runner.pid, 4321u);
  Heartbeat without = hb("r1", 2);
  without.runner.pid.reset();
  apply(without);
  v = table.get("r1", clock.now());
  EXPECT_FALSE(v->interval_ms);
  EXPECT_FALSE(v->runner.pid);
}

}  // namespace
}  // namespace rmon::monitor
