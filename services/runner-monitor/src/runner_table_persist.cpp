// The runner table's persistence: copying runners out for the table store and
// putting them back at start-up, and the grace a restart (or a stall) gives.

#include <algorithm>
#include <functional>

#include "shard.hpp"

namespace rmon::monitor {

namespace {
void assign(std::optional<std::string>& to, const std::optional<std::string>& from) {
  if (!from) {
    to.reset();
  } else if (to) {
    to->assign(*from);
  } else {
    to.emplace(*from);
  }
}
}  // namespace

void RunnerTable::Shard::save(const Runner& r, SavedRunner& out) const {
  protocol::RunnerInfo& info = out.info;
  info.runner_id.assign(r.id());
  info.task_id.assign(r.task_id());
  info.attempt = r.attempt;
  info.pool.assign(pools.name(r.pool));
  info.pool_type = r.pool_type;
  info.pid = r.has_pid ? std::optional<uint64_t>(r.pid) : std::nullopt;
  static const std::optional<std::string> kNone;
  assign(info.container_id, r.extra ? r.extra->container_id : kNone);
  assign(info.job_name, r.extra ? r.extra->job_name : kNone);
  assign(info.progress, r.extra ? r.extra->progress : kNone);
  out.state = r.state;
  out.seq = r.seq;
  out.has_seq = r.has_seq;
  out.timed_out = r.timed_out;
  out.interval_ms = r.has_interval ? std::optional<uint64_t>(r.interval_ms) : std::nullopt;
  out.timeout_ms = r.timeout_ms;
  out.last_heard_wall_ms = r.last_heard_wall_ms;
  out.added_wall_ms = r.added_wall_ms;
  out.fences.clear();
  if (r.extra) {
    for (const Fence& f : r.extra->fences) {
      out.fences.push_back({f.task_hash, f.attempt, f.timed_out});
    }
  }
}

std::optional<SavedRunner> RunnerTable::save(std::string_view runner_id) const {
  SavedRunner out;
  if (!save(runner_id, out)) return std::nullopt;
  return out;
}

bool RunnerTable::save(std::string_view runner_id, SavedRunner& out) const {
  const HashedId key(runner_id);
  Shard& s = shard_for(key.hash);
  MutexLock lock(s.mu);
  const Runner* r = s.runners.find(key);
  if (r == nullptr) return false;
  s.save(*r, out);
  return true;
}

void RunnerTable::for_each_saved(const std::function<void(const SavedRunner&)>& fn) const {
  std::vector<SavedRunner> batch;
  for (uint32_t i = 0; i <= shard_mask_; ++i) {
    Shard& s = shards_[i];
    {
      MutexLock lock(s.mu);
      batch.resize(s.runners.size());
      std::size_t n = 0;
      for (const Runner* r : s.runners) s.save(*r, batch[n++]);
    }
    for (const SavedRunner& r : batch) fn(r);  // outside the lock: fn may write to disk
  }
}

void RunnerTable::append_ids(IdList& ids, const IdRange& range) const {
  // Room for them all at once, from the first shard's average id: growing
  // by doubling would hold up to twice the ids while it copies (a rewrite
  // of 1M runners with 36-byte ids peaked at 64 MB instead of 37).
  std::size_t sample_runners = 0, sample_bytes = 0;
  {
    MutexLock lock(shards_[0].mu);
    for (const Runner* r : shards_[0].runners) {
      sample_bytes += r->id().size() + 1;
      if (++sample_runners == 64) break;
    }
  }
  if (sample_runners > 0) {
    const auto n = static_cast<std::size_t>(static_cast<double>(size()) * range.share);
    ids.reserve_bytes(ids.bytes() + n * sample_bytes / sample_runners + n / 64 + 4096);
  }
  const auto in_range = [&](std::string_view id) {
    return id >= range.from && (!range.to || id < *range.to);
  };
  for (uint32_t i = 0; i <= shard_mask_; ++i) {
    Shard& s = shards_[i];
    MutexLock lock(s.mu);
    for (const Runner* r : s.runners) {
      if (in_range(r->id())) ids.add(r->id());
    }
  }
}

std::vector<std::string> RunnerTable::split_ids(std::size_t parts) const {
  // Every stride-th runner of every shard, about kSample of them, into one
  // buffer reserved up front: no allocation per id under a shard's lock.
  constexpr std::size_t kSample = 16'384;  // ~0.6 MB of 36-byte ids
  const std::size_t stride = std::max<std::size_t>(1, size() / kSample);
  IdList sample;
  sample.reserve_bytes(kSample * 40 + 4096);
  std::size_t n = 0;
  for (uint32_t i = 0; i <= shard_mask_; ++i) {
    Shard& s = shards_[i];
    MutexLock lock(s.mu);
    for (const Runner* r : s.runners) {
      if (n++ % stride == 0) sample.add(r->id());
    }
  }
  std::vector<std::string> splits;
  const std::vector<uint32_t> order = sample.sorted_unique();
  if (parts < 2 || order.size() < parts) return splits;
  for (std::size_t k = 1; k < parts; ++k) {
    const std::string_view at = sample.at(order[k * order.size() / parts]);
    if (splits.empty() || splits.back() < at) splits.emplace_back(at);
  }
  return splits;
}

bool RunnerTable::restore(const SavedRunner& saved, MonoTime now, int64_t wall_ms) {
  const HashedId key(saved.info.runner_id);
  if (key.id.empty() || saved.info.task_id.empty()) return false;
  Shard& s = shard_for(key.hash);
  MutexLock lock(s.mu);
  if (s.runners.find(key) != nullptr) return false;
  const int64_t now_ns = to_ns(now);
  Runner* r = s.runners.emplace(key, saved.info.task_id.size());
  Heartbeat hb;
  hb.runner = saved.info;
  hb.seq = saved.seq;
  hb.state = saved.state;
  if (saved.interval_ms) hb.interval_ms = saved.interval_ms;
  hb.timeout_ms = saved.timeout_ms;
  r = s.refresh(r, hb, now_ns, saved.last_heard_wall_ms);
  // Silence goes on from the saved last heartbeat (the grace keeps it from
  // convicting anyone early); a clock that went back counts as none.
  const int64_t silent_ns = std::max<int64_t>(0, wall_ms - saved.last_heard_wall_ms) * kNsPerMs;
  r->last_heard_ns = now_ns - silent_ns;
  r->seq = saved.seq;
  r->has_seq = saved.has_seq;
  r->added_wall_ms = saved.added_wall_ms;
  r->timed_out = saved.timed_out && saved.state == RunnerState::kFailed;
  r->state = live(saved.state) ? RunnerState::kRunning : saved.state;
  for (const SavedFence& f : saved.fences) {
    if (!r->extra) r->extra = std::make_unique<RunnerExtra>();
    if (r->extra->fences.size() >= kMaxFences) break;
    r->extra->fences.push_back({f.task_hash, f.attempt, now_ns + retention_ns(), f.timed_out});
  }
  by_state_[state_index(r->state)].fetch_add(1, std::memory_order_relaxed);
  s.arm_for_state(*r, now_ns);
  s.publish();
  return true;
}

bool RunnerTable::mark_timed_out(std::string_view runner_id, std::string_view task_id,
                                 uint64_t attempt, MonoTime now) {
  const HashedId key(runner_id);
  Shard& s = shard_for(key.hash);
  MutexLock lock(s.mu);
  Runner* r = s.runners.find(key);
  if (r == nullptr || r->task_id() != task_id || r->attempt != attempt || !live(r->state)) {
    return false;
  }
  r->timed_out = true;
  s.set_state(*r, RunnerState::kFailed, to_ns(now));
  s.publish();
  return true;
}

namespace {
void raise_to(std::atomic<int64_t>& a, int64_t v) {
  int64_t cur = a.load(std::memory_order_relaxed);
  while (cur < v && !a.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}
}  // namespace

void RunnerTable::grant_grace(MonoTime from, std::optional<Millis> grace) {
  if (!grace) {
    raise_to(grace_from_ns_, to_ns(from));
    return;
  }
  // The end first: a sweep seeing the new start sees an end at least as late.
  raise_to(fixed_grace_until_ns_, to_ns(from + *grace));
  raise_to(fixed_grace_from_ns_, to_ns(from));
}

}  // namespace rmon::monitor
