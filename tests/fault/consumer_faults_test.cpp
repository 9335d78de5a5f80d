// Consumer kill (issue #9's fault suite): the real stack as processes, every
// runner holding a leased task and a pool slot and heartbeating with them. A
// batch of runners falls silent (spread over a second); while their timeouts
// are being delivered the task-queue is frozen (so events sent to it are
// stuck in its socket), killed with SIGKILL and restarted; then the same with
// another batch and the pool-manager. Every effect must land exactly
// once: each timed-out task requeued once (and leased again at attempt 2),
// each dead runner's slot freed, no live runner's task or slot touched, and
// nothing left pending at the monitor.

#include <gtest/gtest.h>

#include <set>

#include "../support/wait.hpp"
#include "fault_support.hpp"

namespace rmon::fault {
namespace {

using protocol::MapBuilder;
using protocol::MapReader;
using testing::ApiClient;
using testing::wait_until;

constexpr char kPool[] = "fault";

struct Lease {
  std::string task_id;
  uint64_t attempt = 0;
};

// The lease reply's task (empty task_id for `task: nil` or an error).
Lease read_lease(const std::string& reply, std::string* runner_id = nullptr) {
  Lease l;
  auto m = MapReader::parse(reply, protocol::kMaxReplyFrame);
  std::optional<MapReader> task;
  if (!m || !m->opt_map("task", task).ok() || !task) return l;
  (void)task->str("task_id", l.task_id);
  (void)task->u64("attempt", l.attempt);
  if (runner_id != nullptr) (void)task->str("runner_id", *runner_id);
  return l;
}

// (task_id -> (attempt, runner_id or "")) of every task in `state`, paged.
std::map<std::string, std::pair<uint64_t, std::string>> list_tasks(ApiClient& c,
                                                                   const std::string& state) {
  std::map<std::string, std::pair<uint64_t, std::string>> out;
  std::string after;
  for (bool more = true; more;) {
    MapBuilder f;
    f.str("state", state).u64("limit", 1000);
    if (!after.empty()) f.str("after", after);
    const std::string reply = c.call("list", f);
    auto m = MapReader::parse(reply, protocol::kMaxReplyFrame);
    std::vector<MapReader> tasks;
    if (!m || !m->opt_maps("tasks", tasks).ok() || !m->boolean("more", more).ok()) {
      ADD_FAILURE() << "list " << state << " failed";
      break;
    }
    for (const MapReader& t : tasks) {
      std::string id, runner;
      uint64_t attempt = 0;
      (void)t.str("task_id", id);
      (void)t.u64("attempt", attempt);
      (void)t.str("runner_id", runner);
      out[id] = {attempt, runner};
      after = id;
    }
    if (tasks.empty()) break;
  }
  return out;
}

// runner_id -> (task_id, attempt) of every holder of `pool`.
std::map<std::string, Lease> holders(ApiClient& c, const std::string& pool) {
  std::map<std::string, Lease> out;
  const std::string reply = c.call("status", MapBuilder().str("pool", pool));
  auto m = MapReader::parse(reply, protocol::kMaxReplyFrame);
  std::vector<MapReader> pools, hs;
  if (!m || !m->opt_maps("pools", pools).ok() || pools.size() != 1 ||
      !pools[0].opt_maps("holders", hs).ok()) {
    ADD_FAILURE() << "status of pool " << pool << " failed";
    return out;
  }
  for (const MapReader& h : hs) {
    std::string runner;
    Lease l;
    (void)h.str("runner_id", runner);
    (void)h.str("task_id", l.task_id);
    (void)h.u64("attempt", l.attempt);
    out[runner] = l;
  }
  return out;
}

class ConsumerFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    n_ = std::max<std::size_t>(50, scale_runners());
    batch_ = n_ / 10;  // cut per phase: far below the monitor's storm share
    StackOptions o;
    o.pools = std::string(kPool) + "=local-process:" + std::to_string(n_);
    adjust(o);
    stack_ = std::make_unique<FaultStack>(o);
    ASSERT_NO_FATAL_FAILURE(stack_->start_all());
    mon_ = client(*stack_, Svc::kMonitor);
    tq_ = client(*stack_, Svc::kTaskQueue);
    pm_ = client(*stack_, Svc::kPoolManager);

    // Live runners keep heartbeating with a long timeout (scheduling noise
    // cannot time them out); the runners to cut have a short one.
    tools::FleetOptions live;
    live.runners = n_ - 2 * batch_;
    live.prefix = "live-";
    live.pool = kPool;
    live.timeout_ms = 30'000;
    live.interval_ms = 1000;
    tools::FleetOptions cut = live;
    cut.runners = 2 * batch_;
    cut.prefix = "cut-";
    cut.timeout_ms = 1500;
    cut.interval_ms = 250;
    live_ = std::make_unique<FleetPublisher>(stack_->ctx(), stack_->heartbeat_endpoints(), live);
    cut_ = std::make_unique<FleetPublisher>(stack_->ctx(), stack_->heartbeat_endpoints(), cut);

