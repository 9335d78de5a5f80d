// Faults under load on task-queue replicas: two task-queue executables on one
// throwaway PostgreSQL, clients of the C++ runner library listing both (the
// first one first), each running submit (with an idempotency key) -> lease
// -> complete in a loop. Mid-run either the first replica is killed -9
// (every client then goes on with the other within 2 x its request timeout)
// or PostgreSQL is restarted (every client goes on once it is back). Either
// way every answered submit and completion is in the database, and no task
// was answered completed twice.

#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "../support/child_process.hpp"
#include "../support/postgres.hpp"
#include "../support/temp_dir.hpp"
#include "../support/wait.hpp"
#include "rmon/protocol/msgmap.hpp"
#include "rmon/runner/task_queue_client.hpp"

namespace rmon::tq {
namespace {

using namespace std::chrono_literals;
using protocol::MapBuilder;
using rmon::testing::ChildProcess;
using rmon::testing::wait_until;
using Clock = std::chrono::steady_clock;

class ReplicaKillTest : public ::testing::Test {
 protected:
  std::string ep(const std::string& name) { return "ipc://" + dir_.str() + "/" + name; }
  std::unique_ptr<ChildProcess> start(const std::string& name) {
    auto child = std::make_unique<ChildProcess>(
        TASK_QUEUE_BIN,
        std::vector<std::string>{"--store", pg_.url(), "--data-dir", dir_.str() + "/" + name,
                                 "--api-endpoint", ep("api-" + name), "--events-endpoint",
                                 ep("events-" + name), "--ack-endpoint", ep("acks-" + name),
                                 "--monitor-endpoint", ep("monitor-" + name), "--metrics-address",
                                 ""},
        dir_.str() + "/" + name + ".log");
    runner::TaskQueueClient probe(ctx_, ep("api-" + name), 1000);
    EXPECT_TRUE(wait_until([&] { return static_cast<bool>(probe.ping()); }, 20s)) << name;
    return child;
  }

  rmon::testing::Postgres pg_;
  rmon::testing::TempDir dir_;
  zmq::context_t ctx_;
};

// kClients clients of the C++ library, each running submit (with an
// idempotency key) -> lease -> complete in a loop against `endpoints`, until
// finish(). After mark() (a fault), each counts once when it completes a
// lifecycle again.
class Load {
 public:
  static constexpr int kClients = 4;
  static constexpr int kTimeoutMs = 1000;

  Load(zmq::context_t& ctx, const std::vector<std::string>& endpoints)
      : max_gap_(kClients, Clock::duration::zero()) {  // sized before any thread writes it
    for (int c = 0; c < kClients; ++c) {
      threads_.emplace_back([this, &ctx, endpoints, c] { client(ctx, endpoints, c); });
    }
  }
  ~Load() { finish(); }

  std::size_t completions() {
    std::lock_guard lock(mu_);
    return completed_.size();
  }
  void mark() { marked_ = true; }
  int went_on() const { return went_on_.load(); }
  void finish() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  // After finish(): the longest wait for an answer, per client.
  const std::vector<Clock::duration>& max_gap() const { return max_gap_; }
  Clock::duration longest_gap() const {
    return *std::max_element(max_gap_.begin(), max_gap_.end());
  }

  // After finish(): every answered submit is in the database with its key,
  // every answered completion is completed there, and none was answered twice.
  void check(runner::TaskQueueClient& check) {
    std::set<std::string> unique(completed_.begin(), completed_.end());
    EXPECT_EQ(unique.size(), completed_.size()) << "a task was answered completed twice";
    for (const auto& [key, id] : submitted_) {
      auto t = check.get(id);
      ASSERT_TRUE(t) << key << " " << id << ": " << t.error().to_string();
      EXPECT_EQ(t->idempotency_key, key);
    }
    for (const std::string& id : unique) {
      auto t = check.get(id);
      ASSERT_TRUE(t) << id;
      EXPECT_EQ(t->state, "completed") << id;
    }
    std::printf("%zu submits and %zu completions answered, longest wait for an answer %lld ms\n",
                submitted_.size(), completed_.size(),
                static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(longest_gap()).count()));
  }

