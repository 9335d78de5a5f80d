// The runner table's state machine, on one shard under its lock.

#include <algorithm>
#include <functional>
#include <string_view>

#include <xxhash.h>

#include "shard.hpp"

namespace rmon::monitor {

namespace {

// Persisted with the fences (TableStore), so it must not change with the
// toolchain as std::hash may: XXH3, 64 bits.
uint64_t task_hash(std::string_view task_id) { return XXH3_64bits(task_id.data(), task_id.size()); }

// Adds `fence` to `r`'s fences, making room by kMaxFences' priority.
void add_fence(Runner& r, const Fence& fence, int64_t now_ns) {
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

}  // namespace

void RunnerTable::Shard::arm_for_state(Runner& r, int64_t now_ns) {
  const int64_t timeout_ns = static_cast<int64_t>(r.timeout_ms) * kNsPerMs;
  switch (r.state) {
    case RunnerState::kRunning:
      index.arm(&r, table->running_due(r));
      break;
    case RunnerState::kSuspect:
      index.arm(&r, r.last_heard_ns + timeout_ns);
      break;
    case RunnerState::kCompleted:
    case RunnerState::kFailed:
      index.arm(&r, now_ns + table->retention_ns());
      break;
  }
}

void RunnerTable::Shard::publish() {
  const int64_t top = index.empty() ? kNever : index.top_due_ns();
  top_due_ns.store(top, std::memory_order_seq_cst);
  table->wake_if_earlier(top);
}

RunnerState RunnerTable::Shard::set_state(Runner& r, RunnerState to, int64_t now_ns) {
  const RunnerState from = r.state;
  if (from == to) return from;
  r.state = to;
  table->move_state_counter(from, to);
  // Entering SUSPECT keeps the armed deadline; every other change re-arms.
  if (to != RunnerState::kSuspect) arm_for_state(r, now_ns);
  return from;
}

Runner* RunnerTable::Shard::refresh(Runner* r, const Heartbeat& hb, int64_t now_ns,
                                    int64_t wall_ms) {
  const auto& info = hb.runner;
  if (r->task_id() != info.task_id) r = runners.set_task(r, info.task_id, index);
  r->attempt = info.attempt;
  r->seq = hb.seq;
  if (r->pool == PoolNames::kNone || pools.name(r->pool) != info.pool) {
    const uint32_t id = pools.acquire(info.pool);
    pools.release(r->pool);
    r->pool = id;
  }
  r->pool_type = info.pool_type;
  r->has_pid = info.pid.has_value();
  r->pid = info.pid.value_or(0);
  r->has_interval = hb.interval_ms.has_value();
  r->interval_ms = hb.interval_ms.value_or(0);
  r->last_heard_ns = now_ns;
  r->last_heard_wall_ms = wall_ms;
  r->timeout_ms = static_cast<uint32_t>(table->clamp_timeout_ms(hb.timeout_ms));
  if (r->extra && !r->extra->fences.empty()) {
    std::erase_if(r->extra->fences, [&](const Fence& f) { return f.until_ns <= now_ns; });
  }
  const bool want_extra = info.container_id || info.job_name || info.progress ||
                          (r->extra && !r->extra->fences.empty());
  if (want_extra) {
    if (!r->extra) r->extra = std::make_unique<RunnerExtra>();
    r->extra->container_id = info.container_id;
    r->extra->job_name = info.job_name;
    r->extra->progress = info.progress;
  } else {
    r->extra.reset();
  }
  return r;
}

Runner* RunnerTable::Shard::start_lifecycle(Runner* r, const Heartbeat& hb, int64_t now_ns,
                                            int64_t wall_ms) {
  // Leaving an ended lifecycle for another task or a later attempt of the
  // same one (a fresh runner has none): fence it (see Fence). A same-task
  // fence matters once the runner leaves that task while still running.
  if (r->has_task() && !live(r->state) &&
      (r->task_id() != hb.runner.task_id || hb.runner.attempt > r->attempt)) {
    add_fence(*r,
              {task_hash(r->task_id()), r->attempt, now_ns + table->retention_ns(), r->timed_out},
              now_ns);
  }
  r = refresh(r, hb, now_ns, wall_ms);
  r->timed_out = false;
  r->added_wall_ms = wall_ms;
  return r;
}

std::optional<Applied> RunnerTable::Shard::check_fences(Runner& r, const protocol::RunnerInfo& info,
                                                        int64_t now_ns) {
  if (!r.extra || r.extra->fences.empty()) return std::nullopt;
  const uint64_t hash = task_hash(info.task_id);
  std::optional<Applied> verdict;
  for (Fence& f : r.extra->fences) {
    if (f.until_ns <= now_ns || f.task_hash != hash || info.attempt > f.attempt) continue;
    f.until_ns = now_ns + table->retention_ns();  // still talked about: fenced for longer
    const bool late = f.timed_out && info.attempt == f.attempt;
    if (late || !verdict) verdict = late ? Applied::kLate : Applied::kStaleAttempt;
  }
  return verdict;
}

Applied RunnerTable::Shard::apply(const HashedId& key, const Heartbeat& hb, int64_t now_ns,
                                  int64_t wall_ms, StateChange& change) {
  Runner* r = runners.find(key);
  if (r == nullptr) {
    r = start_lifecycle(runners.emplace(key, hb.runner.task_id.size()), hb, now_ns, wall_ms);
    r->has_seq = true;
    r->state = hb.state;
    table->by_state_[state_index(r->state)].fetch_add(1, std::memory_order_relaxed);
    arm_for_state(*r, now_ns);
    publish();
    bump(accepted);
    return Applied::kAdded;
  }

  const bool new_task = r->task_id() != hb.runner.task_id;
  const bool earlier_attempt = !new_task && hb.runner.attempt < r->attempt;
  if (new_task || earlier_attempt) {
    // A fenced lifecycle, or an earlier attempt of the current task (stale,
    // or late when that very attempt timed out: its fence says so).
    std::optional<Applied> f = check_fences(*r, hb.runner, now_ns);
    if (earlier_attempt && !f) f = Applied::kStaleAttempt;
    if (f) {
      bump(*f == Applied::kLate ? late : stale_attempts);
      // As for a late heartbeat: while the runner still talks about a
      // lifecycle it left, it stays remembered, and so do its fences.
      if (!live(r->state)) {
        arm_for_state(*r, now_ns);
        publish();
      }
      return *f;
    }
  }
  if (new_task || hb.runner.attempt > r->attempt) {
    r = start_lifecycle(r, hb, now_ns, wall_ms);
    r->has_seq = true;
    table->move_state_counter(r->state, hb.state);
    r->state = hb.state;
    arm_for_state(*r, now_ns);
    publish();
    bump(accepted);
    return Applied::kNewLifecycle;
  }

  // Same task and attempt.
  if (!live(r->state)) {
    // The attempt ended. A runner still talking about it must stay
    // remembered, or it would come back as new after the retention and could
    // time out a second time for the same attempt: retention restarts.
    bump(late);
    arm_for_state(*r, now_ns);
    publish();
    return Applied::kLate;
  }
  if (r->has_seq && hb.seq <= r->seq) {
    bump(duplicates);
    return Applied::kDuplicate;
  }
  r = refresh(r, hb, now_ns, wall_ms);
  r->has_seq = true;
  bump(accepted);
  if (hb.state != RunnerState::kRunning || r->state == RunnerState::kSuspect) {
    // Completed or failed: stop timing. Suspect: heard from again.
    const RunnerState from = set_state(*r, hb.state, now_ns);
    change = {from, hb.state, from != hb.state};
  } else {
    // Lazy re-arm: the armed time stays unless this heartbeat brings the next
    // check earlier (a shorter timeout_ms than before). The common case
    // touches neither the index nor what it publishes.
    const int64_t due = table->running_due(*r);
    if (r->armed() && due >= r->due_ns) return Applied::kUpdated;
    index.arm(r, due);
  }
  publish();
  return Applied::kUpdated;
}

ControlError RunnerTable::Shard::add(const HashedId& key, const Heartbeat& spec, int64_t now_ns,
                                     int64_t wall_ms) {
  Runner* r = runners.find(key);
  const bool inserted = r == nullptr;
  if (inserted) {
    r = runners.emplace(key, spec.runner.task_id.size());
  } else {
    if (live(r->state)) return ControlError::kExists;
    // Adding back an attempt that timed out, an earlier attempt of the
    // current task, or an ended attempt the runner has left would revive it.
    const bool same_task = spec.runner.task_id == r->task_id();
    if (same_task &&
        (spec.runner.attempt < r->attempt || (spec.runner.attempt == r->attempt && r->timed_out))) {
      return ControlError::kConflict;
    }
    if (!same_task && check_fences(*r, spec.runner, now_ns)) return ControlError::kConflict;
  }
  const RunnerState before = r->state;
  r = start_lifecycle(r, spec, now_ns, wall_ms);
  r->has_seq = false;  // the runner's first heartbeat may carry any seq
  r->seq = 0;
  r->state = spec.state;
  if (inserted) {
    table->by_state_[state_index(r->state)].fetch_add(1, std::memory_order_relaxed);
  } else {
    table->move_state_counter(before, r->state);
  }
  arm_for_state(*r, now_ns);
  publish();
  return ControlError::kNone;
}

void RunnerTable::Shard::on_due(Runner& r, int64_t now_ns, int64_t wall_ms,
                                std::vector<Expired>& out, std::vector<LifecycleNote>* notes,
                                bool hold_timeouts, std::size_t& held) {
  const auto note = [&](StateChange change, bool expired) {
    if (notes && (expired || change.from != change.to)) {
      notes->push_back({std::string(r.id()), std::string(r.task_id()), r.attempt, change, expired});
    }
  };
  if (!live(r.state)) {  // retention is over
    note({}, true);
    erase(&r, true);
    return;
  }
  const int64_t timeout_ns = static_cast<int64_t>(r.timeout_ms) * kNsPerMs;
  const int64_t deadline = r.last_heard_ns + timeout_ns;
  // Not heard from since a grace began (a restart, a stall of the monitor
  // itself, a brake's release): left alone until the latest grace covering
  // it ends. Then, if silent past its deadline, it is suspect for one check
  // before it can be convicted, so the storm brake sees a mass of them first.
  std::optional<int64_t> grace_end;
  const int64_t own_from = table->grace_from_ns_.load(std::memory_order_relaxed);
  if (r.last_heard_ns < own_from) grace_end = own_from + timeout_ns;
  if (r.last_heard_ns < table->fixed_grace_from_ns_.load(std::memory_order_relaxed)) {
    const int64_t until = table->fixed_grace_until_ns_.load(std::memory_order_relaxed);
    grace_end = std::max(grace_end.value_or(until), until);
  }
  if (grace_end) {
    if (now_ns < *grace_end) {
      index.arm(&r, *grace_end);
      return;
    }
    if (now_ns >= deadline && r.state == RunnerState::kRunning) {
      note({set_state(r, RunnerState::kSuspect, now_ns), RunnerState::kSuspect, true}, false);
      index.arm(&r, now_ns + kCheckGridNs);
      return;
    }
  }
  if (now_ns >= deadline) {
    if (hold_timeouts) {  // the storm brake: looked at again on the next check
      ++held;
      if (r.state == RunnerState::kRunning) {
        note({set_state(r, RunnerState::kSuspect, now_ns), RunnerState::kSuspect, true}, false);
      }
      index.arm(&r, now_ns + kCheckGridNs);
      return;
    }
    Expired x;
    x.deadline = from_ns(deadline);
    TimeoutEvent& ev = x.event;
    ev.event_id = table->opts_.event_id_prefix + "-" +
                  std::to_string(table->next_event_.fetch_add(1, std::memory_order_relaxed));
    ev.runner = info_of(r);
    ev.last_seq = r.seq;
    ev.last_heartbeat_ms = r.last_heard_wall_ms;
    ev.detected_at_ms = wall_ms;
    ev.timeout_ms = r.timeout_ms;
    ev.delivery = 1;
    out.push_back(std::move(x));
    r.timed_out = true;
    table->timeouts_.fetch_add(1, std::memory_order_relaxed);
    note({set_state(r, RunnerState::kFailed, now_ns), RunnerState::kFailed, true}, false);
    return;
  }
  const auto suspect_at = r.last_heard_ns + static_cast<int64_t>(static_cast<double>(timeout_ns) *
                                                                 table->opts_.suspect_ratio);
  if (r.state == RunnerState::kRunning && now_ns >= suspect_at) {
    note({set_state(r, RunnerState::kSuspect, now_ns), RunnerState::kSuspect, true}, false);
    index.arm(&r, deadline);
  } else {
    arm_for_state(r, now_ns);  // heard from since it was armed
  }
}

void RunnerTable::Shard::erase(Runner* r, bool expired) {
  index.disarm(r);
  table->by_state_[state_index(r->state)].fetch_sub(1, std::memory_order_relaxed);
  if (expired) table->expired_removed_.fetch_add(1, std::memory_order_relaxed);
  pools.release(r->pool);
  runners.erase(r);
}

protocol::RunnerInfo RunnerTable::Shard::info_of(const Runner& r) const {
  protocol::RunnerInfo info;
  info.runner_id = r.id();
  info.task_id = r.task_id();
  info.attempt = r.attempt;
  info.pool = pools.name(r.pool);
  info.pool_type = r.pool_type;
  if (r.has_pid) info.pid = r.pid;
  if (r.extra) {
    info.container_id = r.extra->container_id;
    info.job_name = r.extra->job_name;
    info.progress = r.extra->progress;
  }
  return info;
}

RunnerView RunnerTable::Shard::view(const Runner& r, int64_t now_ns) const {
  RunnerView v;
  v.runner = info_of(r);
  if (r.has_interval) v.interval_ms = r.interval_ms;
  v.state = r.state;
  v.last_seq = r.seq;
  v.last_heartbeat_ms = r.last_heard_wall_ms;
  v.silence_ms = static_cast<uint64_t>(std::max<int64_t>(0, now_ns - r.last_heard_ns) / kNsPerMs);
  v.timeout_ms = r.timeout_ms;
  v.added_at_ms = r.added_wall_ms;
  return v;
}

}  // namespace rmon::monitor
