// The storm brake and the stall guard, on a fake clock.

#include <gtest/gtest.h>

#include <set>

#include "guards.hpp"
#include "table_test_support.hpp"

namespace rmon::monitor {
namespace {

GuardOptions guard_options(uint64_t min_runners = 10) {
  GuardOptions o;
  o.storm_share = 0.5;
  o.storm_min_runners = min_runners;
  o.stall_threshold = Millis(2000);
  o.stall_max_hold = Millis(10'000);
  return o;
}

class StormBrakeTest : public RunnerTableTest {
 protected:
  bool hold(StormBrake& b, uint64_t running, uint64_t suspect, int64_t wall_ms = 0) {
    return b.hold(running, suspect, clock.now(), wall_ms, table);
  }
  MonitorStats stats{{"g"}};
};

TEST_F(StormBrakeTest, EngagesAboveTheShareOnlyWithEnoughRunners) {
  StormBrake brake(guard_options(10), stats);
  EXPECT_FALSE(hold(brake, 5, 5));      // half: not above it
  EXPECT_FALSE(hold(brake, 1, 8));      // 9 live: below the minimum
  EXPECT_TRUE(hold(brake, 4, 6, 123));  // 6 of 10
  EXPECT_TRUE(stats.brake_engaged.load());
  EXPECT_EQ(stats.brake_since_ms.load(), 123);
  EXPECT_TRUE(hold(brake, 4, 6));
  EXPECT_EQ(stats.brake_engagements.load(), 1u);
  EXPECT_FALSE(hold(brake, 8, 2));  // heartbeats returned
  EXPECT_FALSE(stats.brake_engaged.load());
}

TEST_F(StormBrakeTest, AnOperatorReleaseHoldsUntilTheShareFallsBackOnce) {
  StormBrake brake(guard_options(), stats);
  EXPECT_TRUE(hold(brake, 0, 100));
  brake.release_request().post();  // as the control op does
  EXPECT_FALSE(hold(brake, 0, 100));
  EXPECT_FALSE(hold(brake, 0, 100)) << "stays released while the same storm lasts";
  EXPECT_EQ(stats.brake_operator_releases.load(), 1u);
  EXPECT_FALSE(hold(brake, 100, 0));  // the storm is over
  EXPECT_TRUE(hold(brake, 0, 100)) << "a new storm brakes again";
}

class GuardedTableTest : public RunnerTableTest {
 protected:
  std::size_t live() {
    auto c = table.counters();
    return static_cast<std::size_t>(c.by_state[0] + c.by_state[1]);
  }
};

TEST_F(GuardedTableTest, HeldRunnersThatHeartbeatAgainAreNotTimedOut) {
  MonitorStats stats({"g"});
  StormBrake brake(guard_options(10), stats);
  for (int i = 0; i < 20; ++i) apply(hb("r-" + std::to_string(i), 1));
  // Every heartbeat stops (a network cut): all go suspect, then overdue.
  std::vector<Expired> out;
  std::size_t held = 0;
  for (int step = 0; step < 20; ++step) {
    clock.advance_ms(100);
    const auto c = table.counters();
    const bool hold = brake.hold(c.by_state[0], c.by_state[1], clock.now(), clock.wall_ms(), table);
    held = table.sweep(clock.now(), clock.wall_ms(), out, hold);
  }
  EXPECT_TRUE(out.empty()) << "no event while braked";
  EXPECT_EQ(held, 20u);
  EXPECT_TRUE(brake.engaged());
  // The network comes back for 15 of them; 5 really died.
  // Released with a grace (their own timeout, 1 s): the 5 still silent are
  // convicted after it, not at once.
  for (int step = 0; step < 14; ++step) {
    for (int i = 0; i < 15; ++i) apply(hb("r-" + std::to_string(i), 2 + step));
    clock.advance_ms(100);
    if (step == 5) {
      EXPECT_TRUE(out.empty()) << "convicted during the release grace";
    }
    const auto c = table.counters();
    const bool hold = brake.hold(c.by_state[0], c.by_state[1], clock.now(), clock.wall_ms(), table);
    table.sweep(clock.now(), clock.wall_ms(), out, hold);
  }
  EXPECT_FALSE(brake.engaged());
  std::set<std::string> timed_out;
  for (const Expired& x : out) timed_out.insert(x.event.runner.runner_id);
  EXPECT_EQ(timed_out, (std::set<std::string>{"r-15", "r-16", "r-17", "r-18", "r-19"}));
  EXPECT_EQ(live(), 15u);
}

TEST_F(GuardedTableTest, AStallHoldsUntilIngestDrainsThenGivesAGrace) {
  MonitorStats stats({"g"});
  StallGuard guard(guard_options(), stats);
  apply(hb("r", 1));  // timeout 1000 ms
  const MonoTime planned = clock.now() + Millis(100);
  clock.advance_ms(5000);  // the process was stopped for 5 s
  const MonoTime drained_before = clock.now() - Millis(5000);
  EXPECT_TRUE(guard.hold(clock.now(), planned, drained_before, table));
  EXPECT_TRUE(stats.stalled.load());
  EXPECT_EQ(stats.stalls.load(), 1u);
  std::vector<Expired> out;
  EXPECT_EQ(table.sweep(clock.now(), clock.wall_ms(), out, true), 1u);  // held
  clock.advance_ms(10);
  // Ingest has not drained since: still holding.
  EXPECT_TRUE(guard.hold(clock.now(), std::nullopt, drained_before, table));
  // Ingest drained what queued: the stall is over, with a grace.
  clock.advance_ms(10);
  EXPECT_FALSE(guard.hold(clock.now(), std::nullopt, clock.now(), table));
  EXPECT_FALSE(stats.stalled.load());
  clock.advance_ms(500);
  table.sweep(clock.now(), clock.wall_ms(), out, false);
  EXPECT_TRUE(out.empty()) << "within the grace";
  clock.advance_ms(600);
  table.sweep(clock.now(), clock.wall_ms(), out, false);  // suspect for one check
  clock.advance_ms(100);
  table.sweep(clock.now(), clock.wall_ms(), out, false);
  EXPECT_EQ(out.size(), 1u) << "still silent after a full timeout of grace";
}

TEST_F(GuardedTableTest, ALateIngestLoopIsAStallToo) {
  MonitorStats stats({"g"});
  StallGuard guard(guard_options(), stats);
  const MonoTime start = clock.now();
  clock.advance_ms(1000);
  EXPECT_FALSE(guard.hold(clock.now(), std::nullopt, start, table));  // 1 s: under threshold
  clock.advance_ms(1500);
  EXPECT_TRUE(guard.hold(clock.now(), std::nullopt, start, table));  // 2.5 s of backlog
  EXPECT_FALSE(guard.hold(clock.now(), std::nullopt, clock.now(), table));
}

TEST_F(GuardedTableTest, AStallWhoseIngestNeverDrainsConvictsAnywayAfterTheMaxHold) {
  MonitorStats stats({"g"});
  StallGuard guard(guard_options(), stats);  // threshold 2 s, max hold 10 s
  apply(hb("r", 1));                         // timeout 1000 ms; it dies now
  const MonoTime never_drained = clock.now();
  clock.advance_ms(3000);  // ingest has not found its socket empty since
  EXPECT_TRUE(guard.hold(clock.now(), std::nullopt, never_drained, table));
  const MonoTime seen = clock.now();
  std::vector<Expired> out;
  while (clock.now() - seen < Millis(10'000)) {
    table.sweep(clock.now(), clock.wall_ms(), out, true);
    clock.advance_ms(100);
    if (clock.now() - seen < Millis(10'000)) {
      ASSERT_TRUE(guard.hold(clock.now(), std::nullopt, never_drained, table));
    }
  }
  EXPECT_TRUE(out.empty()) << "convicted while held";
  EXPECT_EQ(stats.stall_hold_expired.load(), 0u);
  // 10 s held and ingest still behind: the guard gives up and convicts.
  EXPECT_FALSE(guard.hold(clock.now(), std::nullopt, never_drained, table));
  EXPECT_EQ(stats.stall_hold_expired.load(), 1u);
  EXPECT_FALSE(stats.stalled.load());
  table.sweep(clock.now(), clock.wall_ms(), out, false);
  ASSERT_EQ(out.size(), 1u) << "past its deadline, no grace: convicted at once";
  EXPECT_EQ(out[0].event.runner.runner_id, "r");
  // Ingest is still behind: that alone does not start a new stall.
  for (int i = 0; i < 50; ++i) {
    clock.advance_ms(100);
    EXPECT_FALSE(guard.hold(clock.now(), std::nullopt, never_drained, table));
  }
  EXPECT_EQ(stats.stalls.load(), 1u);
  EXPECT_EQ(stats.stall_hold_expired.load(), 1u);
  // A dispatch loop late again is a new stall, held at most as long.
  const MonoTime planned = clock.now() + Millis(100);
  clock.advance_ms(3000);
  EXPECT_TRUE(guard.hold(clock.now(), planned, never_drained, table));
  EXPECT_EQ(stats.stalls.load(), 2u);
  clock.advance_ms(10'000);
  EXPECT_FALSE(guard.hold(clock.now(), std::nullopt, never_drained, table));
  EXPECT_EQ(stats.stall_hold_expired.load(), 2u);
  // Once ingest has drained, its lag counts again.
  const MonoTime drained = clock.now();
  EXPECT_FALSE(guard.hold(clock.now(), std::nullopt, drained, table));
  clock.advance_ms(2500);
  EXPECT_TRUE(guard.hold(clock.now(), std::nullopt, drained, table));
  EXPECT_EQ(stats.stalls.load(), 3u);
}

TEST_F(GuardedTableTest, ALaterStallOrBrakeGraceNeverShortensALongerRestartGrace) {
  MonitorStats stats({"g"});
  StallGuard stall(guard_options(), stats);
  StormBrake brake(guard_options(1), stats);
  const MonoTime t0 = clock.now();
  apply(hb("r", 1));  // timeout 1000 ms; silent from now on
  clock.advance_ms(1);
  table.grant_grace(clock.now(), Millis(10'000));  // a restart with --restart-grace-ms 10000
  std::vector<Expired> out;
  // A stall seen and over 3 s later: a grace of r's own timeout (1 s) from then.
  const MonoTime planned = clock.now();
  clock.advance_ms(3000);
  EXPECT_TRUE(stall.hold(clock.now(), planned, planned, table));
  EXPECT_FALSE(stall.hold(clock.now(), std::nullopt, clock.now(), table));
  // A storm brake engaged and released 1 s later: another grace of 1 s.
  clock.advance_ms(1000);
  EXPECT_TRUE(brake.hold(0, 1, clock.now(), clock.wall_ms(), table));
  clock.advance_ms(1000);
  EXPECT_FALSE(brake.hold(1, 0, clock.now(), clock.wall_ms(), table));
  // Both would have ended by 6 s; the restart grace runs to 10 s.
  while (clock.now() < t0 + Millis(10'001 - 100)) {
    clock.advance_ms(100);
    table.sweep(clock.now(), clock.wall_ms(), out, false);
    ASSERT_TRUE(out.empty()) << "convicted within the restart grace, at "
                             << (clock.now() - t0).count() / 1'000'000 << " ms";
  }
  for (int i = 0; i < 3; ++i) {  // then suspect for one check, then convicted
    clock.advance_ms(100);
    table.sweep(clock.now(), clock.wall_ms(), out, false);
  }
  ASSERT_EQ(out.size(), 1u) << "detected once the longest grace is over";
}

TEST_F(GuardedTableTest, ALaterGraceExtendsAnEarlierOneThatEndsSooner) {
  const MonoTime t0 = clock.now();
  apply(hb("r", 1));  // timeout 1000 ms
  clock.advance_ms(1);
  table.grant_grace(clock.now(), Millis(500));  // ends at 501 ms
  clock.advance_ms(400);
  table.grant_grace(clock.now());  // its own timeout from 401 ms: ends at 1401 ms
  std::vector<Expired> out;
  while (clock.now() < t0 + Millis(1400)) {
    clock.advance_ms(100);
    table.sweep(clock.now(), clock.wall_ms(), out, false);
  }
  EXPECT_TRUE(out.empty()) << "the later grace counts";
  for (int i = 0; i < 3; ++i) {
    clock.advance_ms(100);
    table.sweep(clock.now(), clock.wall_ms(), out, false);
  }
  EXPECT_EQ(out.size(), 1u);
}

}  // namespace
}  // namespace rmon::monitor
