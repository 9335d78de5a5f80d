// The runner table: the state machine, ingest and the sweep.

#include "runner_table.hpp"

#include <algorithm>
#include <bit>
#include <limits>

#include "shard.hpp"

namespace rmon::monitor {

std::string TableOptions::validate() const {
  if (shards == 0 || !std::has_single_bit(shards)) return "shards must be a power of two";
  if (min_timeout_ms == 0) return "min timeout must be at least 1 ms";
  if (min_timeout_ms > max_timeout_ms) return "min timeout is above max timeout";
  if (max_timeout_ms > std::numeric_limits<uint32_t>::max()) return "max timeout is too large";
  if (default_timeout_ms < min_timeout_ms || default_timeout_ms > max_timeout_ms) {
    return "default timeout is outside the min/max bounds";
  }
  if (!(suspect_ratio > 0.0 && suspect_ratio <= 1.0)) return "suspect ratio must be in (0, 1]";
  // A year at most: times are int64 nanoseconds.
  constexpr uint64_t kYearMs = 366ULL * 24 * 3600 * 1000;
  if (retention_ms > kYearMs) return "retention must be at most a year";
  if (event_id_prefix.empty() || event_id_prefix.size() > 64) {
    return "event id prefix must be 1 to 64 bytes";
  }
  return {};
}

RunnerTable::RunnerTable(TableOptions opts, TableObserver* observer)
    : opts_(std::move(opts)),
      observer_(observer),
      shard_mask_(opts_.shards - 1),
      shards_(std::make_unique<Shard[]>(opts_.shards)) {
  if (std::string err = opts_.validate(); !err.empty()) throw std::invalid_argument(err);
}

RunnerTable::~RunnerTable() = default;

RunnerTable::Shard& RunnerTable::shard_for(std::size_t hash) const {
  return shards_[mix(hash) & shard_mask_];
}

uint64_t RunnerTable::clamp_timeout_ms(std::optional<uint64_t> requested) const {
  return std::clamp(requested.value_or(opts_.default_timeout_ms), opts_.min_timeout_ms,
                    opts_.max_timeout_ms);
}

void RunnerTable::arm_for_state(Shard& s, Runner& r, int64_t now_ns) {
  const int64_t timeout_ns = static_cast<int64_t>(r.timeout_ms) * kNsPerMs;
  switch (r.state) {
    case RunnerState::kRunning:
      s.index.arm(&r, running_due(r));
      break;
    case RunnerState::kSuspect:
      s.index.arm(&r, r.last_heard_ns + timeout_ns);
      break;
    case RunnerState::kCompleted:
    case RunnerState::kFailed:
      s.index.arm(&r, now_ns + retention_ns());
      break;
  }
}

void RunnerTable::publish(Shard& s) {
  const int64_t top = s.index.empty() ? kNever : s.index.top_due_ns();
  s.top_due_ns.store(top, std::memory_order_seq_cst);
  // Something is due before the dispatcher planned to wake: wake it, once
  // (whoever lowers the planned time signals).
  int64_t planned = planned_wake_ns_.load(std::memory_order_seq_cst);
  while (top < planned) {
    if (planned_wake_ns_.compare_exchange_weak(planned, top, std::memory_order_seq_cst)) {
      if (waker_) waker_();
      break;
    }
  }
}

void RunnerTable::plan_wake(std::optional<MonoTime> at) {
  planned_wake_ns_.store(at ? to_ns(*at) : std::numeric_limits<int64_t>::min(),
                         std::memory_order_seq_cst);
}

int64_t RunnerTable::running_due(const Runner& r) const {
  // The suspect check is informational: it is rounded up to a coarse grid so
  // a healthy fleet's checks come in batches (a few dispatcher wake-ups a
  // second, not one per runner). The deadline itself is never rounded.
  const int64_t timeout_ns = static_cast<int64_t>(r.timeout_ms) * kNsPerMs;
  const auto suspect_ns =
      static_cast<int64_t>(static_cast<double>(timeout_ns) * opts_.suspect_ratio);
  const int64_t suspect_at = r.last_heard_ns + suspect_ns;
  const int64_t rounded = (suspect_at + kCheckGridNs - 1) / kCheckGridNs * kCheckGridNs;
  return std::min(rounded, r.last_heard_ns + timeout_ns);
}

void RunnerTable::move_state_counter(RunnerState from, RunnerState to) {
  if (from == to) return;
  by_state_[state_index(from)].fetch_sub(1, std::memory_order_relaxed);
  by_state_[state_index(to)].fetch_add(1, std::memory_order_relaxed);
}

void RunnerTable::set_state_locked(Shard& s, Runner& r, RunnerState to, int64_t now_ns) {
  const RunnerState from = r.state;
  if (from == to) return;
  r.state = to;
  move_state_counter(from, to);
  // Entering SUSPECT keeps the armed deadline; every other change re-arms.
  if (to != RunnerState::kSuspect) arm_for_state(s, r, now_ns);
  if (observer_) observer_->on_state_changed(*r.id, r.task_id, r.attempt, from, to);
}

// Copies what the heartbeat says about the runner; timing is the caller's.
void RunnerTable::refresh(Shard& s, Runner& r, const Heartbeat& hb, int64_t now_ns,
                          int64_t wall_ms) {
  const auto& info = hb.runner;
  if (r.task_id != info.task_id) r.task_id = info.task_id;
  r.attempt = info.attempt;
  r.seq = hb.seq;
  if (r.pool == PoolNames::kNone || s.pools.name(r.pool) != info.pool) {
    const uint32_t id = s.pools.acquire(info.pool);
    s.pools.release(r.pool);
    r.pool = id;
  }
  r.pool_type = info.pool_type;
  r.has_pid = info.pid.has_value();
  r.pid = info.pid.value_or(0);
  r.last_heard_ns = now_ns;
  r.last_heard_wall_ms = wall_ms;
  r.timeout_ms = static_cast<uint32_t>(clamp_timeout_ms(hb.timeout_ms));
  if (r.extra && !r.extra->fences.empty()) {
    std::erase_if(r.extra->fences, [&](const Fence& f) { return f.until_ns <= now_ns; });
  }
  const bool want_extra = info.container_id || info.job_name || info.progress || hb.interval_ms ||
                          (r.extra && !r.extra->fences.empty());
  if (want_extra) {
    if (!r.extra) r.extra = std::make_unique<RunnerExtra>();
    r.extra->container_id = info.container_id;
    r.extra->job_name = info.job_name;
    r.extra->progress = info.progress;
    r.extra->interval_ms = hb.interval_ms;
  } else {
    r.extra.reset();
  }
}

void RunnerTable::start_lifecycle(Shard& s, Runner& r, const Heartbeat& hb, int64_t now_ns,
                                  int64_t wall_ms) {
  // Leaving an ended lifecycle for another task or a later attempt of the
  // same one (a fresh runner has none): fence it (see Fence). A same-task
  // fence matters once the runner leaves that task while still running.
  if (!r.task_id.empty() && !live(r.state) &&
      (r.task_id != hb.runner.task_id || hb.runner.attempt > r.attempt)) {
    add_fence(
        r,
        {std::hash<std::string_view>{}(r.task_id), r.attempt, now_ns + retention_ns(), r.timed_out},
        now_ns);
  }
  refresh(s, r, hb, now_ns, wall_ms);
  r.timed_out = false;
  r.added_wall_ms = wall_ms;
}

void RunnerTable::add_fence(Runner& r, const Fence& fence, int64_t now_ns) {
  if (!r.extra) r.extra = std::make_unique<RunnerExtra>();
  auto& fences = r.extra->fences;
  std::erase_if(fences, [&](const Fence& f) { return f.until_ns <= now_ns; });
  if (fences.size() < kMaxFences) {
    fences.push_back(fence);
    return;
  }
  // Full: the new fence and the kept ones compete. Timed-out attempts are
  // kept longest (a second event is the worse outcome), then the fences heard
  // of most recently.
  const auto key = [](const Fence& f) { return std::pair(f.timed_out, f.until_ns); };
  auto victim = std::min_element(fences.begin(), fences.end(),
                                 [&](const Fence& a, const Fence& b) { return key(a) < key(b); });
  if (key(fence) < key(*victim)) return;
  *victim = fence;
}

std::optional<Applied> RunnerTable::fenced(Runner& r, const protocol::RunnerInfo& info,
                                           int64_t now_ns) const {
  if (!r.extra || r.extra->fences.empty()) return std::nullopt;
  const uint64_t task_hash = std::hash<std::string_view>{}(info.task_id);
  std::optional<Applied> verdict;
  for (Fence& f : r.extra->fences) {
    if (f.until_ns <= now_ns || f.task_hash != task_hash || info.attempt > f.attempt) continue;
    f.until_ns = now_ns + retention_ns();  // still talked about: fenced for longer
    const bool late = f.timed_out && info.attempt == f.attempt;
    if (late || !verdict) verdict = late ? Applied::kLate : Applied::kStaleAttempt;
  }
  return verdict;
}

Applied RunnerTable::apply(const Heartbeat& hb, MonoTime now, int64_t wall_ms) {
  const int64_t now_ns = to_ns(now);
  const HashedId key(hb.runner.runner_id);
  Shard& s = shard_for(key.hash);
  std::lock_guard lock(s.mu);
  auto it = s.runners.find(key);
  const bool inserted = it == s.runners.end();
  if (inserted) it = s.runners.try_emplace(hb.runner.runner_id).first;
  Runner& r = it->second;
  if (inserted) {
    r.id = &it->first;
    start_lifecycle(s, r, hb, now_ns, wall_ms);
    r.has_seq = true;
    r.state = hb.state;
    by_state_[state_index(r.state)].fetch_add(1, std::memory_order_relaxed);
    arm_for_state(s, r, now_ns);
    publish(s);
    bump(s.accepted);
    if (observer_) observer_->on_added(*r.id, r.task_id, r.attempt, r.state);
    return Applied::kAdded;
  }

  const bool new_task = r.task_id != hb.runner.task_id;
  const bool earlier_attempt = !new_task && hb.runner.attempt < r.attempt;
  if (new_task || earlier_attempt) {
    // A fenced lifecycle, or an earlier attempt of the current task (stale,
    // or late when that very attempt timed out: its fence says so).
    std::optional<Applied> f = fenced(r, hb.runner, now_ns);
    if (earlier_attempt && !f) f = Applied::kStaleAttempt;
    if (f) {
      bump(*f == Applied::kLate ? s.late : s.stale_attempts);
      // As for a late heartbeat: while the runner still talks about a
      // lifecycle it left, it stays remembered, and so do its fences.
      if (!live(r.state)) {
        arm_for_state(s, r, now_ns);
        publish(s);
      }
      return *f;
    }
  }
  if (new_task || hb.runner.attempt > r.attempt) {
    start_lifecycle(s, r, hb, now_ns, wall_ms);
    r.has_seq = true;
    move_state_counter(r.state, hb.state);
    r.state = hb.state;
    arm_for_state(s, r, now_ns);
    publish(s);
    bump(s.accepted);
    if (observer_) observer_->on_added(*r.id, r.task_id, r.attempt, r.state);
    return Applied::kNewLifecycle;
  }

  // Same task and attempt.
  if (!live(r.state)) {
    // The attempt ended. A runner still talking about it must stay
    // remembered, or it would come back as new after the retention and could
    // time out a second time for the same attempt: retention restarts.
    bump(s.late);
    arm_for_state(s, r, now_ns);
    publish(s);
    return Applied::kLate;
  }
  if (r.has_seq && hb.seq <= r.seq) {
    bump(s.duplicates);
    return Applied::kDuplicate;
  }
  refresh(s, r, hb, now_ns, wall_ms);
  r.has_seq = true;
  bump(s.accepted);
  if (hb.state != RunnerState::kRunning) {
    set_state_locked(s, r, hb.state, now_ns);  // completed or failed: stop timing
  } else if (r.state == RunnerState::kSuspect) {
    set_state_locked(s, r, RunnerState::kRunning, now_ns);
  } else {
    // Lazy re-arm: the armed time stays unless this heartbeat brings the next
    // check earlier (a shorter timeout_ms than before). The common case
    // touches neither the index nor what it publishes.
    const int64_t due = running_due(r);
    if (r.armed() && due >= r.due_ns) return Applied::kUpdated;
    s.index.arm(&r, due);
  }
  publish(s);
  return Applied::kUpdated;
}

void RunnerTable::on_due(Shard& s, Runner& r, int64_t now_ns, int64_t wall_ms,
                         std::vector<Expired>& out) {
  if (!live(r.state)) {  // retention is over
    erase_locked(s, r, true);
    return;
  }
  const int64_t timeout_ns = static_cast<int64_t>(r.timeout_ms) * kNsPerMs;
  const int64_t deadline = r.last_heard_ns + timeout_ns;
  if (now_ns >= deadline) {
    Expired x;
    x.deadline = from_ns(deadline);
    TimeoutEvent& ev = x.event;
    ev.event_id = opts_.event_id_prefix + "-" +
                  std::to_string(next_event_.fetch_add(1, std::memory_order_relaxed));
    ev.runner = info_of(s, r);
    ev.last_seq = r.seq;
    ev.last_heartbeat_ms = r.last_heard_wall_ms;
    ev.detected_at_ms = wall_ms;
    ev.timeout_ms = r.timeout_ms;
    ev.delivery = 1;
    out.push_back(std::move(x));
    r.timed_out = true;
    timeouts_.fetch_add(1, std::memory_order_relaxed);
    set_state_locked(s, r, RunnerState::kFailed, now_ns);
    return;
  }
  const auto suspect_at =
      r.last_heard_ns + static_cast<int64_t>(static_cast<double>(timeout_ns) * opts_.suspect_ratio);
  if (r.state == RunnerState::kRunning && now_ns >= suspect_at) {
    set_state_locked(s, r, RunnerState::kSuspect, now_ns);
    s.index.arm(&r, deadline);
  } else {
    arm_for_state(s, r, now_ns);  // heard from since it was armed
  }
}

void RunnerTable::sweep(MonoTime now, int64_t wall_ms, std::vector<Expired>& out) {
  const int64_t now_ns = to_ns(now);
  for (uint32_t i = 0; i <= shard_mask_; ++i) {
    Shard& s = shards_[i];
    if (s.top_due_ns.load(std::memory_order_acquire) > now_ns) continue;
    std::lock_guard lock(s.mu);
    while (TimedNode* n = s.index.pop_due(now_ns)) {
      on_due(s, *static_cast<Runner*>(n), now_ns, wall_ms, out);
    }
    publish(s);
  }
}

std::optional<MonoTime> RunnerTable::next_due() const {
  int64_t best = kNever;
  for (uint32_t i = 0; i <= shard_mask_; ++i) {
    // seq_cst: pairs with publish() and plan_wake() so that either this sees
    // a newly armed due time or the arming thread sees the plan and wakes us.
    best = std::min(best, shards_[i].top_due_ns.load(std::memory_order_seq_cst));
  }
  if (best == kNever) return std::nullopt;
  return from_ns(best);
}

void RunnerTable::erase_locked(Shard& s, Runner& r, bool expired) {
  s.index.disarm(&r);
  by_state_[state_index(r.state)].fetch_sub(1, std::memory_order_relaxed);
  if (expired) expired_removed_.fetch_add(1, std::memory_order_relaxed);
  s.pools.release(r.pool);
  const std::string id = *r.id;
  s.runners.erase(s.runners.find(HashedId(id)));
  if (observer_) observer_->on_removed(id, expired);
}

protocol::RunnerInfo RunnerTable::info_of(const Shard& s, const Runner& r) {
  protocol::RunnerInfo info;
  info.runner_id = *r.id;
  info.task_id = r.task_id;
  info.attempt = r.attempt;
  info.pool = s.pools.name(r.pool);
  info.pool_type = r.pool_type;
  if (r.has_pid) info.pid = r.pid;
  if (r.extra) {
    info.container_id = r.extra->container_id;
    info.job_name = r.extra->job_name;
    info.progress = r.extra->progress;
  }
  return info;
}

RunnerView RunnerTable::view(const Shard& s, const Runner& r, int64_t now_ns) const {
  RunnerView v;
  v.runner = info_of(s, r);
  if (r.extra) v.interval_ms = r.extra->interval_ms;
  v.state = r.state;
  v.last_seq = r.seq;
  v.last_heartbeat_ms = r.last_heard_wall_ms;
  v.silence_ms = static_cast<uint64_t>(std::max<int64_t>(0, now_ns - r.last_heard_ns) / kNsPerMs);
  v.timeout_ms = r.timeout_ms;
  v.added_at_ms = r.added_wall_ms;
  return v;
}

}  // namespace rmon::monitor
