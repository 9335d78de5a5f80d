// Consumer kill (issue #9's fault suite): the real stack as processes, every
// runner holding a leased task and a pool slot and heartbeating with them
// (consumer_fixture.hpp). A batch of runners falls silent (spread over a
// second); while their timeouts are being delivered the task-queue is frozen
// (so events sent to it are stuck in its socket), killed with SIGKILL and
// restarted; then the same with another batch and the pool-manager. Every
// effect must land exactly once: each timed-out task requeued once (and leased
// again at attempt 2), each dead runner's slot freed, no live runner's task or
// slot touched, and nothing left pending at the monitor. Then the same stage
// under a monitor pair, and under reconciliation.

#include <gtest/gtest.h>

#include <array>
#include <cstdlib>
#include <set>

#include "../support/wait.hpp"
#include "consumer_fixture.hpp"
#include "fault_support.hpp"

namespace rmon::fault {
namespace {

using protocol::MapBuilder;
using testing::wait_until;

TEST_F(ConsumerFaults, KillNineOfEachConsumerDuringATimeoutBurstAppliesEveryEffectOnce) {
  ASSERT_NO_FATAL_FAILURE(phase(Svc::kTaskQueue, 0, batch_));
  ASSERT_NO_FATAL_FAILURE(phase(Svc::kPoolManager, batch_, 2 * batch_));

  // Each timed-out task was requeued once: leasing them again yields each
  // exactly once, at its next attempt, and nothing else.
  std::map<std::string, std::string> task_runner;
  for (const auto& [runner, l] : lease_) task_runner[l.task_id] = runner;
  std::vector<std::string> leases;
  for (std::size_t i = 0; i <= dead_.size(); ++i) {
    leases.push_back(request(
        "lease", MapBuilder().str("runner_id", "relief-" + std::to_string(i)).str("pool", kPool)));
  }
  const auto replies = pipeline(*tq_, leases);
  std::set<std::string> again;
  uint64_t next_attempt = 0;
  for (std::size_t i = 0; i < dead_.size(); ++i) {
    const Lease l = read_lease(replies[i]);
    ASSERT_FALSE(l.task_id.empty()) << "a requeued task is missing from the queue";
    EXPECT_EQ(dead_.count(task_runner[l.task_id]), 1u) << l.task_id;
    EXPECT_EQ(l.attempt, lease_[task_runner[l.task_id]].attempt + 1) << l.task_id;
    if (l.attempt == lease_[task_runner[l.task_id]].attempt + 1) ++next_attempt;
    EXPECT_TRUE(again.insert(l.task_id).second) << l.task_id << " leased twice";
  }
  EXPECT_TRUE(reply_ok(replies.back()));
  EXPECT_TRUE(read_lease(replies.back()).task_id.empty()) << "more tasks queued than timed out";
  report("consumer kill: every timed-out task leased again",
         {{"timed_out_tasks", dead_.size()}, {"leases_tried", leases.size()}},
         {{"leased_again_once", again.size()},
          {"at_attempt_plus_one", next_attempt},
          {"extra_tasks", read_lease(replies.back()).task_id.empty() ? 0u : 1u}});
  for (Svc s : kServices) EXPECT_TRUE(stack_->ping(s)) << name(s);
}

// A monitor pair (contract amendment "Several monitors"): every runner
// publishes to both monitors, both consumers listen to both. While both are
// up, each death arrives twice and is applied once (the second copy counted
// as a duplicate); after kill -9 of one monitor the other alone convicts
// every runner that dies, missing none and inventing none; when the killed
// monitor comes back from its data folder it convicts again the runners that
// died while it was down, and the consumers absorb each as a duplicate.
class MonitorPairFaults : public ConsumerFaults {
 protected:
  void adjust(StackOptions& o) override {
    o.monitor_pair = true;
    // No redelivery within the test (a restart still resends what is
    // pending): a redelivered event is a duplicate too, and the counts here
    // mean one copy per monitor.
    o.redelivery_interval_ms = 600'000;
  }
  // Cuts runners [first, last) of the cut fleet, spread over half a second.
  void cut(std::size_t first, std::size_t last) {
    std::vector<std::size_t> which;
    for (std::size_t i = first; i < last; ++i) {
      which.push_back(i);
      dead_.insert(cut_->runner_id(i));
    }
    cut_->cut(which, 500ms);
  }
  // The task-queue's reassignment lateness histogram (deadline to requeue
  // committed): cumulative counts at each bound, then the total.
  struct Lateness {
    std::vector<double> at;  // per kBounds
    double count = 0;
  };
  static constexpr std::array<const char*, 12> kBounds = {
      "0.001", "0.002", "0.005", "0.01", "0.02", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "10"};
  Lateness lateness() {
    const std::string text = stack_->metrics(Svc::kTaskQueue);
    Lateness l;
    for (const char* b : kBounds) {
      l.at.push_back(
          metric(text, "tq_reassign_lateness_seconds_bucket", std::string("le=\"") + b + "\""));
    }
    l.count = metric(text, "tq_reassign_lateness_seconds_count");
    return l;
  }
  // The bound (ms) under which 99% of the reassignments between `from` and
  // `to` fell; 0 when there were none, 99999 when past the last bound.
  static uint64_t p99_ms(const Lateness& from, const Lateness& to) {
    const double n = to.count - from.count;
    if (n <= 0) return 0;
    for (std::size_t i = 0; i < kBounds.size(); ++i) {
      if (to.at[i] - from.at[i] >= 0.99 * n) {
        return static_cast<uint64_t>(std::strtod(kBounds[i], nullptr) * 1000 + 0.5);
      }
    }
    return 99'999;
  }
};

TEST_F(MonitorPairFaults, Kill9OfOneMonitorMissesNoTimeoutAndEachIsAppliedOnce) {
  auto mon_b = client(*stack_, Svc::kMonitorB);
  ASSERT_TRUE(wait_until([&] { return stats(*mon_b)["running"] == n_; }, 60s))
      << "the second monitor did not see every runner: " << stats(*mon_b)["running"];
  std::map<std::string, uint64_t> a, b, t, p;
  // Until the consumers applied what they should, and the first monitor (when
  // up) counts `a_timeouts`: read together, as the consumers' stats read after
  // the monitor's may already include a conviction that monitor's did not.
  auto settled = [&](uint64_t applied, uint64_t duplicates, bool a_up, uint64_t a_timeouts) {
    return wait_until(
        [&] {
          t = stats(*tq_);
          p = stats(*pm_);
          if (a_up) a = stats(*mon_);
          b = stats(*mon_b);
          return (!a_up || (a["events_pending"] == 0 && a["timeouts"] >= a_timeouts)) &&
                 b["events_pending"] == 0 && t["reassigned"] >= applied &&
                 p["released_by_timeout"] >= applied && t["events_duplicate"] >= duplicates &&
                 p["events_duplicate"] >= duplicates;
        },
        60s);
  };

  // Both monitors up: every death arrives twice, is applied once.
  const Lateness l0 = lateness();
  cut(0, batch_);
  ASSERT_TRUE(settled(batch_, batch_, true, batch_))
      << "reassigned " << t["reassigned"] << " released " << p["released_by_timeout"]
      << " duplicates " << t["events_duplicate"] << "/" << p["events_duplicate"] << " of " << batch_
      << "; pending " << a["events_pending"] << "/" << b["events_pending"];
  EXPECT_EQ(a["timeouts"], batch_);
  EXPECT_EQ(b["timeouts"], batch_);
  EXPECT_EQ(t["events_duplicate"], batch_);
  EXPECT_EQ(p["events_duplicate"], batch_);
  const Checked both = check();
  const Lateness l1 = lateness();

  // kill -9 of the first monitor; more runners die: the second alone
  // convicts each of them.
  ASSERT_NO_FATAL_FAILURE(stack_->kill9(Svc::kMonitor));
  cut(batch_, 2 * batch_);
  const uint64_t dead = dead_.size();
  ASSERT_TRUE(settled(dead, batch_, false, 0))
      << "reassigned " << t["reassigned"] << " released " << p["released_by_timeout"] << " of "
      << dead << "; pending " << b["events_pending"];
  EXPECT_EQ(t["events_duplicate"], batch_) << "one monitor left: one event per death";
  const Lateness l2 = lateness();
  std::swap(mon_, mon_b);  // check() reads the monitor that stayed up
  const Checked alone = check();
  std::swap(mon_, mon_b);

  // The first monitor comes back from its data folder: after its restart
  // grace it convicts the runners that died while it was down; the
  // consumers take each as a duplicate and change nothing.
  ASSERT_NO_FATAL_FAILURE(stack_->start(Svc::kMonitor));
  mon_ = client(*stack_, Svc::kMonitor);
  ASSERT_TRUE(settled(dead, dead, true, batch_))
      << "duplicates " << t["events_duplicate"] << "/" << p["events_duplicate"] << " of " << dead
      << "; pending " << a["events_pending"] << "/" << b["events_pending"];
  // Its counter starts again at its restart: exactly those that died while
  // it was down, none of the live ones.
  EXPECT_EQ(a["timeouts"], batch_);
  EXPECT_EQ(a["running"] + a["suspect"], n_ - dead);
  EXPECT_EQ(t["events_duplicate"], dead);
  EXPECT_EQ(p["events_duplicate"], dead);
  std::swap(mon_, mon_b);  // check() reads the monitor that saw every death
  const Checked back = check();
  std::swap(mon_, mon_b);
  report("monitor pair: kill -9 of one monitor",
         {{"runners", n_},
          {"died_with_both_up", batch_},
          {"died_with_one_down", batch_},
          {"cut_spread_ms", 500}},
         {{"tq_reassigned", t["reassigned"]},
          {"pm_released_by_timeout", p["released_by_timeout"]},
          {"tq_events_duplicate", t["events_duplicate"]},
          {"pm_events_duplicate", p["events_duplicate"]},
          {"monitor_a_timeouts_after_restart", a["timeouts"]},
          {"monitor_b_timeouts", b["timeouts"]},
          {"reassign_p99_bound_ms_both_up", p99_ms(l0, l1)},
          {"reassign_p99_bound_ms_one_down", p99_ms(l1, l2)},
          {"requeued_once_both_up", both.requeued},
          {"requeued_once_one_down", alone.requeued},
          {"requeued_once_after_restart", back.requeued},
          {"live_tasks_untouched", back.live_tasks},
          {"live_slots_untouched", back.live_slots}});
}

// Reconciliation under the whole fleet: every lease and slot is looked up
// (1,000 per request) every 200 ms once older than a 5 s grace. Round after
// round, no live runner's task or slot is touched; runners cut afterwards
// lose theirs exactly once, whether the timeout event or a verdict gets
// there first.
class ReconcileUnderLoad : public ConsumerFaults {
 protected:
  void adjust(StackOptions& o) override {
    // Longer than setting the fleet up and its first heartbeats: a lease
    // whose runner has not heartbeated by then is rightly gone.
    o.first_heartbeat_grace_ms = 5000;
    for (Svc s : {Svc::kTaskQueue, Svc::kPoolManager}) {
      o.extra_args[static_cast<int>(s)] = {"--reconcile-interval-ms", "200", "--end-settle-ms",
                                           "500"};
    }
  }
  uint64_t verdicts(Svc s, const char* verdict) {
    const char* family =
        s == Svc::kTaskQueue ? "tq_reconcile_verdicts_total" : "pm_reconcile_verdicts_total";
    return static_cast<uint64_t>(
        metric(stack_->metrics(s), family, std::string("verdict=\"") + verdict + "\""));
  }
};

TEST_F(ReconcileUnderLoad, LiveLeasesAndSlotsSurviveEveryRoundAndCutOnesGoOnce) {
  // Every lease judged alive three times over, by both services.
  ASSERT_TRUE(wait_until(
      [&] {
        return verdicts(Svc::kTaskQueue, "alive") >= 3 * n_ &&
               verdicts(Svc::kPoolManager, "alive") >= 3 * n_;
      },
      60s))
      << "alive verdicts: task-queue " << verdicts(Svc::kTaskQueue, "alive") << ", pool-manager "
      << verdicts(Svc::kPoolManager, "alive") << " of 3 x " << n_;
  auto t = stats(*tq_);
  auto p = stats(*pm_);
  EXPECT_EQ(t["reconciled"], 0u);
  EXPECT_EQ(t["leased"], n_);
  EXPECT_EQ(p["reconciled"], 0u);
  EXPECT_EQ(p["in_use"], n_);
  const uint64_t alive_tq = verdicts(Svc::kTaskQueue, "alive");

  std::vector<std::size_t> which;
  for (std::size_t i = 0; i < batch_; ++i) which.push_back(i);
  for (std::size_t i : which) dead_.insert(cut_->runner_id(i));
  cut_->cut(which, 500ms);
  const uint64_t dead = dead_.size();
  ASSERT_TRUE(wait_until(
      [&] {
        t = stats(*tq_);
        p = stats(*pm_);
        return t["reassigned"] >= dead && p["released_by_timeout"] >= dead &&
               stats(*mon_)["events_pending"] == 0;
      },
      60s))
      << "reassigned " << t["reassigned"] << " released " << p["released_by_timeout"] << " of "
      << dead;
  // A few more rounds: nothing else moves.
  ASSERT_TRUE(
      wait_until([&] { return verdicts(Svc::kTaskQueue, "alive") >= alive_tq + 3 * n_; }, 60s));
  t = stats(*tq_);
  p = stats(*pm_);
  EXPECT_EQ(t["reassigned"], dead) << "a task was requeued twice, or a live one";
  EXPECT_EQ(t["queued"], dead);
  EXPECT_EQ(t["leased"], n_ - dead);
  EXPECT_EQ(p["released_by_timeout"], dead) << "a slot was freed twice, or a live one";
  EXPECT_EQ(p["in_use"], n_ - dead);
  const auto held = holders(*pm_, kPool);
  uint64_t live_slots = 0, live_tasks = 0;
  for (const auto& [runner, l] : lease_) {
    const auto it = held.find(runner);
    if (dead_.count(runner) == 0 && it != held.end() && it->second.task_id == l.task_id &&
        it->second.attempt == l.attempt) {
      ++live_slots;
    }
  }
  std::map<std::string, std::string> task_runner;
  for (const auto& [runner, l] : lease_) task_runner[l.task_id] = runner;
  for (const auto& [id, v] : list_tasks(*tq_, "leased")) {
    if (dead_.count(task_runner[id]) == 0 && v.second == task_runner[id]) ++live_tasks;
  }
  EXPECT_EQ(live_slots, n_ - dead);
  EXPECT_EQ(live_tasks, n_ - dead);
  report("reconciliation under load: every lease looked up every 200 ms",
         {{"runners", n_}, {"cut", dead}, {"grace_ms", 5000}, {"interval_ms", 200}},
         {{"tq_alive_verdicts", verdicts(Svc::kTaskQueue, "alive")},
          {"pm_alive_verdicts", verdicts(Svc::kPoolManager, "alive")},
          {"tq_reassigned", t["reassigned"]},
          {"tq_reconciled", t["reconciled"]},
          {"pm_released_by_timeout", p["released_by_timeout"]},
          {"pm_reconciled", p["reconciled"]},
          {"live_tasks_untouched", live_tasks},
          {"live_slots_untouched", live_slots}});
}

}  // namespace
}  // namespace rmon::fault
