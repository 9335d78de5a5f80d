#pragma once
// The task-queue's state machine over its rows (task_rows.hpp: SQLite in the
// data folder, or PostgreSQL shared by replicas): submit, lease, complete,
// fail, cancel, queries, timeout events and reconciliation verdicts. Every
// mutation writes through to the database inside the caller's transaction
// (the service wraps each batch in one; see TaskApi); the store never
// commits by itself, except in prune().
//
// Transitions (one test each in tests/task/task_store_test.cpp):
// clang-format off
//   state         | input                                      | next                 | effect
//   --------------+--------------------------------------------+----------------------+------------------------
//   queued        | lease (available, pool fits)               | leased               | attempt+1, runner_id, leased_at
//   queued        | cancel                                     | cancelled            |
//   queued        | complete / fail                            | queued               | stale_attempt
//   leased        | complete (current attempt)                 | completed            | result kept
//   leased        | fail, retry, attempts left                 | queued after backoff | last_error
//   leased        | fail, no retry or none left                | dead                 | last_error
//   leased        | timeout event (runner, task, attempt)      | queued after backoff | reassigned+1, last_error;
//                 |                                            |   or dead            |   dead past max_attempts
//   leased        | verdict ended / timed out / gone           | queued after backoff | reassigned+1, reconciled+1,
//                 |   (runner, task, attempt)                  |   or dead            |   last_error says why
//   leased        | cancel                                     | cancelled            |
//   leased        | complete / fail, other attempt             | leased               | stale_attempt
//   ended         | complete / fail                            | ended                | conflict
//   cancelled     | cancel                                     | cancelled            | ok again
//   completed/dead| cancel                                     | unchanged            | conflict
//   any           | timeout event, not the current lease       | unchanged            | events_ignored+1
//                 |   (other runner, attempt, or not leased)   |                      |
//   any           | timeout event, event_id seen before        | unchanged            | events_ignored+1
//   any           | verdict, not the current lease             | unchanged            |
// clang-format on
//
// Time is wall-clock milliseconds from the injected Clock (it must survive
// restarts). Not thread-safe: owned by the service's loop thread.

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "backoff.hpp"
#include "rmon/clock.hpp"
#include "rmon/protocol/messages.hpp"
#include "rmon/service/reconciler.hpp"
#include "rmon/store/sqlite.hpp"
#include "task.hpp"
#include "task_rows.hpp"

namespace rmon::tq {

// The database's schema version (store::open_service_db).
inline constexpr int64_t kSchemaVersion = 1;

struct StoreOptions {
  BackoffPolicy backoff;
  uint64_t first_heartbeat_grace_ms = 30'000;
  uint64_t max_live_tasks = 1'000'000;        // queued + leased; submit beyond: unavailable
  uint64_t retention_ms = 7ull * 86'400'000;  // ended tasks are deleted after this
  uint64_t event_retention_ms = 86'400'000;   // applied event ids are remembered this long
  uint64_t seed = 0;                          // backoff jitter; 0 picks a random seed
};

enum class TaskError : uint8_t { kNone, kNotFound, kStaleAttempt, kConflict, kUnavailable };
std::string_view error_code(TaskError e);

struct SubmitRequest {
  std::string payload;  // encoded MessagePack
  int64_t priority = 0;
  uint64_t max_attempts = 5;
  std::optional<std::string> pool;
  std::optional<std::string> idempotency_key;
  uint64_t delay_ms = 0;
};

struct SubmitResult {
  TaskError error = TaskError::kNone;
  std::string task_id;
  bool created = false;
};

struct ListPage {
  std::vector<Task> tasks;
  bool more = false;
};

enum class EventOutcome : uint8_t {
  kRequeued,
  kDead,
  kIgnoredRepeat,
  kIgnoredStale,
  kIgnoredUnknown
};

class TaskStore {
 public:
  // Over the data folder's SQLite database: creates or upgrades the schema.
  // Throws store::SqliteError.
  TaskStore(store::Db& db, const Clock& clock, StoreOptions opts);
  // Over any rows (PostgreSQL: make_postgres_rows).
  TaskStore(std::unique_ptr<TaskRows> rows, const Clock& clock, StoreOptions opts);

  store::Backend& backend() { return rows_->backend(); }
  const TaskRows& rows() const { return *rows_; }

  SubmitResult submit(const SubmitRequest& r);
  // The next available task for `pool` (tasks of that pool or of none;
  // without a pool, only tasks of none), now leased to `runner_id`.
  std::optional<Task> lease(const std::string& runner_id, const std::optional<std::string>& pool);
  TaskError complete(const std::string& task_id, uint64_t attempt,
                     const std::optional<std::string>& result);
  // `state` is the task's state afterwards (queued or dead).
  TaskError fail(const std::string& task_id, uint64_t attempt,
                 const std::optional<std::string>& error, bool retry, TaskState& state);
  TaskError cancel(const std::string& task_id, TaskState& state);
  std::optional<Task> get(const std::string& task_id);
  // In submission order, after `after` (a task id); at most `limit` tasks and
  // about `max_bytes` of payloads and results.
  ListPage list(std::optional<TaskState> state, const std::optional<std::string>& pool,
                std::size_t limit, const std::optional<std::string>& after, std::size_t max_bytes);

  EventOutcome apply_timeout(const protocol::TimeoutEvent& ev);

  // Leases older than the first-heartbeat grace, in task order after
  // `from` (its num is a task's seq), at most `max`: reconciliation's
  // candidates.
  CandidatePage reconcile_candidates(const ReconcileCursor& from, std::size_t max);
  // A verdict that takes back: requeues the task (or makes it dead) with the
  // verdict's reason as last_error, when (runner, task, attempt) is still its
  // current lease. True when it did.
  bool apply_verdict(const Judged& j);

  // Deletes ended tasks past retention and old applied event ids, in
  // bounded chunks, each its own transaction. Returns rows deleted.
  uint64_t prune();

  // Tasks per state (kept in memory, rebuilt by reload()), and counters.
  // With replicas (a shared store) they are this replica's view: its own
  // changes at once, the others' at each refresh().
  const StateCounts& counts() const { return counts_; }
  const Counters& counters() const { return counters_; }
  // Re-reads counts and counters from the database: after a rolled-back
  // batch, the in-memory ones may include effects that were not committed.
  void reload();
  // With a shared store, re-reads counts and counters (the service does it
  // at its maintenance tick); nothing otherwise.
  void refresh();

 private:
  void set_state_count(TaskState from, TaskState to);
  void bump(const char* counter, uint64_t& field);
  // A lost or failed attempt: queued after backoff, or dead past max_attempts.
  TaskState requeue(const Task& t, const std::string& error);
  // An update that found its row changed: the row lock makes it impossible.
  static void fenced(bool applied, const Task& t);

  std::unique_ptr<TaskRows> rows_;
  const Clock& clock_;
  const StoreOptions opts_;
  std::mt19937_64 rng_;
  StateCounts counts_{};
  Counters counters_;
};

}  // namespace rmon::tq
