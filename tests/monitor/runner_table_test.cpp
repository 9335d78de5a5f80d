// The runner table's state machine on a fake clock: no sockets, no sleeps.

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <thread>

#include "pool_names.hpp"
#include "rmon/protocol/codec.hpp"
#include "table_test_support.hpp"

namespace rmon::monitor {
namespace {

// Runner id "r<i>". Prepends a char, not the literal "r": GCC 12 at -O3
// (Release) inlines std::string's replace into these loops and reports a
// false -Wrestrict on a 1-character literal (GCC bug 105329), which
// RMON_WERROR makes an error.
std::string rid(int i) { return 'r' + std::to_string(i); }

TEST_F(RunnerTableTest, ARunningHeartbeatFromAnUnknownRunnerAddsIt) {
  EXPECT_EQ(apply(hb("r1", 1)), Applied::kAdded);
  auto v = table.get("r1", clock.now());
  ASSERT_TRUE(v);
  EXPECT_EQ(v->state, RunnerState::kRunning);
  EXPECT_EQ(v->runner.pool, "pool-a");
  EXPECT_EQ(v->runner.pid, 4321u);
  EXPECT_EQ(v->timeout_ms, 1000u);
  EXPECT_EQ(v->last_seq, 1u);
  EXPECT_EQ(v->added_at_ms, clock.wall_ms());
  EXPECT_EQ(table.counters().by_state[0], 1);
}

TEST_F(RunnerTableTest, SilencePastTheTimeoutProducesExactlyOneEvent) {
  Heartbeat h = hb("r1", 5);
  h.runner.progress = std::string("\x01", 1);
  apply(h);
  const int64_t heard_wall = clock.wall_ms();
  clock.advance_ms(999);
  EXPECT_TRUE(sweep().empty());
  clock.advance_ms(1);
  auto out = sweep();
  ASSERT_EQ(out.size(), 1u);
  const auto& ev = out[0].event;
  EXPECT_EQ(ev.runner.runner_id, "r1");
  EXPECT_EQ(ev.runner.task_id, "t-1");
  EXPECT_EQ(ev.runner.attempt, 1u);
  EXPECT_EQ(ev.runner.pid, 4321u);
  EXPECT_EQ(ev.runner.progress, std::string("\x01", 1));
  EXPECT_EQ(ev.last_seq, 5u);
  EXPECT_EQ(ev.last_heartbeat_ms, heard_wall);
  EXPECT_EQ(ev.detected_at_ms, clock.wall_ms());
  EXPECT_EQ(ev.timeout_ms, 1000u);
  EXPECT_EQ(ev.delivery, 1u);
  EXPECT_EQ(ev.event_id, "test-1");
  EXPECT_EQ(out[0].deadline, clock.now());
  EXPECT_EQ(state("r1"), RunnerState::kFailed);
  clock.advance_ms(5000);
  EXPECT_TRUE(sweep().empty());
  EXPECT_EQ(table.counters().timeouts, 1u);
}

TEST_F(RunnerTableTest, HeartbeatsKeepARunnerAliveIndefinitely) {
  apply(hb("r1", 1));
  for (uint64_t seq = 2; seq < 100; ++seq) {
    clock.advance_ms(400);
    EXPECT_EQ(apply(hb("r1", seq)), Applied::kUpdated);
    EXPECT_TRUE(sweep().empty());
    EXPECT_EQ(state("r1"), RunnerState::kRunning);
  }
}

TEST_F(RunnerTableTest, HalfTheTimeoutShowsSuspectAndAHeartbeatClearsIt) {
  apply(hb("r1", 1));
  clock.advance_ms(499);
  sweep();
  EXPECT_EQ(state("r1"), RunnerState::kRunning);
  clock.advance_ms(1);
  EXPECT_TRUE(sweep().empty());
  EXPECT_EQ(state("r1"), RunnerState::kSuspect);
  EXPECT_EQ(apply(hb("r1", 2)), Applied::kUpdated);
  EXPECT_EQ(state("r1"), RunnerState::kRunning);
  // The deadline moved with the heartbeat.
  clock.advance_ms(999);
  EXPECT_TRUE(sweep().empty());
  clock.advance_ms(1);
  EXPECT_EQ(sweep().size(), 1u);
}

TEST_F(RunnerTableTest, StaleOrRepeatedSeqIsIgnoredAndCounted) {
  apply(hb("r1", 10));
  clock.advance_ms(900);
  EXPECT_EQ(apply(hb("r1", 10)), Applied::kDuplicate);
  EXPECT_EQ(apply(hb("r1", 3)), Applied::kDuplicate);
  EXPECT_EQ(table.counters().duplicates, 2u);
  EXPECT_EQ(table.get("r1", clock.now())->last_seq, 10u);
  clock.advance_ms(100);  // duplicates did not refresh the deadline
  EXPECT_EQ(sweep().size(), 1u);
}

TEST_F(RunnerTableTest, ANewTaskOrHigherAttemptStartsANewLifecycle) {
  apply(hb("r1", 50));
  EXPECT_EQ(apply(hb("r1", 1, "t-2")), Applied::kNewLifecycle);
  EXPECT_EQ(table.get("r1", clock.now())->runner.task_id, "t-2");
  EXPECT_EQ(apply(hb("r1", 1, "t-2", 2)), Applied::kNewLifecycle);
  EXPECT_EQ(apply(hb("r1", 99, "t-2", 1)), Applied::kStaleAttempt);
  EXPECT_EQ(table.get("r1", clock.now())->runner.attempt, 2u);
  EXPECT_EQ(table.counters().stale_attempts, 1u);
}

TEST_F(RunnerTableTest, ATimedOutAttemptIsNeverRevivedByALateHeartbeat) {
  apply(hb("r1", 1));
  clock.advance_ms(1000);
  ASSERT_EQ(sweep().size(), 1u);
  EXPECT_EQ(apply(hb("r1", 2)), Applied::kLate);
  EXPECT_EQ(state("r1"), RunnerState::kFailed);
  clock.advance_ms(1000);
  EXPECT_TRUE(sweep().empty());
  EXPECT_EQ(table.counters().late, 1u);
  // The next attempt of the task is a new lifecycle and is timed again.
  EXPECT_EQ(apply(hb("r1", 1, "t-1", 2)), Applied::kNewLifecycle);
  EXPECT_EQ(state("r1"), RunnerState::kRunning);
  clock.advance_ms(1000);
  auto out = sweep();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].event.runner.attempt, 2u);
}

