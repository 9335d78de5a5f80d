#pragma once
// Internal to the runner table: one shard's state, the state machine that
// works on it under its lock (shard.cpp), and the small helpers the table's
// source files share. Everything in a Shard except its atomics and `table`
// is guarded by its mutex, which clang's -Wthread-safety checks.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "annotated_mutex.hpp"
#include "deadline_index.hpp"
#include "pool_names.hpp"
#include "runner.hpp"
#include "runner_set.hpp"
#include "runner_table.hpp"

namespace rmon::monitor::table_detail {

inline constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
inline constexpr int64_t kNsPerMs = 1'000'000;
inline constexpr int64_t kCheckGridNs = RunnerTable::kCheckGrid.count() * kNsPerMs;

inline int64_t to_ns(MonoTime t) { return t.time_since_epoch().count(); }
inline MonoTime from_ns(int64_t ns) { return MonoTime(std::chrono::nanoseconds(ns)); }
inline std::size_t state_index(RunnerState s) { return static_cast<std::size_t>(s); }
inline bool live(RunnerState s) { return s == RunnerState::kRunning || s == RunnerState::kSuspect; }

// Spreads std::hash so shard choice does not correlate with the set's buckets.
inline uint64_t mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

// Adds one to a counter that has a single writer at a time (the holder of
// its shard's lock) and lock-free readers: a plain load and store, without
// the locked read-modify-write of fetch_add, which costs as much again per
// heartbeat as everything else the counter update does.
inline void bump(std::atomic<uint64_t>& counter) {
  counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

// A state change made under a shard's lock, reported to the observer once
// the lock is released (no I/O under a lock).
struct StateChange {
  RunnerState from = RunnerState::kRunning;
  RunnerState to = RunnerState::kRunning;
  bool changed = false;
};

// The same, for changes whose runner may be gone by then (the sweep): the
// ids are copied. Only collected when the table has an observer.
struct LifecycleNote {
  std::string runner_id;
  std::string task_id;
  uint64_t attempt = 0;
  StateChange change;  // unchanged: the runner was removed
  bool expired = false;
};

// Reports `notes` to `observer`; called with no lock held.
inline void deliver(TableObserver& observer, const std::vector<LifecycleNote>& notes) {
  for (const LifecycleNote& n : notes) {
    if (n.change.changed) {
      observer.on_state_changed(n.runner_id, n.task_id, n.attempt, n.change.from, n.change.to);
    } else {
      observer.on_removed(n.runner_id, n.expired);
    }
  }
}

}  // namespace rmon::monitor::table_detail

namespace rmon::monitor {

using namespace table_detail;  // NOLINT(google-build-using-namespace)

struct alignas(64) RunnerTable::Shard {
  RunnerTable* table = nullptr;  // constant once the table is built
  mutable Mutex mu;
  RunnerSet runners ABSL_GUARDED_BY(mu);
  DeadlineIndex index ABSL_GUARDED_BY(mu);
  PoolNames pools ABSL_GUARDED_BY(mu);
  // Per-heartbeat counters: written under mu (with bump), read without it.
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> duplicates{0};
  std::atomic<uint64_t> late{0};
  std::atomic<uint64_t> stale_attempts{0};
  // The index's earliest due time, published after every change so the sweep
  // can skip idle shards without taking their lock.
  std::atomic<int64_t> top_due_ns{kNever};

  // The state machine (shard.cpp). Runner pointers come from `runners`;
  // start_lifecycle and refresh may move the runner (a longer task id) and
  // return where it is now.
  Applied apply(const HashedId& key, const Heartbeat& hb, int64_t now_ns, int64_t wall_ms,
                StateChange& change) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  ControlError add(const HashedId& key, const Heartbeat& spec, int64_t now_ns, int64_t wall_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  Runner* start_lifecycle(Runner* r, const Heartbeat& hb, int64_t now_ns, int64_t wall_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Copies what the heartbeat says about the runner; timing is the caller's.
  Runner* refresh(Runner* r, const Heartbeat& hb, int64_t now_ns, int64_t wall_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // kLate or kStaleAttempt when `info` names a lifecycle `r` has fenced (see
  // Fence). Not a pure check: the matching fences are renewed for another
  // retention, since the runner still talks about them.
  std::optional<Applied> check_fences(Runner& r, const protocol::RunnerInfo& info, int64_t now_ns)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Returns the state before; re-arms unless entering SUSPECT.
  RunnerState set_state(Runner& r, RunnerState to, int64_t now_ns)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void arm_for_state(Runner& r, int64_t now_ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Publishes the index's earliest due time (and wakes the dispatcher when it
  // is earlier than planned).
  void publish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // `r`'s due time has come. Changes are noted in `notes` when given.
  // With `hold_timeouts` (the storm brake) a runner past its deadline is not
  // convicted but counted in `held` and looked at again a check later.
  void on_due(Runner& r, int64_t now_ns, int64_t wall_ms, std::vector<Expired>& out,
              std::vector<LifecycleNote>* notes, bool hold_timeouts, std::size_t& held)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void erase(Runner* r, bool expired) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  protocol::RunnerInfo info_of(const Runner& r) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void save(const Runner& r, SavedRunner& out) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  RunnerView view(const Runner& r, int64_t now_ns) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
};

}  // namespace rmon::monitor
