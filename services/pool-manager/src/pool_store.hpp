#pragma once
// The pools' durable state: which runner holds which slot, for which task
// attempt, with the counters the `stats` op reports and the timeout events
// already applied; in SQLite (<data-dir>/pool-manager.db) or in PostgreSQL
// shared by replicas (pool_rows.hpp). Pure logic: time comes from the
// injected Clock, and there are no sockets.
//
// Mutating calls must run inside a store::Transaction on db() (the service
// batches many into one; tests open one per call). When a transaction or a
// savepoint rolls back, call resync(): the in-memory counts are reloaded
// from the database. With replicas, refresh() now and then brings in the
// others' changes.
//
// Rules (docs/PROTOCOL.md, "Pools"):
//   acquire  pool not configured                      -> kNotFound
//            a timeout event was applied for (runner, task, attempt)
//                                                     -> kStaleAttempt
//            runner holds a slot of the pool, same (task, attempt)
//                                                     -> kAlreadyHeld, same slot
//            runner holds a slot of the pool, other (task, attempt)
//                                                     -> kConflict
//            no free slot                             -> kPoolFull
//            otherwise the lowest free slot           -> kAcquired
//   release  every slot the runner holds (in `pool` when given); none is not an error
//   timeout event, event_id seen before               -> kRepeated (nothing changes)
//                  no holding for (runner, task, attempt) -> kNoHolding (id remembered)
//                  otherwise those holdings released  -> kApplied
//   verdict  ended, timed out or gone (reconciliation) for (runner, task, attempt)
//                                                     -> those holdings released
//            (alive, settling and undecided verdicts never reach the store)
// Holdings of pools no longer configured, or of slots past a pool's new size,
// are kept (shown by status, released as usual) but never handed out.
//
// Not thread-safe: one thread owns the store (the service's loop thread).

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pool_rows.hpp"
#include "pool_spec.hpp"
#include "rmon/clock.hpp"
#include "rmon/protocol/messages.hpp"
#include "rmon/service/reconciler.hpp"
#include "rmon/store/sqlite.hpp"

namespace rmon::pool {

inline constexpr int64_t kSchemaVersion = 1;

struct StoreOptions {
  store::SyncMode sync = store::SyncMode::kFull;
  Millis first_heartbeat_grace{30'000};
  Millis event_retention{24 * 3600 * 1000};  // how long applied event ids are remembered
};

enum class AcquireStatus : uint8_t {
  kAcquired,
  kAlreadyHeld,
  kNotFound,
  kStaleAttempt,
  kConflict,
  kPoolFull
};

struct AcquireResult {
  AcquireStatus status = AcquireStatus::kAcquired;
  uint32_t slot = 0;   // kAcquired, kAlreadyHeld
  std::string detail;  // errors: a sentence for the reply
};

enum class EventResult : uint8_t { kApplied, kRepeated, kNoHolding };

struct EventOutcome {
  EventResult result = EventResult::kNoHolding;
  std::vector<Holding> released;
};

// A pool as status shows it: a configured one, or one that is no longer
// configured but still has holdings (configured == false, slots 0).
struct PoolView {
  std::string name;
  std::string type;
  uint32_t slots = 0;
  bool configured = true;
  uint64_t in_use = 0;  // holders, including slots past `slots`
};

class PoolStore {
 public:
  // Opens or creates the database at `path`, checks its schema version and
  // records the configured pools. Throws (store::SqliteError,
  // std::runtime_error) with a clear message when the file is not a usable
  // database, is newer than this code, or another process holds it.
  PoolStore(const std::filesystem::path& path, std::vector<PoolSpec> pools, const Clock& clock,
            StoreOptions options = {});
  // Over `rows` (PostgreSQL, or SQLite opened by the caller).
  PoolStore(std::unique_ptr<PoolRows> rows, std::vector<PoolSpec> pools, const Clock& clock,
            StoreOptions options = {});
  ~PoolStore();

  store::Backend& db() { return rows_->backend(); }
  PoolRows& rows() { return *rows_; }
  const std::vector<PoolSpec>& pools() const { return pools_; }

  // --- mutations: inside a transaction ---
  AcquireResult acquire(std::string_view pool, std::string_view runner_id, std::string_view task_id,
                        uint64_t attempt);
  // Returns the holdings released (empty: the runner held nothing there).
  std::vector<Holding> release(std::string_view runner_id, const std::optional<std::string>& pool);
  EventOutcome apply_timeout(const protocol::TimeoutEvent& event);
  // A verdict that takes back (ended, timed out, gone). Returns the
  // holdings it released.
  std::vector<Holding> apply_verdict(const Judged& j);
  // Forgets applied event ids older than the retention; returns how many.
  std::size_t prune_events(std::size_t max = 10'000);

  // --- reads ---
  // Holdings older than the first-heartbeat grace, in (pool, slot) order
  // after `from` (text: pool, num: slot), at most `max`: reconciliation's
  // candidates.
  CandidatePage reconcile_candidates(const ReconcileCursor& from, std::size_t max);
  // Every configured pool, then unconfigured pools that still have holdings.
  std::vector<PoolView> pool_views();
  std::optional<PoolView> pool_view(std::string_view name);
  // Calls `fn` for each holder of `pool` in slot order until it returns false.
  void for_each_holder(std::string_view pool, const std::function<bool(const Holding&)>& fn);
  // Holdings in unconfigured pools or past their pool's size.
  std::vector<Holding> orphaned_holdings();

  const Counters& counters() const { return counters_; }
  uint64_t counter(Counter c) const { return counters_[static_cast<std::size_t>(c)]; }
  // Holders of `pool` within its configured slots; 0 for an unknown pool.
  uint32_t used_slots(std::string_view pool) const;
  uint64_t holdings_total() const { return holdings_total_; }

  // Reloads counters and counts from the database (after a rollback).
  void resync();
  // With replicas: resync(), to bring in the other replicas' changes.
  void refresh();

 private:
  struct Mirror {
    PoolSpec spec;
    uint64_t used = 0;  // holders within the pool's size
  };
  void bump(Counter c, uint64_t n = 1);
  void forget(const std::vector<Holding>& released);
  std::vector<Holding> release_attempt(std::string_view runner_id, std::string_view task_id,
                                       uint64_t attempt);

  const Clock& clock_;
  const StoreOptions options_;
  const std::vector<PoolSpec> pools_;
  std::unique_ptr<store::Db> sqlite_;  // the path constructor's database
  std::unique_ptr<PoolRows> rows_;
  std::map<std::string, Mirror, std::less<>> mirror_;  // configured pools
  Counters counters_{};
  uint64_t holdings_total_ = 0;
};

}  // namespace rmon::pool
