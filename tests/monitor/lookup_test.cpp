// RunnerTable::lookup on a fake clock: each state's short map and its
// state_for_ms, order, repeats, unknown ids, and ids spread over many shards.

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "table_test_support.hpp"

namespace rmon::monitor {
namespace {

using protocol::LookupEntry;

// Runner id "r<i>" (a char prepended, as in runner_table_test.cpp: GCC bug
// 105329 reports a false -Wrestrict on a 1-character literal).
std::string rid(int i) { return 'r' + std::to_string(i); }

class LookupTest : public RunnerTableTest {
 protected:
  std::optional<LookupEntry> one(const std::string& id) {
    auto out = table.lookup({id}, clock.now());
    EXPECT_EQ(out.size(), 1u);
    return out.empty() ? std::nullopt : out[0];
  }
};

LookupEntry entry(const std::string& task, uint64_t attempt, RunnerState state, bool timed_out,
                  uint64_t state_for_ms) {
  return LookupEntry{task, attempt, state, timed_out, state_for_ms};
}

TEST_F(LookupTest, AnUnknownRunnerIsNil) {
  EXPECT_EQ(one("nobody"), std::nullopt);
  apply(hb("r1", 1));
  EXPECT_EQ(one("r2"), std::nullopt);
  EXPECT_TRUE(one("r1"));
}

TEST_F(LookupTest, RunningCountsFromTheLastMessage) {
  apply(hb("r1", 1, "t-7", 3));
  EXPECT_EQ(one("r1"), entry("t-7", 3, RunnerState::kRunning, false, 0));
  clock.advance_ms(300);
  EXPECT_EQ(one("r1"), entry("t-7", 3, RunnerState::kRunning, false, 300));
  apply(hb("r1", 2, "t-7", 3));  // heard again: running anew
  clock.advance_ms(40);
  EXPECT_EQ(one("r1"), entry("t-7", 3, RunnerState::kRunning, false, 40));
}

TEST_F(LookupTest, SuspectCountsFromTheSuspectShareOfTheTimeout) {
  apply(hb("r1", 1));  // timeout 1000 ms, suspect share one half
  clock.advance_ms(700);
  ASSERT_TRUE(sweep().empty());
  ASSERT_EQ(state("r1"), RunnerState::kSuspect);
  EXPECT_EQ(one("r1"), entry("t-1", 1, RunnerState::kSuspect, false, 200));
  clock.advance_ms(250);
  EXPECT_EQ(one("r1"), entry("t-1", 1, RunnerState::kSuspect, false, 450));
}

TEST_F(LookupTest, CompletedCountsFromTheTerminalMessage) {
  apply(hb("r1", 1));
  clock.advance_ms(200);
  Heartbeat done = hb("r1", 2);
  done.state = RunnerState::kCompleted;
  apply(done);
  clock.advance_ms(1500);
  sweep();
  EXPECT_EQ(one("r1"), entry("t-1", 1, RunnerState::kCompleted, false, 1500));
}

TEST_F(LookupTest, FailedByTheRunnerIsNotTimedOut) {
  apply(hb("r1", 1));
  clock.advance_ms(100);
  Heartbeat failed = hb("r1", 2);
  failed.state = RunnerState::kFailed;
  apply(failed);
  clock.advance_ms(2500);  // past what would have been its deadline
  EXPECT_TRUE(sweep().empty());
  EXPECT_EQ(one("r1"), entry("t-1", 1, RunnerState::kFailed, false, 2500));
}

TEST_F(LookupTest, FailedByTimeoutCountsFromTheDeadline) {
  apply(hb("r1", 1, "t-1", 2));
  clock.advance_ms(600);
  ASSERT_TRUE(sweep().empty());
  clock.advance_ms(400);
  ASSERT_EQ(sweep().size(), 1u);
  EXPECT_EQ(one("r1"), entry("t-1", 2, RunnerState::kFailed, true, 0));
  clock.advance_ms(2500);
  EXPECT_EQ(one("r1"), entry("t-1", 2, RunnerState::kFailed, true, 2500));
}

// A conviction later than the deadline (a late sweep) still counts from it.
TEST_F(LookupTest, ALateConvictionStillCountsFromTheDeadline) {
  apply(hb("r1", 1));
  clock.advance_ms(1300);
  ASSERT_EQ(sweep().size(), 1u);
  EXPECT_EQ(one("r1"), entry("t-1", 1, RunnerState::kFailed, true, 300));
}

TEST_F(LookupTest, AnEndSetByControlCountsFromTheLastMessageBeforeIt) {
  apply(hb("r1", 1));
  clock.advance_ms(100);
  ASSERT_EQ(table.set_state("r1", RunnerState::kCompleted, clock.now(), clock.wall_ms()),
            ControlError::kNone);
  clock.advance_ms(50);
  EXPECT_EQ(one("r1"), entry("t-1", 1, RunnerState::kCompleted, false, 150));
}

TEST_F(LookupTest, ANewAttemptAfterATimeoutIsRunningAndNotTimedOut) {
  apply(hb("r1", 1, "t-1", 1));
  clock.advance_ms(1000);
  sweep();
  sweep();
  ASSERT_TRUE(one("r1")->timed_out);
  clock.advance_ms(10);
  ASSERT_EQ(apply(hb("r1", 1, "t-1", 2)), Applied::kNewLifecycle);
  EXPECT_EQ(one("r1"), entry("t-1", 2, RunnerState::kRunning, false, 0));
}

TEST_F(LookupTest, AnswersInRequestOrderAndRepeatsAnswerEachTime) {
  apply(hb("a", 1, "task-a"));
  apply(hb("b", 1, "task-b"));
  clock.advance_ms(5);
  const auto out = table.lookup({"b", "x", "a", "b", "x", "a"}, clock.now());
  ASSERT_EQ(out.size(), 6u);
  const auto a = entry("task-a", 1, RunnerState::kRunning, false, 5);
  const auto b = entry("task-b", 1, RunnerState::kRunning, false, 5);
  EXPECT_EQ(out[0], b);
  EXPECT_EQ(out[1], std::nullopt);
  EXPECT_EQ(out[2], a);
  EXPECT_EQ(out[3], b);
  EXPECT_EQ(out[4], std::nullopt);
  EXPECT_EQ(out[5], a);
}

TEST_F(LookupTest, AnEmptyRequestHasAnEmptyAnswer) {
  EXPECT_TRUE(table.lookup({}, clock.now()).empty());
}

TEST(RunnerTableLookup, IdsSpreadOverManyShardsKeepTheirPlaces) {
  FakeClock clock;
  RunnerTable table{options(64)};
  constexpr int kRunners = 600;
  for (int i = 0; i < kRunners; i += 2) {  // every even id is known
    table.apply(hb(rid(i), 1, "task-" + std::to_string(i), 1 + i % 3), clock.now(),
                clock.wall_ms());
  }
  clock.advance_ms(7);
  std::vector<std::string> ids;
  for (int i = kRunners - 1; i >= 0; --i) ids.push_back(rid(i));  // reversed, odd ones unknown
  const auto out = table.lookup(ids, clock.now());
  ASSERT_EQ(out.size(), ids.size());
  for (std::size_t k = 0; k < ids.size(); ++k) {
    const int i = kRunners - 1 - static_cast<int>(k);
    if (i % 2 != 0) {
      EXPECT_EQ(out[k], std::nullopt) << ids[k];
      continue;
    }
    EXPECT_EQ(out[k],
              entry("task-" + std::to_string(i), 1 + i % 3, RunnerState::kRunning, false, 7))
        << ids[k];
  }
}

}  // namespace
}  // namespace rmon::monitor
