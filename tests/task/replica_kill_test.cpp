// kill -9 of one task-queue replica under load: two task-queue executables
// on one throwaway PostgreSQL, clients of the C++ runner library listing
// both (the first one first), each running submit (with an idempotency key)
// -> lease -> complete in a loop. Mid-run the first replica is killed -9.
// Then: every client went on with the other replica within 2 x its request
// timeout, every answered submit and completion is in the database, and no
// task was answered completed twice.

#include <gtest/gtest.h>

#include <signal.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>

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

TEST_F(ReplicaKillTest, ClientsGoOnWithTheOtherReplicaAndNothingAnsweredIsLost) {
  auto a = start("a");
  auto b = start("b");
  constexpr int kClients = 4;
  constexpr int kTimeoutMs = 1000;
  std::atomic<bool> stop{false};
  std::atomic<int> busy{0};  // clients that completed a lifecycle since the kill
  std::atomic<bool> killed{false};
  std::mutex mu;
  std::map<std::string, std::string> submitted;  // idempotency key -> task id (answered)
  std::multiset<std::string> completed;          // answered completions
  std::vector<Clock::duration> max_gap(kClients, Clock::duration::zero());
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      runner::TaskQueueClient tq(ctx_, std::vector<std::string>{ep("api-a"), ep("api-b")},
                                 kTimeoutMs);
      const std::string runner = "r-" + std::to_string(c);
      auto last = Clock::now();
      auto answered = [&] {
        const auto now = Clock::now();
        max_gap[c] = std::max(max_gap[c], now - last);
        last = now;
      };
      bool counted = false;
      for (int n = 0; !stop.load(); ++n) {
        const std::string key = runner + "-" + std::to_string(n);
        runner::SubmitOptions o;
        o.idempotency_key = key;
        auto sub = tq.submit(MapBuilder().u64("n", n).finish(), o);
        while (!sub && !stop.load()) sub = tq.submit(MapBuilder().u64("n", n).finish(), o);
        if (!sub) break;
        answered();
        {
          std::lock_guard lock(mu);
          submitted[key] = sub->task_id;
        }
        auto leased = tq.lease(runner);
        if (!leased) continue;  // unanswered: a lease lost with the replica
        answered();
        if (!leased.value()) continue;
        const runner::TaskInfo t = *leased.value();
        auto done = tq.complete(t.task_id, t.attempt);
        if (!done) continue;  // e.g. conflict: the killed replica had committed it
        answered();
        std::lock_guard lock(mu);
        completed.insert(t.task_id);
        if (killed.load() && !counted) {
          counted = true;
          ++busy;
        }
      }
    });
  }
  // Load on both replicas' database, then kill -9 the one every client uses.
  ASSERT_TRUE(wait_until(
      [&] {
        std::lock_guard lock(mu);
        return completed.size() >= 200;
      },
      30s));
  a->signal(SIGKILL);
  ASSERT_TRUE(a->wait(10s).has_value());
  killed = true;
  // Every client goes on, on the other replica.
  const bool all_went_on = wait_until([&] { return busy.load() == kClients; }, 20s);
  std::this_thread::sleep_for(200ms);  // a little more load on the survivor
  stop = true;
  for (auto& t : clients) t.join();
  ASSERT_TRUE(all_went_on) << busy.load() << " of " << kClients << " clients went on";

  for (int c = 0; c < kClients; ++c) {
    EXPECT_LT(max_gap[c], 2 * std::chrono::milliseconds(kTimeoutMs))
        << "client " << c << " waited "
        << std::chrono::duration_cast<std::chrono::milliseconds>(max_gap[c]).count()
        << " ms for an answer";
  }
  // Nothing answered is lost, nothing completed twice.
  runner::TaskQueueClient check(ctx_, ep("api-b"), 5000);
  std::set<std::string> unique(completed.begin(), completed.end());
  EXPECT_EQ(unique.size(), completed.size()) << "a task was answered completed twice";
  for (const auto& [key, id] : submitted) {
    auto t = check.get(id);
    ASSERT_TRUE(t) << key << " " << id << ": " << t.error().to_string();
    EXPECT_EQ(t->idempotency_key, key);
  }
  for (const std::string& id : unique) {
    auto t = check.get(id);
    ASSERT_TRUE(t) << id;
    EXPECT_EQ(t->state, "completed") << id;
  }
  std::printf("replica kill: %zu submits and %zu completions answered, max client gap %lld ms\n",
              submitted.size(), completed.size(),
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         *std::max_element(max_gap.begin(), max_gap.end()))
                                         .count()));
}

}  // namespace
}  // namespace rmon::tq
