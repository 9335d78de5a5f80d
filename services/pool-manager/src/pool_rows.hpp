#pragma once
// Where the pool-manager's rows live: the SQL of each step, for one engine.
// PoolStore (pool_store.hpp) holds the rules, over either of:
//   SqlitePoolRows   the data folder's SQLite database, this process its
//                    only writer (the default): the lowest free slot of each
//                    pool comes from an in-memory bitmap of the held slots;
//   PgPoolRows       a PostgreSQL database shared by any number of
//                    replicas: the lowest free slot is found in SQL and
//                    inserted ON CONFLICT DO NOTHING (a slot or a runner
//                    another replica took first is tried again), applied
//                    event ids are a primary key, and reconciliation runs on
//                    the one replica holding an advisory lock.
//
// Writes run inside the caller's transaction (the skeleton's batch).
// Throws on a storage error.

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pool_spec.hpp"
#include "rmon/protocol/messages.hpp"
#include "rmon/service/reconciler.hpp"
#include "rmon/store/backend.hpp"

namespace rmon::store {
class Db;
class PgDb;
}  // namespace rmon::store

namespace rmon::pool {

struct Holding {
  std::string pool;
  uint32_t slot = 0;
  std::string runner_id;
  std::string task_id;
  uint64_t attempt = 0;
  int64_t since_ms = 0;  // wall clock at acquire
  bool heartbeat_seen = false;

  bool operator==(const Holding&) const = default;
};

// Persisted with the changes they count, so they survive restarts.
enum class Counter : uint8_t {
  kAcquired,           // slots handed out (an idempotent repeat is not counted)
  kReleased,           // slots freed by a release request
  kReleasedByTimeout,  // slots freed by a timeout event or a reconciliation verdict
  kReconciled,         // of those, by a reconciliation verdict
  kEventsApplied,      // timeout events that released a slot
  kEventsIgnored,      // repeated events, or events for no holding
};
inline constexpr std::size_t kCounterCount = 6;
std::string_view counter_name(Counter c);
using Counters = std::array<uint64_t, kCounterCount>;
// Sets the counter stored under `name`; an unknown name is ignored.
void set_counter(Counters& c, std::string_view name, uint64_t value);

// What a runner holds in a pool.
struct HeldSlot {
  uint32_t slot = 0;
  std::string task_id;
  uint64_t attempt = 0;
};

// take_slot's outcome.
struct Taken {
  enum What : uint8_t {
    kTaken,        // `slot` is the runner's now
    kFull,         // no free slot below the pool's size
    kRunnerHolds,  // another replica gave this runner a slot of the pool first
  } what = kFull;
  uint32_t slot = 0;
};

// Holdings per pool, with the type recorded for the pool ("" if none).
struct PoolCount {
  std::string pool;
  std::string type;
  uint64_t held = 0;
};

class PoolRows {
 public:
  virtual ~PoolRows() = default;
  virtual store::Backend& backend() = 0;
  // "sqlite <path>" or "postgresql <url without password>".
  virtual std::string describe() const = 0;
  // Whether other processes write the same rows (replicas): in-memory counts
  // are then refreshed from the database now and then.
  virtual bool shared() const = 0;

  // In its own transaction: records the configured pools (their type is
  // remembered for status once they are no longer configured).
  virtual void record_pools(const std::vector<PoolSpec>& pools) = 0;

  virtual std::optional<HeldSlot> holding(std::string_view pool, std::string_view runner_id) = 0;
  // Whether a timeout event was applied for this (runner, task, attempt).
  virtual bool attempt_timed_out(std::string_view runner_id, std::string_view task_id,
                                 uint64_t attempt) = 0;
  // Gives the runner the lowest free slot below pool.slots.
  virtual Taken take_slot(const PoolSpec& pool, std::string_view runner_id,
                          std::string_view task_id, uint64_t attempt, int64_t now_ms) = 0;
  // Deletes the runner's holdings (of `pool` only, when given); returns them.
  virtual std::vector<Holding> delete_runner(std::string_view runner_id,
                                             const std::optional<std::string>& pool) = 0;
  virtual std::vector<Holding> delete_attempt(std::string_view runner_id, std::string_view task_id,
                                              uint64_t attempt) = 0;
  // Records an applied event id; false when it was recorded before.
  virtual bool remember_event(const protocol::TimeoutEvent& event, int64_t now_ms) = 0;
  // Forgets up to `max` event ids applied before `before_ms`; returns how many.
  virtual std::size_t prune_events(int64_t before_ms, std::size_t max) = 0;
  virtual void bump(Counter c, uint64_t n) = 0;
  virtual Counters read_counters() = 0;

  // Holdings acquired at or before `since_before_ms`, in (pool, slot) order
  // after `from`. With replicas, only the one holding the reconciliation
  // lock gets any.
  virtual CandidatePage candidates(const ReconcileCursor& from, int64_t since_before_ms,
                                   std::size_t max) = 0;
  // Pools that have holdings, in name order.
  virtual std::vector<PoolCount> count_by_pool() = 0;
  // Holdings (of `pool` only, when given) in (pool, slot) order, until `fn`
  // returns false.
  virtual void walk(const std::optional<std::string>& pool,
                    const std::function<bool(const Holding&)>& fn) = 0;
  // After a rollback: re-reads what the rows object keeps in memory.
  virtual void reload() {}
};

// `pools`: the configured pools, whose free slots SQLite tracks in memory.
std::unique_ptr<PoolRows> make_sqlite_rows(store::Db& db, const std::vector<PoolSpec>& pools);
std::unique_ptr<PoolRows> make_postgres_rows(store::PgDb& db);

}  // namespace rmon::pool