TEST_F(RunnerTableTest, ARunnerStillTalkingAboutATimedOutAttemptIsNeverForgottenOrRevived) {
  apply(hb("r1", 1));
  clock.advance_ms(1000);
  ASSERT_EQ(sweep().size(), 1u);
  // It keeps heartbeating the same attempt well past the retention (10 s).
  for (uint64_t seq = 2; seq < 300; ++seq) {
    clock.advance_ms(100);
    EXPECT_EQ(apply(hb("r1", seq)), Applied::kLate);
    EXPECT_TRUE(sweep().empty());
  }
  EXPECT_EQ(state("r1"), RunnerState::kFailed);
  // Once it stops, it is forgotten a retention period later.
  clock.advance_ms(10'000);
  EXPECT_TRUE(sweep().empty());
  EXPECT_FALSE(table.get("r1", clock.now()));
}

TEST_F(RunnerTableTest, ControlAddCannotReviveATimedOutAttempt) {
  apply(hb("r1", 1));
  clock.advance_ms(1000);
  ASSERT_EQ(sweep().size(), 1u);
  EXPECT_EQ(table.add(hb("r1", 0), clock.now(), clock.wall_ms()), ControlError::kConflict);
  EXPECT_EQ(table.add(hb("r1", 0, "t-1", 2), clock.now(), clock.wall_ms()), ControlError::kNone);
}

TEST_F(RunnerTableTest, TerminalStatesStopTimingAndAreForgottenAfterRetention) {
  apply(hb("r1", 1));
  Heartbeat done = hb("r1", 2);
  done.state = RunnerState::kCompleted;
  EXPECT_EQ(apply(done), Applied::kUpdated);
  EXPECT_EQ(state("r1"), RunnerState::kCompleted);
  clock.advance_ms(9'999);
  EXPECT_TRUE(sweep().empty());
  EXPECT_TRUE(table.get("r1", clock.now()));
  EXPECT_EQ(apply(hb("r1", 3)), Applied::kLate);  // restarts the retention
  clock.advance_ms(9'999);
  EXPECT_TRUE(sweep().empty());
  EXPECT_TRUE(table.get("r1", clock.now()));
  clock.advance_ms(1);
  EXPECT_TRUE(sweep().empty());
  EXPECT_FALSE(table.get("r1", clock.now()));
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.counters().by_state[2], 0);
}

TEST_F(RunnerTableTest, TimedOutRunnersAreAlsoForgottenAfterRetention) {
  apply(hb("r1", 1));
  clock.advance_ms(1000);
  ASSERT_EQ(sweep().size(), 1u);
  clock.advance_ms(10'000);
  sweep();
  EXPECT_EQ(table.size(), 0u);
}

TEST_F(RunnerTableTest, TimeoutsAreClampedToTheConfiguredBounds) {
  Heartbeat h = hb("low", 1);
  h.timeout_ms = 1;
  apply(h);
  EXPECT_EQ(table.get("low", clock.now())->timeout_ms, 100u);
  h = hb("high", 1);
  h.timeout_ms = 1'000'000'000'000ULL;
  apply(h);
  EXPECT_EQ(table.get("high", clock.now())->timeout_ms, 86'400'000u);
  h = hb("none", 1);
  h.timeout_ms.reset();
  apply(h);
  EXPECT_EQ(table.get("none", clock.now())->timeout_ms, 60'000u);
  clock.advance_ms(100);
  auto out = sweep();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].event.runner.runner_id, "low");
}

TEST_F(RunnerTableTest, AShorterTimeoutTakesEffectAtOnce) {
  Heartbeat h = hb("r1", 1);
  h.timeout_ms = 60'000;
  apply(h);
  h = hb("r1", 2);
  h.timeout_ms = 200;
  apply(h);
  clock.advance_ms(200);
  EXPECT_EQ(sweep().size(), 1u);
}

TEST_F(RunnerTableTest, QueriesFilterSortAndLimit) {
  for (int i = 9; i >= 0; --i) {
    Heartbeat h = hb(rid(i), 1);
    h.runner.pool = i % 2 ? "odd" : "even";
    apply(h);
  }
  auto all = table.list({}, 100, clock.now());
  ASSERT_EQ(all.runners.size(), 10u);
  EXPECT_FALSE(all.more);
  EXPECT_EQ(all.runners.front().runner.runner_id, "r0");
  EXPECT_EQ(all.runners.back().runner.runner_id, "r9");
  auto odd = table.list({std::nullopt, std::string("odd")}, 2, clock.now());
  ASSERT_EQ(odd.runners.size(), 2u);
  EXPECT_TRUE(odd.more);
  EXPECT_EQ(odd.runners[0].runner.runner_id, "r1");
  EXPECT_EQ(odd.runners[1].runner.runner_id, "r3");
  EXPECT_FALSE(table.list({}, 0, clock.now()).more);  // no last id to page on from
  EXPECT_TRUE(table.list({}, 0, clock.now()).runners.empty());
  EXPECT_EQ(table.count({std::nullopt, std::string("even")}), 5u);
  EXPECT_EQ(table.count({RunnerState::kRunning, std::nullopt}), 10u);
  EXPECT_EQ(table.count({RunnerState::kFailed, std::nullopt}), 0u);
  clock.advance_ms(700);
  EXPECT_EQ(table.get("r0", clock.now())->silence_ms, 700u);
}

TEST_F(RunnerTableTest, ListPagesOnAfterTheLastIdUntilNothingMoreMatches) {
  for (int i = 0; i < 25; ++i)
    apply(hb('r' + std::string(i < 10 ? "0" : "") + std::to_string(i), 1));  // see rid()
  std::vector<std::string> seen;
  std::optional<std::string> after;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = table.list({}, 10, clock.now(), after);
    for (const auto& v : page.runners) seen.push_back(v.runner.runner_id);
    if (!page.more) break;
    after = seen.back();
  }
  ASSERT_EQ(seen.size(), 25u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 25u);
}

TEST_F(RunnerTableTest, ListStopsBeforeItsReplyWouldPassTheByteBudget) {
  for (int i = 0; i < 10; ++i) {
    Heartbeat h = hb(rid(i), 1);
    h.runner.progress = "\xc5\x0f\xa0" + std::string(4000, 'p');  // bin16 of 4000 bytes
    apply(h);
  }
  const std::size_t one = protocol::encoded_size_bound(*table.get("r0", clock.now()));
  auto page = table.list({}, 100, clock.now(), std::nullopt, 3 * one + one / 2);
  EXPECT_EQ(page.runners.size(), 3u);
  EXPECT_TRUE(page.more);
  // One runner always fits, whatever the budget, so paging always advances.
  auto tiny = table.list({}, 100, clock.now(), std::nullopt, 1);
  EXPECT_EQ(tiny.runners.size(), 1u);
  EXPECT_TRUE(tiny.more);
}

TEST_F(RunnerTableTest, ControlAddRemoveAndSetState) {
  Heartbeat spec = hb("r1", 0);
  EXPECT_EQ(table.add(spec, clock.now(), clock.wall_ms()), ControlError::kNone);
  EXPECT_EQ(table.add(spec, clock.now(), clock.wall_ms()), ControlError::kExists);
  // The runner's first heartbeat may carry any seq after an add.
  EXPECT_EQ(apply(hb("r1", 0)), Applied::kUpdated);
  EXPECT_EQ(table.set_state("r1", RunnerState::kCompleted, clock.now(), clock.wall_ms()),
            ControlError::kNone);
  EXPECT_EQ(state("r1"), RunnerState::kCompleted);
  EXPECT_EQ(table.set_state("r1", RunnerState::kSuspect, clock.now(), clock.wall_ms()),
            ControlError::kBadRequest);
  EXPECT_EQ(table.set_state("nope", RunnerState::kFailed, clock.now(), clock.wall_ms()),
            ControlError::kNotFound);
  EXPECT_EQ(table.set_state("r1", RunnerState::kRunning, clock.now(), clock.wall_ms()),
            ControlError::kNone);
  clock.advance_ms(1000);
  EXPECT_EQ(sweep().size(), 1u);  // running again means timed again
  EXPECT_EQ(table.set_state("r1", RunnerState::kRunning, clock.now(), clock.wall_ms()),
            ControlError::kConflict);
  EXPECT_TRUE(table.remove("r1"));
  EXPECT_FALSE(table.remove("r1"));
  EXPECT_EQ(table.size(), 0u);
  for (const auto n : table.counters().by_state) EXPECT_EQ(n, 0);
}

TEST_F(RunnerTableTest, RemovedRunnersAreNeverSwept) {
  apply(hb("r1", 1));
  table.remove("r1");
  clock.advance_ms(5000);
  EXPECT_TRUE(sweep().empty());
  EXPECT_FALSE(table.next_due());
}

TEST(RunnerTable, ManyShardsTimeOutExactlyTheSilentRunners) {
  FakeClock clock;
  RunnerTable table(options(64));
  for (int i = 0; i < 10'000; ++i) {
    table.apply(hb(rid(i), 1), clock.now(), clock.wall_ms());
  }
  std::set<std::string> silent;
  for (int step = 1; step <= 5; ++step) {
    clock.advance_ms(300);
    for (int i = 0; i < 10'000; ++i) {
      if (i % 7 == 0) continue;  // these stop
      table.apply(hb(rid(i), 1 + step), clock.now(), clock.wall_ms());
    }
    std::vector<Expired> out;
    table.sweep(clock.now(), clock.wall_ms(), out);
    for (const auto& x : out) EXPECT_TRUE(silent.insert(x.event.runner.runner_id).second);
  }
  EXPECT_EQ(silent.size(), 1429u);  // ceil(10000 / 7)
  for (const auto& id : silent) EXPECT_EQ(std::stoi(id.substr(1)) % 7, 0) << id;
  EXPECT_EQ(table.count({RunnerState::kFailed, std::nullopt}), 1429u);
}

TEST(RunnerTable, NextDueTracksTheEarliestArmedRunner) {
  FakeClock clock;
  RunnerTable table(options());
  EXPECT_FALSE(table.next_due());
  table.apply(hb("r1", 1), clock.now(), clock.wall_ms());
  EXPECT_EQ(*table.next_due(), clock.now() + Millis(500));  // suspect check
}

TEST(RunnerTable, InvalidOptionsAreRejectedAtConstruction) {
  TableOptions o = options();
  o.shards = 3;
  EXPECT_THROW(RunnerTable{o}, std::invalid_argument);
  o = options();
  o.default_timeout_ms = 50;
  EXPECT_THROW(RunnerTable{o}, std::invalid_argument);
  o = options();
  o.suspect_ratio = 0;
  EXPECT_THROW(RunnerTable{o}, std::invalid_argument);
}

// Run under TSan in CI: concurrent ingest, sweep and queries on shared shards.
TEST(RunnerTable, ConcurrentIngestSweepAndQueriesStayConsistent) {
  FakeClock clock;
  RunnerTable table(options(8));
  constexpr int kRunners = 2000;
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      for (uint64_t seq = 1; seq <= 30; ++seq) {
        for (int i = w; i < kRunners; i += 2) {
          table.apply(hb(rid(i), seq), clock.now(), clock.wall_ms());
        }
        clock.advance_ms(20);
      }
    });
  }
  std::vector<Expired> events;
  std::thread sweeper([&] {
    while (!stop.load()) {
      table.sweep(clock.now(), clock.wall_ms(), events);
      (void)table.list({}, 10, clock.now());
      (void)table.count({std::nullopt, std::string("pool-a")});
    }
  });
  for (auto& t : writers) t.join();
  stop = true;
  sweeper.join();
  clock.advance_ms(2000);
  table.sweep(clock.now(), clock.wall_ms(), events);
  std::set<std::pair<std::string, uint64_t>> seen;
  for (const auto& e : events) {
    EXPECT_TRUE(seen.insert({e.event.runner.runner_id, e.event.runner.attempt}).second);
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kRunners));
  int64_t total = 0;
  for (const auto n : table.counters().by_state) total += n;
  EXPECT_EQ(total, kRunners);
}

}  // namespace
}  // namespace rmon::monitor