 private:
  void client(zmq::context_t& ctx, const std::vector<std::string>& endpoints, int c) {
    runner::TaskQueueClient tq(ctx, endpoints, kTimeoutMs);
    const std::string runner = "r-" + std::to_string(c);
    auto last = Clock::now();
    auto answered = [&] {
      const auto now = Clock::now();
      max_gap_[c] = std::max(max_gap_[c], now - last);
      last = now;
    };
    // An error answered at once (`unavailable` while the store is away) is
    // retried after a pause, not in a tight loop.
    auto pause = [] { std::this_thread::sleep_for(10ms); };
    bool counted = false;
    for (int n = 0; !stop_.load(); ++n) {
      const std::string key = runner + "-" + std::to_string(n);
      runner::SubmitOptions o;
      o.idempotency_key = key;
      auto sub = tq.submit(MapBuilder().u64("n", n).finish(), o);
      while (!sub && !stop_.load()) {
        pause();
        sub = tq.submit(MapBuilder().u64("n", n).finish(), o);
      }
      if (!sub) break;
      answered();
      {
        std::lock_guard lock(mu_);
        submitted_[key] = sub->task_id;
      }
      auto leased = tq.lease(runner);
      if (!leased) {  // unanswered or unavailable: a lease lost with the replica or the store
        pause();
        continue;
      }
      answered();
      if (!leased.value()) continue;
      const runner::TaskInfo t = *leased.value();
      auto done = tq.complete(t.task_id, t.attempt);
      if (!done) {  // e.g. conflict: the killed replica had committed it
        pause();
        continue;
      }
      answered();
      std::lock_guard lock(mu_);
      completed_.insert(t.task_id);
      if (marked_.load() && !counted) {
        counted = true;
        ++went_on_;
      }
    }
  }

  std::atomic<bool> stop_{false}, marked_{false};
  std::atomic<int> went_on_{0};
  std::mutex mu_;
  std::map<std::string, std::string> submitted_;  // idempotency key -> task id (answered)
  std::multiset<std::string> completed_;          // answered completions
  std::vector<Clock::duration> max_gap_;          // per client, its thread's
  std::vector<std::thread> threads_;
};

TEST_F(ReplicaKillTest, ClientsGoOnWithTheOtherReplicaAndNothingAnsweredIsLost) {
  auto a = start("a");
  auto b = start("b");
  Load load(ctx_, {ep("api-a"), ep("api-b")});
  // Load on both replicas' database, then kill -9 the one every client uses.
  ASSERT_TRUE(wait_until([&] { return load.completions() >= 200; }, 30s));
  a->signal(SIGKILL);
  ASSERT_TRUE(a->wait(10s).has_value());
  load.mark();
  // Every client goes on, on the other replica.
  const bool all_went_on = wait_until([&] { return load.went_on() == Load::kClients; }, 20s);
  const std::size_t before = load.completions();
  ASSERT_TRUE(wait_until([&] { return load.completions() >= before + 20; }, 10s));
  load.finish();
  ASSERT_TRUE(all_went_on) << load.went_on() << " of " << Load::kClients << " clients went on";
  for (int c = 0; c < Load::kClients; ++c) {
    EXPECT_LT(load.max_gap()[c], 2 * std::chrono::milliseconds(Load::kTimeoutMs))
        << "client " << c << " waited "
        << std::chrono::duration_cast<std::chrono::milliseconds>(load.max_gap()[c]).count()
        << " ms for an answer";
  }
  runner::TaskQueueClient check(ctx_, ep("api-b"), 5000);
  std::printf("replica kill: ");
  load.check(check);
}

// PostgreSQL restarted (pg_ctl stop -m fast, then start) under the same load
// on two replicas: requests meanwhile are answered `unavailable` (or not at
// all), the replicas reconnect by themselves, and no answered submit or
// completion is lost or duplicated. The outage as the clients saw it (their
// longest wait between two answers) is printed.
TEST_F(ReplicaKillTest, APostgresRestartUnderLoadLosesAndDuplicatesNoCompletion) {
  auto a = start("a");
  auto b = start("b");
  Load load(ctx_, {ep("api-a"), ep("api-b")});
  ASSERT_TRUE(wait_until([&] { return load.completions() >= 200; }, 30s));
  const auto down = Clock::now();
  pg_.stop();
  pg_.start();
  const auto restart_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - down).count();
  load.mark();
  const bool all_went_on = wait_until([&] { return load.went_on() == Load::kClients; }, 30s);
  const std::size_t before = load.completions();
  ASSERT_TRUE(wait_until([&] { return load.completions() >= before + 20; }, 10s));
  load.finish();
  ASSERT_TRUE(all_went_on) << load.went_on() << " of " << Load::kClients << " clients went on";
  runner::TaskQueueClient check(ctx_, ep("api-a"), 5000);
  std::printf("postgres restart (stop + start took %lld ms): ", static_cast<long long>(restart_ms));
  load.check(check);
  EXPECT_FALSE(a->wait(0ms).has_value()) << "replica a exited with the database away";
  EXPECT_FALSE(b->wait(0ms).has_value()) << "replica b exited with the database away";
}

}  // namespace
}  // namespace rmon::tq
