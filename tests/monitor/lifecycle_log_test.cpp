// Lifecycle logging: the table reports changes with no shard lock held, and
// LifecycleLog rate limits the lines per kind, summarising what it held back.
// A recording spdlog sink and a fake clock; no sockets, no sleeping.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../support/recording_sink.hpp"
#include "lifecycle_log.hpp"
#include "table_test_support.hpp"

namespace rmon::monitor {
namespace {

using namespace std::chrono_literals;
using rmon::testing::RecordingSink;

// Routes the default logger to a RecordingSink for the test's duration.
class LifecycleLogTest : public ::testing::Test {
 protected:
  static constexpr const char* kSummary = "runner lifecycle lines held back";
  std::shared_ptr<RecordingSink> sink_ = std::make_shared<RecordingSink>();
  rmon::testing::RecordDefaultLog recording_{sink_};
  FakeClock clock_;
};

TEST_F(LifecycleLogTest, ABurstPassesAndTheRestIsSummarisedOnceThePeriodIsOver) {
  LifecycleLog log(clock_, {3, 1000ms});
  for (int i = 0; i < 10; ++i) log.on_added('r' + std::to_string(i), "t", 1, RunnerState::kRunning);
  EXPECT_EQ(sink_->count("runner added"), 3u);
  EXPECT_EQ(log.held_back_total(), 7u);
  log.flush();  // the period is not over yet
  EXPECT_EQ(sink_->count(kSummary), 0u);
  clock_.advance(1000ms);
  log.flush();
  ASSERT_EQ(sink_->count(kSummary), 1u);
  EXPECT_NE(sink_->lines().back().find("added=7 state_changed=0 removed=0"), std::string::npos)
      << sink_->lines().back();
  log.flush();  // said once
  EXPECT_EQ(sink_->count(kSummary), 1u);
}

TEST_F(LifecycleLogTest, TheFirstLineOfANewPeriodComesAfterTheSummaryOfTheLast) {
  LifecycleLog log(clock_, {2, 1000ms});
  for (int i = 0; i < 5; ++i) log.on_removed('r' + std::to_string(i), true);
  clock_.advance(1500ms);
  log.on_removed("late", false);
  const auto lines = sink_->lines();
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_NE(lines[2].find("removed=3"), std::string::npos) << lines[2];
  EXPECT_EQ(lines[3], "runner removed runner_id=late reason=control");
}

TEST_F(LifecycleLogTest, EachKindHasItsOwnBudget) {
  LifecycleLog log(clock_, {2, 1000ms});
  for (int i = 0; i < 4; ++i) {
    log.on_added("r", "t", 1, RunnerState::kRunning);
    log.on_state_changed("r", "t", 1, RunnerState::kRunning, RunnerState::kSuspect);
    log.on_removed("r", true);
  }
  EXPECT_EQ(sink_->count("runner added"), 2u);
  EXPECT_EQ(sink_->count("runner state changed"), 2u);
  EXPECT_EQ(sink_->count("runner removed"), 2u);
  log.flush(true);
  EXPECT_NE(sink_->lines().back().find("added=2 state_changed=2 removed=2"), std::string::npos)
      << sink_->lines().back();
}

TEST_F(LifecycleLogTest, StoppingSaysWhatIsHeldBackBeforeThePeriodEnds) {
  LifecycleLog log(clock_, {1, 60'000ms});
  log.on_added("a", "t", 1, RunnerState::kRunning);
  log.on_added("b", "t", 1, RunnerState::kRunning);
  log.flush(true);
  EXPECT_EQ(sink_->count(kSummary), 1u);
  // The period goes on: its budget is still spent.
  log.on_added("c", "t", 1, RunnerState::kRunning);
  EXPECT_EQ(sink_->count("runner added"), 1u);
}

TEST_F(LifecycleLogTest, NothingIsCountedWhenInfoIsOff) {
  spdlog::default_logger()->set_level(spdlog::level::warn);
  LifecycleLog log(clock_, {1, 1000ms});
  for (int i = 0; i < 5; ++i) log.on_added("r", "t", 1, RunnerState::kRunning);
  EXPECT_EQ(log.held_back_total(), 0u);
  log.flush(true);
  EXPECT_TRUE(sink_->lines().empty());
}

TEST_F(LifecycleLogTest, AJoinStormLogsABurstAndOneSummaryLine) {
  LifecycleLog log(clock_, {20, 1000ms});
  RunnerTable table(options(), &log);
  for (int i = 0; i < 10'000; ++i) {
    // 'r', not "r": GCC 12 at -O3 reports a false -Wrestrict when a
    // 1-character literal is prepended to a std::string (GCC bug 105329).
    ASSERT_EQ(table.apply(hb('r' + std::to_string(i), 1), clock_.now(), clock_.wall_ms()),
              Applied::kAdded);
  }
  clock_.advance(1000ms);
  log.flush();
  EXPECT_EQ(sink_->count("runner added"), 20u);
  ASSERT_EQ(sink_->count(kSummary), 1u);
  EXPECT_NE(sink_->lines().back().find("added=9980 "), std::string::npos) << sink_->lines().back();
}

// Records every notification, and checks from inside it that the table can
// be used: a notification under a shard lock would block this check.
class RecordingObserver final : public TableObserver {
 public:
  explicit RecordingObserver(const RunnerTable*& table) : table_(table) {}
  void on_added(std::string_view id, std::string_view task, uint64_t attempt,
                RunnerState state) override {
    record("added " + std::string(id) + " " + std::string(task) + " " + std::to_string(attempt) +
           " " + std::string(protocol::to_string(state)));
  }
  void on_state_changed(std::string_view id, std::string_view task, uint64_t attempt,
                        RunnerState from, RunnerState to) override {
    record("state " + std::string(id) + " " + std::string(task) + " " + std::to_string(attempt) +
           " " + std::string(protocol::to_string(from)) + "->" +
           std::string(protocol::to_string(to)));
  }
  void on_removed(std::string_view id, bool expired) override {
    record("removed " + std::string(id) + (expired ? " retention" : " control"));
  }

  std::vector<std::string> seen;
  bool all_unlocked = true;

 private:
  void record(std::string what) {
    seen.push_back(std::move(what));
    // size() takes every shard's lock; from another thread so that a
    // regression fails here instead of deadlocking the test.
    auto done = std::make_shared<std::promise<void>>();
    auto ready = done->get_future();
    std::thread([t = table_, done] {
      (void)t->size();
      done->set_value();
    }).detach();
    if (ready.wait_for(5s) != std::future_status::ready) all_unlocked = false;
  }
  const RunnerTable*& table_;
};

TEST(TableObserver, EveryChangeIsReportedAfterTheShardLockIsReleased) {
  FakeClock clock;
  const RunnerTable* table_ptr = nullptr;
  RecordingObserver obs(table_ptr);
  RunnerTable table(options(), &obs);
  table_ptr = &table;
  const auto now = [&] { return clock.now(); };
  table.apply(hb("r1", 1, "t-1"), now(), clock.wall_ms());
  Heartbeat done = hb("r2", 1, "t-2");
  done.state = RunnerState::kCompleted;
  table.apply(hb("r2", 1, "t-2"), now(), clock.wall_ms());
  table.apply(hb("r2", 2, "t-2"), now(), clock.wall_ms());  // nothing to report
  done.seq = 3;
  table.apply(done, now(), clock.wall_ms());
  clock.advance_ms(500);
  std::vector<Expired> out;
  table.sweep(now(), clock.wall_ms(), out);                 // r1 suspect
  table.apply(hb("r1", 2, "t-1"), now(), clock.wall_ms());  // r1 running again
  clock.advance_ms(1000);
  table.sweep(now(), clock.wall_ms(), out);  // r1 times out
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(table.set_state("r1", RunnerState::kCompleted, now(), clock.wall_ms()),
            ControlError::kNone);
  ASSERT_EQ(table.add(hb("r3", 0, "t-3"), now(), clock.wall_ms()), ControlError::kNone);
  ASSERT_TRUE(table.remove("r3"));
  clock.advance_ms(10'000);  // past the retention of r1 and r2
  table.sweep(now(), clock.wall_ms(), out);
  EXPECT_TRUE(obs.all_unlocked);
  const std::vector<std::string> expected = {
      "added r1 t-1 1 running",
      "added r2 t-2 1 running",
      "state r2 t-2 1 running->completed",
      "state r1 t-1 1 running->suspect",
      "state r1 t-1 1 suspect->running",
      "state r1 t-1 1 running->failed",
      "state r1 t-1 1 failed->completed",
      "added r3 t-3 1 running",
      "removed r3 control",
  };
  ASSERT_GE(obs.seen.size(), expected.size() + 2);
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(obs.seen[i], expected[i]) << i;
  // The two retention removals, in shard order.
  std::vector<std::string> rest(obs.seen.begin() + static_cast<long>(expected.size()),
                                obs.seen.end());
  std::sort(rest.begin(), rest.end());
  EXPECT_EQ(rest, (std::vector<std::string>{"removed r1 retention", "removed r2 retention"}));
}

}  // namespace
}  // namespace rmon::monitor
