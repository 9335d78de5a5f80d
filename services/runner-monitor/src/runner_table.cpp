// The runner table: shards, ingest and the sweep (the state machine on
// one shard is in shard.cpp).

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
  if (suspect_grid_ms == 0 || suspect_grid_ms > 1000) return "suspect grid must be 1 to 1000 ms";
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
  for (uint32_t i = 0; i <= shard_mask_; ++i) shards_[i].table = this;
}

RunnerTable::~RunnerTable() = default;

RunnerTable::Shard& RunnerTable::shard_for(std::size_t hash) const {
  return shards_[mix(hash) & shard_mask_];
}

uint64_t RunnerTable::clamp_timeout_ms(std::optional<uint64_t> requested) const {
  return std::clamp(requested.value_or(opts_.default_timeout_ms), opts_.min_timeout_ms,
                    opts_.max_timeout_ms);
}

void RunnerTable::wake_if_earlier(int64_t due_ns) {
  // Something is due before the dispatcher planned to wake: wake it, once
  // (whoever lowers the planned time signals).
  int64_t planned = planned_wake_ns_.load(std::memory_order_seq_cst);
  while (due_ns < planned) {
    if (planned_wake_ns_.compare_exchange_weak(planned, due_ns, std::memory_order_seq_cst)) {
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
  const auto grid_ns = static_cast<int64_t>(opts_.suspect_grid_ms) * kNsPerMs;
  const int64_t rounded = (suspect_at + grid_ns - 1) / grid_ns * grid_ns;
  return std::min(rounded, r.last_heard_ns + timeout_ns);
}

void RunnerTable::move_state_counter(RunnerState from, RunnerState to) {
  if (from == to) return;
  by_state_[state_index(from)].fetch_sub(1, std::memory_order_relaxed);
  by_state_[state_index(to)].fetch_add(1, std::memory_order_relaxed);
}

Applied RunnerTable::apply(const Heartbeat& hb, MonoTime now, int64_t wall_ms) {
  const HashedId key(hb.runner.runner_id);
  Shard& s = shard_for(key.hash);
  StateChange change;
  Applied a;
  {
    MutexLock lock(s.mu);
    a = s.apply(key, hb, to_ns(now), wall_ms, change);
  }
  // Reported from the heartbeat, which names the runner's lifecycle in each
  // of these cases: nothing to copy under the lock.
  if (observer_) {
    const protocol::RunnerInfo& info = hb.runner;
    if (a == Applied::kAdded || a == Applied::kNewLifecycle) {
      observer_->on_added(info.runner_id, info.task_id, info.attempt, hb.state);
    } else if (change.changed) {
      observer_->on_state_changed(info.runner_id, info.task_id, info.attempt, change.from,
                                  change.to);
    }
  }
  return a;
}

std::size_t RunnerTable::sweep(MonoTime now, int64_t wall_ms, std::vector<Expired>& out,
                               bool hold_timeouts) {
  const int64_t now_ns = to_ns(now);
  std::size_t held = 0;
  std::vector<LifecycleNote> notes;
  for (uint32_t i = 0; i <= shard_mask_; ++i) {
    Shard& s = shards_[i];
    if (s.top_due_ns.load(std::memory_order_acquire) > now_ns) continue;
    {
      MutexLock lock(s.mu);
      while (TimedNode* n = s.index.pop_due(now_ns)) {
        s.on_due(*static_cast<Runner*>(n), now_ns, wall_ms, out, observer_ ? &notes : nullptr,
                 hold_timeouts, held);
      }
      s.publish();
    }
    if (observer_ && !notes.empty()) {
      deliver(*observer_, notes);
      notes.clear();
    }
  }
  return held;
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

}  // namespace rmon::monitor