namespace rmon::monitor {
namespace {

TEST(PoolNames, NamesAreSharedCountedAndFreedWithTheirLastUser) {
  PoolNames pools;
  const uint32_t a = pools.acquire("gpu");
  EXPECT_EQ(pools.acquire("gpu"), a);
  const uint32_t b = pools.acquire("cpu");
  EXPECT_NE(a, b);
  EXPECT_EQ(pools.live(), 2u);
  pools.release(a);
  EXPECT_EQ(pools.name(a), "gpu");  // one user left
  pools.release(a);
  EXPECT_EQ(pools.live(), 1u);
  EXPECT_EQ(pools.acquire("tpu"), a);  // the slot is reused
  pools.release(PoolNames::kNone);     // ignored
  EXPECT_EQ(pools.name(b), "cpu");
}

TEST(RunnerTable, InventedPoolNamesDoNotAccumulate) {
  FakeClock clock;
  RunnerTable table(options(1));
  // One runner hopping to a new pool name on every task: only its current
  // name stays interned.
  for (int i = 0; i < 1000; ++i) {
    Heartbeat h = hb("hopper", 1, "task-" + std::to_string(i));
    h.runner.pool = "pool-" + std::to_string(i);
    table.apply(h, clock.now(), clock.wall_ms());
  }
  EXPECT_EQ(table.get("hopper", clock.now())->runner.pool, "pool-999");
  EXPECT_EQ(table.count({std::nullopt, std::string("pool-999")}), 1u);
  EXPECT_EQ(table.count({std::nullopt, std::string("pool-5")}), 0u);
  table.remove("hopper");
  EXPECT_EQ(table.size(), 0u);
}

}  // namespace
}  // namespace rmon::monitor