    // Every runner leases a task of the pool and takes a slot for it.
    std::vector<std::string> submits;
    for (std::size_t i = 0; i < n_; ++i) {
      submits.push_back(request(
          "submit",
          MapBuilder().raw("payload", MapBuilder().u64("i", i).finish()).str("pool", kPool)));
    }
    for (const std::string& r : pipeline(*tq_, submits)) ASSERT_TRUE(reply_ok(r)) << "submit";
    for (FleetPublisher* f : {live_.get(), cut_.get()}) {
      std::vector<std::string> leases, acquires;
      for (std::size_t i = 0; i < f->size(); ++i) {
        leases.push_back(
            request("lease", MapBuilder().str("runner_id", f->runner_id(i)).str("pool", kPool)));
      }
      const auto replies = pipeline(*tq_, leases);
      for (std::size_t i = 0; i < f->size(); ++i) {
        std::string runner;
        const Lease l = read_lease(replies[i], &runner);
        ASSERT_FALSE(l.task_id.empty()) << "lease " << f->runner_id(i);
        ASSERT_EQ(runner, f->runner_id(i));
        lease_[runner] = l;
        f->assign(i, l.task_id, l.attempt);
        acquires.push_back(request("acquire", MapBuilder()
                                                  .str("pool", kPool)
                                                  .str("runner_id", runner)
                                                  .str("task_id", l.task_id)
                                                  .u64("attempt", l.attempt)));
      }
      for (const std::string& r : pipeline(*pm_, acquires)) ASSERT_TRUE(reply_ok(r)) << "acquire";
    }
    live_->start();
    cut_->start();
    ASSERT_TRUE(wait_until([&] { return stats(*mon_)["running"] == n_; }, 60s))
        << "the monitor did not see every runner: " << stats(*mon_)["running"] << " of " << n_;
  }

  // Cuts runners [first, last) of the cut fleet, spread over a second; once
  // a quarter of their timeouts are detected kills `victim` with SIGKILL and
  // restarts it; waits for every effect and checks the state.
  void phase(Svc victim, std::size_t first, std::size_t last) {
    const uint64_t t0 = stats(*mon_)["timeouts"];
    const std::size_t batch = last - first;
    std::vector<std::size_t> which;
    for (std::size_t i = first; i < last; ++i) which.push_back(i);
    for (std::size_t i : which) dead_.insert(cut_->runner_id(i));
    ApiClient& victim_client = victim == Svc::kTaskQueue ? *tq_ : *pm_;  // until the kill
    const char* applied_key = victim == Svc::kTaskQueue ? "reassigned" : "released_by_timeout";
    const uint64_t applied0 = stats(victim_client)[applied_key];

    cut_->cut(which, 1000ms);
    // Once a quarter of the burst is detected the consumer is frozen
    // (SIGSTOP), so the events of the next quarter are sent into its socket
    // and never read: they die with it and must be redelivered. Then kill -9.
    uint64_t detected = 0, applied = 0;
    auto detected_at_least = [&](uint64_t n) {
      return wait_until(
          [&] {
            detected = stats(*mon_)["timeouts"] - t0;
            return detected >= n;
          },
          30s);
    };
    ASSERT_TRUE(detected_at_least(std::max<uint64_t>(1, batch / 4))) << "no timeouts detected";
    applied = stats(victim_client)[applied_key] - applied0;
    stack_->signal(victim, SIGSTOP);
    const uint64_t detected_at_stop = detected;
    const uint64_t redeliveries0 = stats(*mon_)["redeliveries"];
    ASSERT_TRUE(detected_at_least(std::max<uint64_t>(2, batch / 2)));
    stack_->kill9(victim);
    const auto killed_at = std::chrono::steady_clock::now();
    ASSERT_NO_FATAL_FAILURE(stack_->start(victim));
    const auto downtime =
        std::chrono::duration_cast<Ms>(std::chrono::steady_clock::now() - killed_at);
    (victim == Svc::kTaskQueue ? tq_ : pm_) = client(*stack_, victim);

    const uint64_t dead = dead_.size();
    std::map<std::string, uint64_t> m, t, p;
    const bool settled = wait_until(
        [&] {
          m = stats(*mon_);
          t = stats(*tq_);
          p = stats(*pm_);
          return m["timeouts"] >= dead && m["events_pending"] == 0 && t["reassigned"] >= dead &&
                 p["released_by_timeout"] >= dead;
        },
        60s);
    EXPECT_TRUE(settled) << "timeouts " << m["timeouts"] << " pending " << m["events_pending"]
                         << " reassigned " << t["reassigned"] << " released "
                         << p["released_by_timeout"] << " of " << dead;
    // What was sent to the frozen process died with it: redelivered.
    EXPECT_GT(m["redeliveries"], redeliveries0) << "nothing was in flight at the kill";
    const Checked c = check();
    report(std::string("consumer kill: ") + name(victim) + " kill -9 during a timeout burst",
           {{"runners", n_},
            {"live", n_ - dead},
            {"cut_now", batch},
            {"cut_spread_ms", 1000},
            {"timeouts_detected_at_sigstop", detected_at_stop},
            {std::string("applied_at_sigstop_") + applied_key, applied},
            {"timeouts_detected_at_kill", detected},
            {"downtime_ms", static_cast<uint64_t>(downtime.count())}},
           {{"monitor_timeouts", m["timeouts"]},
            {"monitor_events_pending", m["events_pending"]},
            {"monitor_redeliveries", m["redeliveries"] - redeliveries0},
            {"tq_reassigned", t["reassigned"]},
            {"tq_events_ignored", t["events_ignored"]},
            {"tasks_requeued_once_attempt_ok", c.requeued},
            {"live_tasks_untouched", c.live_tasks},
            {"pm_released_by_timeout", p["released_by_timeout"]},
            {"pm_events_ignored", p["events_ignored"]},
            {"dead_slots_freed", c.freed},
            {"live_slots_untouched", c.live_slots}});
  }

