#pragma once
// Where the task-queue's rows live: the SQL of each step of the state
// machine, for one engine. TaskStore (task_store.hpp) holds the state
// machine itself, over either of:
//   SqliteTaskRows   the data folder's SQLite database, this process its
//                    only writer (the default);
//   PgTaskRows       a PostgreSQL database shared by any number of replicas:
//                    leases take rows FOR UPDATE SKIP LOCKED, the other
//                    transitions lock their row (FOR UPDATE) before the
//                    state machine reads it, and every update is fenced in
//                    SQL by the state and attempt it was decided on.
//
// Writes run inside the caller's transaction (the skeleton's batch), except
// prune_chunk(), which is its own. Throws on a storage error.

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rmon/service/reconciler.hpp"
#include "rmon/store/backend.hpp"
#include "task.hpp"

namespace rmon::store {
class Db;
class PgDb;
}  // namespace rmon::store

namespace rmon::tq {

struct SubmitRequest;

struct Counters {
  uint64_t reassigned = 0;  // by a timeout event or a reconciliation verdict
  uint64_t reconciled = 0;  // of those, by a verdict
  uint64_t events_applied = 0;
  uint64_t events_ignored = 0;
};

using StateCounts = std::array<uint64_t, kTaskStateCount>;

// Sets the counter stored under `name` (the `counters` table's rows); an
// unknown name is ignored.
inline void set_counter(Counters& c, std::string_view name, uint64_t v) {
  if (name == "reassigned") c.reassigned = v;
  if (name == "reconciled") c.reconciled = v;
  if (name == "events_applied") c.events_applied = v;
  if (name == "events_ignored") c.events_ignored = v;
}

// The row a transition was decided on: an update applies only if the row is
// still in that state and attempt.
struct Fence {
  TaskState state;
  uint64_t attempt;
};

class TaskRows {
 public:
  virtual ~TaskRows() = default;
  virtual store::Backend& backend() = 0;
  // "sqlite <path>" or "postgresql <url without password>".
  virtual std::string describe() const = 0;
  // Whether other processes write the same rows (replicas): in-memory counts
  // are then refreshed from the database now and then.
  virtual bool shared() const = 0;

  // The task with this idempotency key, if any.
  virtual std::optional<std::string> find_key(const std::string& key) = 0;
  // Inserts a queued task; returns its id. When another writer inserted the
  // same idempotency key first, returns that task's id and created = false.
  virtual std::string insert(const SubmitRequest& r, int64_t now, bool& created) = 0;
  // `for_update`: locked until the transaction ends (a transition follows).
  virtual std::optional<Task> get(const std::string& task_id, bool for_update) = 0;
  // The best available task (highest priority, then oldest) of `pool` or of
  // none (without a pool: of none only), leased to `runner_id`: state
  // leased, attempt + 1. Nothing when none is available.
  virtual std::optional<Task> lease(const std::string& runner_id,
                                    const std::optional<std::string>& pool, int64_t now) = 0;
  // Ended (completed, dead): result and last_error kept when not given.
  virtual bool set_ended(const std::string& task_id, Fence f, TaskState to, int64_t now,
                         const std::optional<std::string>& result,
                         const std::optional<std::string>& error) = 0;
  virtual bool set_queued(const std::string& task_id, Fence f, int64_t now, int64_t available_at,
                          const std::string& error) = 0;
  virtual bool set_cancelled(const std::string& task_id, Fence f, int64_t now) = 0;
  // Records an applied event id; false when it was recorded before.
  virtual bool remember_event(const std::string& event_id, int64_t now) = 0;
  virtual void bump(const char* counter) = 0;
  // Leases taken at or before `leased_before`, in seq order after `from`.
  // With replicas, only the one holding the reconciliation lock gets any.
  virtual CandidatePage candidates(const ReconcileCursor& from, int64_t leased_before,
                                   std::size_t max) = 0;
  // Tasks after seq `after_seq` in seq order, at most `limit`.
  virtual std::vector<Task> list(std::optional<TaskState> state,
                                 const std::optional<std::string>& pool, int64_t after_seq,
                                 std::size_t limit) = 0;
  // In its own transaction: deletes up to `chunk` ended tasks updated
  // before `ended_before` and up to `chunk` event ids applied before
  // `events_before`. Returns the tasks deleted per state, and the rows.
  virtual uint64_t prune_chunk(int64_t ended_before, int64_t events_before, int64_t chunk,
                               StateCounts& gone) = 0;
  virtual StateCounts count_states() = 0;
  virtual Counters read_counters() = 0;
  // After a rollback: re-reads what the rows object keeps in memory.
  virtual void reload() {}
};

// Columns read_task() expects, in order.
inline constexpr char kTaskCols[] =
    "task_id, state, attempt, max_attempts, priority, payload, runner_id, pool, idempotency_key, "
    "created_at_ms, updated_at_ms, available_at_ms, last_error, result";

std::unique_ptr<TaskRows> make_sqlite_rows(store::Db& db);
std::unique_ptr<TaskRows> make_postgres_rows(store::PgDb& db);

// A task id: "t-<tag>-<seq>", the tag per database.
std::string make_task_id(const std::string& tag, int64_t seq);
std::optional<int64_t> task_seq_of(const std::string& task_id);

}  // namespace rmon::tq