namespace rmon::monitor {
namespace {

TEST(RunnerTable, ArmingEarlierThanThePlannedWakeUpWakesTheDispatcherOnce) {
  FakeClock clock;
  RunnerTable table(options());
  int wakes = 0;
  table.set_waker([&] { ++wakes; });
  table.apply(hb("awake", 1), clock.now(), clock.wall_ms());
  EXPECT_EQ(wakes, 0);  // no plan published: the dispatcher is awake
  table.plan_wake(clock.now() + Millis(10'000));
  table.apply(hb("r1", 1), clock.now(), clock.wall_ms());  // due in 500 ms
  EXPECT_EQ(wakes, 1);
  table.apply(hb("r2", 1), clock.now(), clock.wall_ms());  // same due: already signalled
  EXPECT_EQ(wakes, 1);
  table.plan_wake(clock.now() + Millis(100));
  table.apply(hb("r3", 1), clock.now(), clock.wall_ms());  // due after the plan
  EXPECT_EQ(wakes, 1);
}

TEST(RunnerTable, SuspectChecksFallOnACoarseGridButDeadlinesAreExact) {
  FakeClock clock;
  RunnerTable table(options());
  ASSERT_EQ(options().suspect_grid_ms, 10u);
  clock.advance_ms(3);                                     // heard off the 10 ms grid
  table.apply(hb("r1", 1), clock.now(), clock.wall_ms());  // timeout 1000 ms
  // Suspect at +500 ms exactly would be off-grid: the check is at +507 ms.
  EXPECT_EQ(*table.next_due(), clock.now() + Millis(507));
  clock.advance_ms(506);
  std::vector<Expired> out;
  table.sweep(clock.now(), clock.wall_ms(), out);
  EXPECT_EQ(table.get("r1", clock.now())->state, RunnerState::kRunning);  // not due yet
  clock.advance_ms(1);
  table.sweep(clock.now(), clock.wall_ms(), out);
  EXPECT_EQ(table.get("r1", clock.now())->state, RunnerState::kSuspect);
  EXPECT_EQ(*table.next_due(), clock.now() + Millis(493));  // the exact deadline
  clock.advance_ms(493);
  table.sweep(clock.now(), clock.wall_ms(), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].deadline, clock.now());
}

}  // namespace
}  // namespace rmon::monitor