  // Fixtures that need other settings change them here.
  virtual void adjust(StackOptions& o) { (void)o; }

  struct Checked {
    uint64_t requeued = 0, live_tasks = 0, freed = 0, live_slots = 0;
  };

  // The state every service must be in with dead_ timed out, each once.
  Checked check() {
    Checked c;
    const uint64_t dead = dead_.size(), live = n_ - dead;
    auto m = stats(*mon_);
    EXPECT_EQ(m["timeouts"], dead) << "a live runner timed out, or a dead one twice";
    EXPECT_EQ(m["failed"], dead);
    EXPECT_EQ(m["running"] + m["suspect"], live);
    EXPECT_EQ(m["events_pending"], 0u);
    auto t = stats(*tq_);
    EXPECT_EQ(t["reassigned"], dead) << "a task was requeued twice, or not at all";
    EXPECT_EQ(t["events_applied"], dead);
    EXPECT_EQ(t["queued"], dead);
    EXPECT_EQ(t["leased"], live);
    EXPECT_EQ(t["completed"] + t["dead"] + t["cancelled"], 0u);
    auto p = stats(*pm_);
    EXPECT_EQ(p["released_by_timeout"], dead) << "a slot was freed twice, or not at all";
    EXPECT_EQ(p["events_applied"], dead);
    EXPECT_EQ(p["released"], 0u);
    EXPECT_EQ(p["in_use"], live);

    std::map<std::string, std::string> task_runner;  // task_id -> runner_id
    for (const auto& [runner, l] : lease_) task_runner[l.task_id] = runner;
    for (const auto& [id, v] : list_tasks(*tq_, "queued")) {
      const bool was_dead = dead_.count(task_runner[id]) == 1;
      EXPECT_TRUE(was_dead) << id << " queued, but its runner " << task_runner[id] << " is live";
      EXPECT_EQ(v.first, lease_[task_runner[id]].attempt) << id;
      EXPECT_EQ(v.second, "") << id << " queued with a runner";
      if (was_dead && v.first == lease_[task_runner[id]].attempt) ++c.requeued;
    }
    for (const auto& [id, v] : list_tasks(*tq_, "leased")) {
      const std::string& runner = task_runner[id];
      EXPECT_EQ(dead_.count(runner), 0u) << id << " still leased by dead " << runner;
      EXPECT_EQ(v.second, runner) << id;
      EXPECT_EQ(v.first, lease_[runner].attempt) << id;
      if (dead_.count(runner) == 0 && v.second == runner && v.first == lease_[runner].attempt) {
        ++c.live_tasks;
      }
    }
    const auto held = holders(*pm_, kPool);
    for (const auto& [runner, l] : lease_) {
      const auto it = held.find(runner);
      if (dead_.count(runner) == 1) {
        EXPECT_TRUE(it == held.end()) << "slot of dead runner " << runner << " still held";
        if (it == held.end()) ++c.freed;
      } else if (it != held.end() && it->second.task_id == l.task_id &&
                 it->second.attempt == l.attempt) {
        ++c.live_slots;
      } else {
        ADD_FAILURE() << "live runner " << runner << " lost its slot";
      }
    }
    EXPECT_EQ(held.size(), live);
    EXPECT_EQ(c.requeued, dead);
    EXPECT_EQ(c.live_tasks, live);
    return c;
  }

  std::size_t n_ = 0, batch_ = 0;
  std::unique_ptr<FaultStack> stack_;
  std::unique_ptr<ApiClient> mon_, tq_, pm_;
  std::unique_ptr<FleetPublisher> live_, cut_;
  std::map<std::string, Lease> lease_;  // runner_id -> its lease
  std::set<std::string> dead_;          // runners cut so far
};

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
