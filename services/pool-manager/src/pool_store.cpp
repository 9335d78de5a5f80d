#include "pool_store.hpp"

#include <cassert>

#include <limits>
#include <stdexcept>

namespace rmon::pool {

namespace {

constexpr std::array<std::string_view, kCounterCount> kCounterNames = {
    "acquired",   "released",       "released_by_timeout",
    "reconciled", "events_applied", "events_ignored"};

}  // namespace

std::string_view counter_name(Counter c) { return kCounterNames[static_cast<std::size_t>(c)]; }

void set_counter(Counters& c, std::string_view name, uint64_t value) {
  for (std::size_t i = 0; i < kCounterCount; ++i) {
    if (kCounterNames[i] == name) c[i] = value;
  }
}

PoolStore::PoolStore(const std::filesystem::path& path, std::vector<PoolSpec> pools,
                     const Clock& clock, StoreOptions options)
    : clock_(clock), options_(options), pools_(std::move(pools)) {
  // One pool-manager per data folder: the in-memory slot bitmaps assume no
  // other writer.
  sqlite_ = std::make_unique<store::Db>(store::open_service_db(
      path, options.sync, "one pool-manager per data folder", kSchemaVersion));
  rows_ = make_sqlite_rows(*sqlite_, pools_);
  rows_->record_pools(pools_);
  for (const PoolSpec& p : pools_) mirror_.emplace(p.name, Mirror{p, 0});
  resync();
}

PoolStore::PoolStore(std::unique_ptr<PoolRows> rows, std::vector<PoolSpec> pools,
                     const Clock& clock, StoreOptions options)
    : clock_(clock), options_(options), pools_(std::move(pools)), rows_(std::move(rows)) {
  rows_->record_pools(pools_);
  for (const PoolSpec& p : pools_) mirror_.emplace(p.name, Mirror{p, 0});
  resync();
}

PoolStore::~PoolStore() = default;

void PoolStore::resync() {
  rows_->reload();
  counters_ = rows_->read_counters();
  for (auto& [name, m] : mirror_) m.used = 0;
  holdings_total_ = 0;
  rows_->walk(std::nullopt, [&](const Holding& h) {
    ++holdings_total_;
    auto it = mirror_.find(h.pool);
    if (it != mirror_.end() && h.slot < it->second.spec.slots) ++it->second.used;
    return true;
  });
}

void PoolStore::refresh() {
  if (rows_->shared()) resync();
}

void PoolStore::bump(Counter c, uint64_t n) {
  if (n == 0) return;
  rows_->bump(c, n);
  counters_[static_cast<std::size_t>(c)] += n;
}

void PoolStore::forget(const std::vector<Holding>& released) {
  for (const Holding& h : released) {
    // With replicas, a holding this one never counted may be released here
    // (counts catch up at the next refresh): never below zero.
    if (holdings_total_ > 0) --holdings_total_;
    auto it = mirror_.find(h.pool);
    if (it != mirror_.end() && h.slot < it->second.spec.slots && it->second.used > 0) {
      --it->second.used;
    }
  }
}

AcquireResult PoolStore::acquire(std::string_view pool, std::string_view runner_id,
                                 std::string_view task_id, uint64_t attempt) {
  auto it = mirror_.find(pool);
  if (it == mirror_.end()) {
    return {AcquireStatus::kNotFound, 0, "no pool '" + std::string(pool) + "'"};
  }
  if (rows_->attempt_timed_out(runner_id, task_id, attempt)) {
    return {AcquireStatus::kStaleAttempt, 0,
            "runner " + std::string(runner_id) + " timed out on task " + std::string(task_id) +
                " attempt " + std::to_string(attempt)};
  }
  Mirror& m = it->second;
  for (int tries = 0; tries < 2; ++tries) {
    if (auto held = rows_->holding(pool, runner_id)) {
      if (held->task_id == task_id && held->attempt == attempt) {
        return {AcquireStatus::kAlreadyHeld, held->slot, {}};
      }
      return {AcquireStatus::kConflict, 0,
              "runner " + std::string(runner_id) + " holds slot " + std::to_string(held->slot) +
                  " of pool " + std::string(pool) + " for task " + held->task_id + " attempt " +
                  std::to_string(held->attempt)};
    }
    const Taken t = rows_->take_slot(m.spec, runner_id, task_id, attempt, clock_.wall_ms());
    if (t.what == Taken::kRunnerHolds) continue;  // another replica was first: answer from it
    if (t.what == Taken::kFull) {
      return {
          AcquireStatus::kPoolFull, 0,
          "all " + std::to_string(m.spec.slots) + " slots of pool " + m.spec.name + " are in use"};
    }
    ++m.used;
    ++holdings_total_;
    bump(Counter::kAcquired);
    return {AcquireStatus::kAcquired, t.slot, {}};
  }
  throw std::runtime_error("runner " + std::string(runner_id) + " holds a slot of pool " +
                           std::string(pool) + " that cannot be read");
}

std::vector<Holding> PoolStore::release(std::string_view runner_id,
                                        const std::optional<std::string>& pool) {
  std::vector<Holding> out = rows_->delete_runner(runner_id, pool);
  forget(out);
  bump(Counter::kReleased, out.size());
  return out;
}

std::vector<Holding> PoolStore::release_attempt(std::string_view runner_id,
                                                std::string_view task_id, uint64_t attempt) {
  std::vector<Holding> out = rows_->delete_attempt(runner_id, task_id, attempt);
  forget(out);
  return out;
}

EventOutcome PoolStore::apply_timeout(const protocol::TimeoutEvent& event) {
  const protocol::RunnerInfo& r = event.runner;
  if (!rows_->remember_event(event, clock_.wall_ms())) {
    bump(Counter::kEventsIgnored);
    return {EventResult::kRepeated, {}};
  }
  // Matched on (runner, task, attempt), not on the event's pool: that is the
  // fence; a runner's heartbeat pool name is informational here.
  EventOutcome out{EventResult::kApplied, release_attempt(r.runner_id, r.task_id, r.attempt)};
  if (out.released.empty()) {
    out.result = EventResult::kNoHolding;
    bump(Counter::kEventsIgnored);
  } else {
    bump(Counter::kEventsApplied);
    bump(Counter::kReleasedByTimeout, out.released.size());
  }
  return out;
}

std::vector<Holding> PoolStore::apply_verdict(const Judged& j) {
  if (!takes_back(j.verdict)) return {};
  // Fenced by the whole (runner, task, attempt): the slot may have been
  // released and acquired again while the monitors were being asked.
  auto released = release_attempt(j.key.runner_id, j.key.task_id, j.key.attempt);
  bump(Counter::kReleasedByTimeout, released.size());
  bump(Counter::kReconciled, released.size());
  return released;
}

std::size_t PoolStore::prune_events(std::size_t max) {
  return rows_->prune_events(clock_.wall_ms() - options_.event_retention.count(), max);
}

CandidatePage PoolStore::reconcile_candidates(const ReconcileCursor& from, std::size_t max) {
  return rows_->candidates(from, clock_.wall_ms() - options_.first_heartbeat_grace.count(), max);
}

std::vector<PoolView> PoolStore::pool_views() {
  std::map<std::string, PoolCount, std::less<>> counts;
  for (PoolCount& c : rows_->count_by_pool()) counts.emplace(c.pool, std::move(c));
  std::vector<PoolView> out;
  for (const PoolSpec& p : pools_) {
    auto it = counts.find(p.name);
    out.push_back({p.name, std::string(protocol::to_string(p.type)), p.slots, true,
                   it == counts.end() ? 0 : it->second.held});
    if (it != counts.end()) counts.erase(it);
  }
  for (auto& [name, c] : counts) out.push_back({name, std::move(c.type), 0, false, c.held});
  return out;
}

std::optional<PoolView> PoolStore::pool_view(std::string_view name) {
  for (PoolView& v : pool_views()) {
    if (v.name == name) return std::move(v);
  }
  return std::nullopt;
}

void PoolStore::for_each_holder(std::string_view pool,
                                const std::function<bool(const Holding&)>& fn) {
  rows_->walk(std::string(pool), fn);
}

std::vector<Holding> PoolStore::orphaned_holdings() {
  std::vector<Holding> out;
  rows_->walk(std::nullopt, [&](const Holding& h) {
    auto it = mirror_.find(h.pool);
    if (it == mirror_.end() || h.slot >= it->second.spec.slots) out.push_back(h);
    return true;
  });
  return out;
}

uint32_t PoolStore::used_slots(std::string_view pool) const {
  auto it = mirror_.find(pool);
  return it == mirror_.end() ? 0 : static_cast<uint32_t>(it->second.used);
}

}  // namespace rmon::pool
