// Ended lifecycles a runner has left for another task are fenced: a stray or
// zombie heartbeat for one of them is counted and ignored, never a new
// lifecycle, so an attempt never times out twice (the protocol's "exactly one
// timeout event per (runner_id, task_id, attempt)"). Fake clock, no sockets.

#include <gtest/gtest.h>

#include "table_test_support.hpp"

namespace rmon::monitor {
namespace {

// The runner's current task, as a query shows it.
class LeftLifecycleTest : public RunnerTableTest {
 protected:
  std::string task(const std::string& id) { return table.get(id, clock.now())->runner.task_id; }
  void complete(const std::string& id, const std::string& task_id, uint64_t attempt = 1) {
    Heartbeat done = hb(id, 1000, task_id, attempt);
    done.state = RunnerState::kCompleted;
    ASSERT_TRUE(accepted(apply(done)));
  }
  // Times out r1's attempt of t-1, then moves r1 on to t-2 (a long timeout,
  // so only what the test does can expire).
  void time_out_then_move_on() {
    apply(hb("r1", 1, "t-1"));
    clock.advance_ms(1000);
    ASSERT_EQ(sweep().size(), 1u);
    Heartbeat next = hb("r1", 1, "t-2");
    next.timeout_ms = 3'600'000;
    ASSERT_EQ(apply(next), Applied::kNewLifecycle);
  }
};

TEST_F(LeftLifecycleTest, AStrayHeartbeatForATimedOutAttemptLeftBehindIsLateAndNeverTimesOutTwice) {
  time_out_then_move_on();
  EXPECT_EQ(apply(hb("r1", 7, "t-1")), Applied::kLate);
  EXPECT_EQ(apply(hb("r1", 8, "t-1")), Applied::kLate);
  EXPECT_EQ(task("r1"), "t-2");
  EXPECT_EQ(table.counters().late, 2u);
  // Without the fence the stray heartbeat would have restarted t-1, which
  // would now time out a second time.
  clock.advance_ms(5'000);
  EXPECT_TRUE(sweep().empty());
  EXPECT_EQ(table.counters().timeouts, 1u);
}

TEST_F(LeftLifecycleTest, EarlierAttemptsOfALeftTaskAreFencedButLaterOnesStartALifecycle) {
  time_out_then_move_on();
  EXPECT_EQ(apply(hb("r1", 1, "t-1", 1)), Applied::kLate);
  // The task handed out again (a higher attempt) is new work for this runner.
  EXPECT_EQ(apply(hb("r1", 1, "t-1", 2)), Applied::kNewLifecycle);
  EXPECT_EQ(task("r1"), "t-1");
  EXPECT_EQ(table.get("r1", clock.now())->runner.attempt, 2u);
}

// A runner that moved on without ending its task is not fenced: if a stale
// heartbeat of that task could shut out the next one, the runner's real work
// would go unwatched. Flapping between the two is the lesser harm.
TEST_F(LeftLifecycleTest, ALifecycleLeftWhileRunningIsNotFencedSoTheRealTaskIsNeverShutOut) {
  apply(hb("r1", 1, "t-1"));
  apply(hb("r1", 1, "t-2"));  // moved on without ending t-1
  EXPECT_EQ(apply(hb("r1", 2, "t-1")), Applied::kNewLifecycle);
  EXPECT_EQ(apply(hb("r1", 2, "t-2")), Applied::kNewLifecycle);
  EXPECT_EQ(apply(hb("r1", 3, "t-2")), Applied::kUpdated);
  EXPECT_EQ(task("r1"), "t-2");
}

TEST_F(LeftLifecycleTest, CompletedAttemptsLeftBehindAreFencedToo) {
  apply(hb("r1", 1, "t-1"));
  Heartbeat done = hb("r1", 2, "t-1");
  done.state = RunnerState::kCompleted;
  apply(done);
  apply(hb("r1", 1, "t-2"));
  EXPECT_EQ(apply(hb("r1", 3, "t-1")), Applied::kStaleAttempt);
  EXPECT_EQ(task("r1"), "t-2");
}

TEST_F(LeftLifecycleTest, ARunnerStillTalkingAboutALeftAttemptStaysRemembered) {
  time_out_then_move_on();
  Heartbeat done = hb("r1", 2, "t-2");
  done.state = RunnerState::kCompleted;
  apply(done);
  // Zombie heartbeats for t-1 keep coming well past the retention (10 s):
  // the runner, and so its fence, must not be forgotten meanwhile.
  for (uint64_t seq = 2; seq < 300; ++seq) {
    clock.advance_ms(100);
    EXPECT_EQ(apply(hb("r1", seq, "t-1")), Applied::kLate);
    EXPECT_TRUE(sweep().empty());
  }
  EXPECT_EQ(task("r1"), "t-2");
  // Once everything stops, it is forgotten a retention later.
  clock.advance_ms(10'000);
  EXPECT_TRUE(sweep().empty());
  EXPECT_FALSE(table.get("r1", clock.now()));
}

// (A,1) timed out, (A,2) completed: a zombie of (A,1) keeps the runner (and
// so the fence) remembered past (A,2)'s retention, as a late heartbeat of the
// current attempt would.
TEST_F(LeftLifecycleTest, AnEarlierAttemptStillTalkingKeepsTheRunnerRemembered) {
  apply(hb("r1", 1, "A", 1));
  clock.advance_ms(1000);
  ASSERT_EQ(sweep().size(), 1u);
  apply(hb("r1", 1, "A", 2));
  complete("r1", "A", 2);
  for (uint64_t seq = 2; seq < 300; ++seq) {
    clock.advance_ms(100);
    EXPECT_EQ(apply(hb("r1", seq, "A", 1)), Applied::kLate);
    EXPECT_TRUE(sweep().empty());
  }
  EXPECT_TRUE(table.get("r1", clock.now()));
  EXPECT_EQ(table.counters().timeouts, 1u);
}

TEST_F(LeftLifecycleTest, FencesLastARetentionAfterTheRunnerLeft) {
  time_out_then_move_on();
  clock.advance_ms(9'999);
  EXPECT_EQ(apply(hb("r1", 5, "t-1")), Applied::kLate);  // renews the fence
  clock.advance_ms(9'999);
  EXPECT_EQ(apply(hb("r1", 6, "t-1")), Applied::kLate);
  clock.advance_ms(10'000);
  // Quiet for a whole retention: the bound on what is remembered.
  EXPECT_EQ(apply(hb("r1", 7, "t-1")), Applied::kNewLifecycle);
}

TEST_F(LeftLifecycleTest, OnlyTheNewestEndedLifecyclesAreRemembered) {
  const std::size_t n = kMaxFences + 2;
  for (std::size_t i = 0; i < n; ++i) {
    const std::string t = "t-" + std::to_string(i);
    apply(hb("r1", 1, t));
    complete("r1", t);
    clock.advance_ms(1);
  }
  // The last one is current; the newest kMaxFences before it are fenced.
  for (std::size_t i = n - 1 - kMaxFences; i < n - 1; ++i) {
    EXPECT_EQ(apply(hb("r1", 9, "t-" + std::to_string(i))), Applied::kStaleAttempt) << i;
  }
  EXPECT_EQ(apply(hb("r1", 9, "t-0")), Applied::kNewLifecycle);
}

// Short tasks fill the fences quickly; the timed-out attempt's fence is the
// one kept, and the runner's real task is still watched.
TEST_F(LeftLifecycleTest, ATimedOutAttemptKeepsItsFenceWhileShortTasksComeAndGo) {
  time_out_then_move_on();
  complete("r1", "t-2");
  for (std::size_t i = 0; i < 3 * kMaxFences; ++i) {
    const std::string t = "b-" + std::to_string(i);
    EXPECT_EQ(apply(hb("r1", 1, t)), Applied::kNewLifecycle);
    complete("r1", t);
    clock.advance_ms(100);  // all well within the retention (10 s)
  }
  apply(hb("r1", 1, "current"));
  EXPECT_EQ(apply(hb("r1", 50, "t-1")), Applied::kLate);
  EXPECT_EQ(apply(hb("r1", 2, "current")), Applied::kUpdated);
  EXPECT_EQ(task("r1"), "current");
  // Everything falls silent: only the real task times out.
  clock.advance_ms(1000);
  auto out = sweep();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].event.runner.task_id, "current");
}

// A fence is only given up for another timed-out one: more completed tasks
// never push out a timed-out attempt's fence.
TEST_F(LeftLifecycleTest, CompletedTasksNeverPushOutTimedOutFences) {
  for (std::size_t i = 0; i < kMaxFences; ++i) {
    apply(hb("r1", 1, "t-" + std::to_string(i)));
    clock.advance_ms(1000);
    ASSERT_EQ(sweep().size(), 1u);
  }
  apply(hb("r1", 1, "c"));
  complete("r1", "c");
  apply(hb("r1", 1, "d"));
  for (std::size_t i = 0; i < kMaxFences; ++i) {
    EXPECT_EQ(apply(hb("r1", 9, "t-" + std::to_string(i))), Applied::kLate) << i;
  }
  EXPECT_EQ(table.counters().timeouts, kMaxFences);
}

// (A,1) timed out and the runner went on to (A,2), then left task A while
// (A,2) was still running: (A,1) stays fenced.
TEST_F(LeftLifecycleTest, ATimedOutAttemptStaysFencedAfterItsTaskMovesOnToALaterAttempt) {
  apply(hb("r1", 1, "A", 1));
  clock.advance_ms(1000);
  ASSERT_EQ(sweep().size(), 1u);
  EXPECT_EQ(apply(hb("r1", 1, "A", 2)), Applied::kNewLifecycle);
  EXPECT_EQ(apply(hb("r1", 2, "A", 1)), Applied::kLate);  // the very attempt that timed out
  EXPECT_EQ(apply(hb("r1", 1, "B")), Applied::kNewLifecycle);
  EXPECT_EQ(apply(hb("r1", 3, "A", 1)), Applied::kLate);
  EXPECT_EQ(task("r1"), "B");
  // Through control too: (A,2) added over the timed-out (A,1).
  apply(hb("r2", 1, "A", 1));
  clock.advance_ms(1000);
  ASSERT_EQ(sweep().size(), 2u);  // r2's (A,1), and r1's B
  ASSERT_EQ(table.add(hb("r2", 0, "A", 2), clock.now(), clock.wall_ms()), ControlError::kNone);
  EXPECT_EQ(apply(hb("r2", 1, "B")), Applied::kNewLifecycle);
  EXPECT_EQ(apply(hb("r2", 5, "A", 1)), Applied::kLate);
  EXPECT_EQ(table.counters().timeouts, 3u);
}

TEST_F(LeftLifecycleTest, ControlAddCannotReviveATimedOutAttemptLeftBehind) {
  time_out_then_move_on();
  complete("r1", "t-2");
  EXPECT_EQ(table.add(hb("r1", 0, "t-1"), clock.now(), clock.wall_ms()), ControlError::kConflict);
  EXPECT_EQ(table.add(hb("r1", 0, "t-1", 2), clock.now(), clock.wall_ms()), ControlError::kNone);
}

// (A,1) timed out, (A,2) completed: neither comes back through `add`, before
// or after the runner leaves task A.
TEST_F(LeftLifecycleTest, ControlAddCannotReviveAnEarlierAttemptOfATaskEither) {
  apply(hb("r1", 1, "A", 1));
  clock.advance_ms(1000);
  ASSERT_EQ(sweep().size(), 1u);
  EXPECT_EQ(apply(hb("r1", 1, "A", 2)), Applied::kNewLifecycle);
  complete("r1", "A", 2);
  EXPECT_EQ(table.add(hb("r1", 0, "A", 1), clock.now(), clock.wall_ms()), ControlError::kConflict);
  apply(hb("r1", 1, "B"));
  complete("r1", "B");
  EXPECT_EQ(table.add(hb("r1", 0, "A", 1), clock.now(), clock.wall_ms()), ControlError::kConflict);
  EXPECT_EQ(table.add(hb("r1", 0, "A", 2), clock.now(), clock.wall_ms()), ControlError::kConflict);
  EXPECT_EQ(apply(hb("r1", 7, "A", 1)), Applied::kLate);  // the attempt that timed out
  EXPECT_EQ(table.add(hb("r1", 0, "A", 3), clock.now(), clock.wall_ms()), ControlError::kNone);
  clock.advance_ms(1000);
  auto out = sweep();
  ASSERT_EQ(out.size(), 1u);  // the new attempt only
  EXPECT_EQ(out[0].event.runner.attempt, 3u);
}

}  // namespace
}  // namespace rmon::monitor
