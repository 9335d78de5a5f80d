// The runner table: queries and control operations.

#include "runner_table.hpp"

#include <algorithm>
#include <bit>
#include <limits>
#include <string_view>
#include <utility>

#include "rmon/protocol/codec.hpp"
#include "shard.hpp"

namespace rmon::monitor {

std::optional<RunnerView> RunnerTable::get(const std::string& runner_id, MonoTime now) const {
  const HashedId key(runner_id);
  const Shard& s = shard_for(key.hash);
  MutexLock lock(s.mu);
  const Runner* r = s.runners.find(key);
  if (r == nullptr) return std::nullopt;
  return s.view(*r, to_ns(now));
}

namespace {

// One runner's short state (see RunnerTable::lookup); its shard's lock is held.
protocol::LookupEntry lookup_entry(const Runner& r, int64_t now_ns, double suspect_ratio) {
  const int64_t timeout_ns = static_cast<int64_t>(r.timeout_ms) * kNsPerMs;
  int64_t since_ns = r.last_heard_ns;
  const bool timed_out = r.state == RunnerState::kFailed && r.timed_out;
  if (r.state == RunnerState::kSuspect) {
    // As the sweep computes it (shard.cpp, on_due).
    since_ns += static_cast<int64_t>(static_cast<double>(timeout_ns) * suspect_ratio);
  } else if (timed_out) {
    since_ns += timeout_ns;
  }
  protocol::LookupEntry e;
  e.task_id = r.task_id();
  e.attempt = r.attempt;
  e.state = r.state;
  e.timed_out = timed_out;
  e.state_for_ms = static_cast<uint64_t>(std::max<int64_t>(0, now_ns - since_ns) / kNsPerMs);
  return e;
}

}  // namespace

std::vector<std::optional<protocol::LookupEntry>> RunnerTable::lookup(
    const std::vector<std::string>& ids, MonoTime now) const {
  const int64_t now_ns = to_ns(now);
  std::vector<std::optional<protocol::LookupEntry>> out(ids.size());
  // Positions sorted by shard: each run of one shard is answered under one
  // hold of its lock.
  std::vector<HashedId> keys;
  keys.reserve(ids.size());
  std::vector<std::pair<const Shard*, std::size_t>> order;
  order.reserve(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    keys.emplace_back(ids[i]);
    order.emplace_back(&shard_for(keys.back().hash), i);
  }
  std::sort(order.begin(), order.end());
  for (std::size_t begin = 0; begin < order.size();) {
    const Shard& s = *order[begin].first;
    std::size_t end = begin;
    MutexLock lock(s.mu);
    for (; end < order.size() && order[end].first == &s; ++end) {
      const std::size_t pos = order[end].second;
      if (const Runner* r = s.runners.find(keys[pos]); r != nullptr) {
        out[pos] = lookup_entry(*r, now_ns, opts_.suspect_ratio);
      }
    }
    begin = end;
  }
  return out;
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
    MutexLock lock(s.mu);
    for (const Runner* r : s.runners) {
      const std::string_view id = r->id();
      if (!matches(f, *r, s.pools) || (after && id <= *after)) continue;
      if (ids.size() < limit) {
        ids.emplace_back(id);
        std::push_heap(ids.begin(), ids.end(), cmp);
        continue;
      }
      page.more = true;  // more match than `limit`
      if (id < ids.front()) {
        std::pop_heap(ids.begin(), ids.end(), cmp);
        ids.back().assign(id);
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
    MutexLock lock(s.mu);
    for (const Runner* r : s.runners) n += matches(f, *r, s.pools) ? 1 : 0;
  }
  return n;
}

std::size_t RunnerTable::count_overdue(MonoTime now) const {
  const int64_t now_ns = to_ns(now);
  std::size_t n = 0;
  for (uint32_t i = 0; i <= shard_mask_; ++i) {
    const Shard& s = shards_[i];
    MutexLock lock(s.mu);
    for (const Runner* r : s.runners) {
      n += live(r->state) &&
                   now_ns >= r->last_heard_ns + static_cast<int64_t>(r->timeout_ms) * kNsPerMs
               ? 1
               : 0;
    }
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
    const Shard& s = shards_[i];
    MutexLock lock(s.mu);
    n += s.runners.size();
  }
  return n;
}

ControlError RunnerTable::add(const Heartbeat& spec, MonoTime now, int64_t wall_ms) {
  const HashedId key(spec.runner.runner_id);
  Shard& s = shard_for(key.hash);
  {
    MutexLock lock(s.mu);
    if (ControlError e = s.add(key, spec, to_ns(now), wall_ms); e != ControlError::kNone) return e;
  }
  if (observer_) {
    observer_->on_added(spec.runner.runner_id, spec.runner.task_id, spec.runner.attempt,
                        spec.state);
  }
  return ControlError::kNone;
}

bool RunnerTable::remove(const std::string& runner_id) {
  const HashedId key(runner_id);
  Shard& s = shard_for(key.hash);
  {
    MutexLock lock(s.mu);
    Runner* r = s.runners.find(key);
    if (r == nullptr) return false;
    s.erase(r, false);
    s.publish();
  }
  if (observer_) observer_->on_removed(runner_id, false);
  return true;
}

ControlError RunnerTable::set_state(const std::string& runner_id, RunnerState state, MonoTime now,
                                    int64_t wall_ms) {
  if (state == RunnerState::kSuspect) return ControlError::kBadRequest;
  const int64_t now_ns = to_ns(now);
  const HashedId key(runner_id);
  Shard& s = shard_for(key.hash);
  LifecycleNote note;
  {
    MutexLock lock(s.mu);
    Runner* r = s.runners.find(key);
    if (r == nullptr) return ControlError::kNotFound;
    if (state == RunnerState::kRunning) {
      if (r->timed_out) return ControlError::kConflict;  // its task went to someone else
      // Back to RUNNING counts as hearing from it now.
      r->last_heard_ns = now_ns;
      r->last_heard_wall_ms = wall_ms;
      if (r->state == RunnerState::kRunning) s.arm_for_state(*r, now_ns);
    }
    const RunnerState from = s.set_state(*r, state, now_ns);
    s.publish();
    if (observer_ && from != state) {
      note = {std::string(runner_id), std::string(r->task_id()), r->attempt, {from, state, true}};
    }
  }
  if (note.change.changed) deliver(*observer_, {note});
  return ControlError::kNone;
}

}  // namespace rmon::monitor
