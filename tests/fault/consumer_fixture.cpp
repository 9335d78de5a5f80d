// The consumer faults' shared stage: see consumer_fixture.hpp.

#include "consumer_fixture.hpp"

#include <algorithm>
#include <csignal>
#include <optional>
#include <vector>

#include "../support/wait.hpp"

namespace rmon::fault {

using protocol::MapBuilder;
using protocol::MapReader;
using testing::ApiClient;
using testing::wait_until;

// The lease reply's task (empty task_id for `task: nil` or an error).
Lease read_lease(const std::string& reply, std::string* runner_id) {
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

void ConsumerFaults::SetUp() {
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
    submits.push_back(
        request("submit",
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

void ConsumerFaults::phase(Svc victim, std::size_t first, std::size_t last) {
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

ConsumerFaults::Checked ConsumerFaults::check() {
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

}  // namespace rmon::fault
