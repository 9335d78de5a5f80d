// The runner table: queries and control operations.

#include "runner_table.hpp"

#include <algorithm>
#include <bit>
#include <limits>

#include "rmon/protocol/codec.hpp"
#include "shard.hpp"

namespace rmon::monitor {

std::optional<RunnerView> RunnerTable::get(const std::string& runner_id, MonoTime now) const {
  const HashedId key(runner_id);
  const Shard& s = shard_for(key.hash);
  std::lock_guard lock(s.mu);
  auto it = s.runners.find(key);
  if (it == s.runners.end()) return std::nullopt;
  return view(s, it->second, to_ns(now));
}

namespace {
bool matches(const RunnerFilter& f, const Runner& r, const PoolNames& pools) {
  if (f.state && r.state != *f.state) return false;
  if (f.pool && pools.name(r.pool) != *f.pool) return false;
  return true;
}
}  // namespace

RunnerTable::ListPage RunnerTable::list(const RunnerFilter& f, std::size_t limit, MonoTime now,
                                        const std::optional<std::string>& after,
                                        std::size_t max_bytes) const {
  // Keep the `limit` smallest ids seen so far in a max-heap of ids, then build
  // views for just those: memory stays O(limit) however large the table.
  ListPage page;
  if (limit == 0) return page;  // nothing to page on from
  std::vector<std::string> ids;
  auto cmp = std::less<std::string>();
  for (uint32_t i = 0; i <= shard_mask_; ++i) {
    const Shard& s = shards_[i];
    std::lock_guard lock(s.mu);
    for (const auto& [id, r] : s.runners) {
      if (!matches(f, r, s.pools) || (after && id <= *after)) continue;
      if (ids.size() < limit) {
        ids.push_back(id);
        std::push_heap(ids.begin(), ids.end(), cmp);
        continue;
      }
      page.more = true;  // more match than `limit`
      if (id < ids.front()) {
        std::pop_heap(ids.begin(), ids.end(), cmp);
        ids.back() = id;
        std::push_heap(ids.begin(), ids.end(), cmp);
      }
    }
  }
  std::sort(ids.begin(), ids.end());
  std::size_t bytes = 0;
  for (const std::string& id : ids) {
    // A runner removed in between is skipped, not an error.
    auto v = get(id, now);
    if (!v) continue;
    bytes += protocol::encoded_size_bound(*v);
    if (bytes > max_bytes && !page.runners.empty()) {
      page.more = true;
      break;
    }
    page.runners.push_back(std::move(*v));
  }
  return page;
}

std::size_t RunnerTable::count(const RunnerFilter& f) const {
  if (!f.pool) {
    if (!f.state) return size();
    return static_cast<std::size_t>(
        std::max<int64_t>(0, by_state_[state_index(*f.state)].load(std::memory_order_relaxed)));
  }
  std::size_t n = 0;
  for (uint32_t i = 0; i <= shard_mask_; ++i) {
    const Shard& s = shards_[i];
    std::lock_guard lock(s.mu);
    for (const auto& [id, r] : s.runners) n += matches(f, r, s.pools) ? 1 : 0;
  }
  return n;
}

TableCounters RunnerTable::counters() const {
  TableCounters t;
  for (uint32_t i = 0; i <= shard_mask_; ++i) {
    const Shard& s = shards_[i];
    t.accepted += s.accepted.load(std::memory_order_relaxed);
    t.duplicates += s.duplicates.load(std::memory_order_relaxed);
    t.late += s.late.load(std::memory_order_relaxed);
    t.stale_attempts += s.stale_attempts.load(std::memory_order_relaxed);
  }
  t.timeouts = timeouts_.load(std::memory_order_relaxed);
  t.expired_removed = expired_removed_.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < by_state_.size(); ++i) {
    t.by_state[i] = by_state_[i].load(std::memory_order_relaxed);
  }
  return t;
}

std::size_t RunnerTable::size() const {
  std::size_t n = 0;
  for (uint32_t i = 0; i <= shard_mask_; ++i) {
    std::lock_guard lock(shards_[i].mu);
    n += shards_[i].runners.size();
  }
  return n;
}

ControlError RunnerTable::add(const Heartbeat& spec, MonoTime now, int64_t wall_ms) {
  const int64_t now_ns = to_ns(now);
  Shard& s = shard_for(HashedId(spec.runner.runner_id).hash);
  std::lock_guard lock(s.mu);
  auto [it, inserted] = s.runners.try_emplace(spec.runner.runner_id);
  Runner& r = it->second;
  if (!inserted && live(r.state)) return ControlError::kExists;
  // Adding back an attempt that timed out, an earlier attempt of the current
  // task, or an ended attempt the runner has left would revive it.
  if (!inserted) {
    const bool same_task = spec.runner.task_id == r.task_id;
    if (same_task &&
        (spec.runner.attempt < r.attempt || (spec.runner.attempt == r.attempt && r.timed_out))) {
      return ControlError::kConflict;
    }
    if (!same_task && fenced(r, spec.runner, now_ns)) return ControlError::kConflict;
  }
  const RunnerState before = r.state;
  r.id = &it->first;
  start_lifecycle(s, r, spec, now_ns, wall_ms);
  r.has_seq = false;  // the runner's first heartbeat may carry any seq
  r.seq = 0;
  r.state = spec.state;
  if (inserted) {
    by_state_[state_index(r.state)].fetch_add(1, std::memory_order_relaxed);
  } else {
    move_state_counter(before, r.state);
  }
  arm_for_state(s, r, now_ns);
  publish(s);
  if (observer_) observer_->on_added(*r.id, r.task_id, r.attempt, r.state);
  return ControlError::kNone;
}

bool RunnerTable::remove(const std::string& runner_id) {
  const HashedId key(runner_id);
  Shard& s = shard_for(key.hash);
  std::lock_guard lock(s.mu);
  auto it = s.runners.find(key);
  if (it == s.runners.end()) return false;
  erase_locked(s, it->second, false);
  publish(s);
  return true;
}

ControlError RunnerTable::set_state(const std::string& runner_id, RunnerState state, MonoTime now,
                                    int64_t wall_ms) {
  if (state == RunnerState::kSuspect) return ControlError::kBadRequest;
  const int64_t now_ns = to_ns(now);
  const HashedId key(runner_id);
  Shard& s = shard_for(key.hash);
  std::lock_guard lock(s.mu);
  auto it = s.runners.find(key);
  if (it == s.runners.end()) return ControlError::kNotFound;
  Runner& r = it->second;
  if (state == RunnerState::kRunning) {
    if (r.timed_out) return ControlError::kConflict;  // its task went to someone else
    // Back to RUNNING counts as hearing from it now.
    r.last_heard_ns = now_ns;
    r.last_heard_wall_ms = wall_ms;
    if (r.state == RunnerState::kRunning) arm_for_state(s, r, now_ns);
  }
  set_state_locked(s, r, state, now_ns);
  publish(s);
  return ControlError::kNone;
}

}  // namespace rmon::monitor
