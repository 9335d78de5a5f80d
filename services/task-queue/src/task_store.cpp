#include "task_store.hpp"

#include <spdlog/spdlog.h>

#include <cassert>
#include <charconv>
#include <cstdio>

namespace rmon::tq {

namespace {

// Columns read_task() expects, in order.
constexpr char kCols[] =
    "task_id, state, attempt, max_attempts, priority, payload, runner_id, pool, idempotency_key, "
    "created_at_ms, updated_at_ms, available_at_ms, last_error, result";

constexpr const char* kStateNames[] = {"queued", "leased", "completed", "dead", "cancelled"};

}  // namespace

std::string_view to_string(TaskState s) { return kStateNames[static_cast<int>(s)]; }

std::optional<TaskState> parse_task_state(std::string_view s) {
  for (int i = 0; i < kTaskStateCount; ++i) {
    if (s == kStateNames[i]) return static_cast<TaskState>(i);
  }
  return std::nullopt;
}

std::string_view error_code(TaskError e) {
  switch (e) {
    case TaskError::kNone:
      return "";
    case TaskError::kNotFound:
      return "not_found";
    case TaskError::kStaleAttempt:
      return "stale_attempt";
    case TaskError::kConflict:
      return "conflict";
    case TaskError::kUnavailable:
      return "unavailable";
  }
  return "internal";
}

TaskStore::TaskStore(store::Db& db, const Clock& clock, StoreOptions opts)
    : db_(db), clock_(clock), opts_(opts), rng_(opts.seed ? opts.seed : std::random_device{}()) {
  create_schema();
  prepare();
  reload();
}

void TaskStore::create_schema() {
  // The version is checked by store::open_service_db.
  store::Transaction txn(db_);
  store::ensure_meta(db_);
  db_.exec(R"sql(
    CREATE TABLE IF NOT EXISTS tasks(
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      task_id TEXT NOT NULL UNIQUE,
      state INTEGER NOT NULL,
      attempt INTEGER NOT NULL DEFAULT 0,
      max_attempts INTEGER NOT NULL,
      priority INTEGER NOT NULL,
      payload BLOB NOT NULL,
      runner_id TEXT,
      pool TEXT,
      idempotency_key TEXT UNIQUE,
      created_at_ms INTEGER NOT NULL,
      updated_at_ms INTEGER NOT NULL,
      available_at_ms INTEGER NOT NULL,
      leased_at_ms INTEGER,
      heartbeat_seen INTEGER NOT NULL DEFAULT 0, -- unused since reconciliation
      last_error TEXT,
      result BLOB);
    CREATE INDEX IF NOT EXISTS tasks_ready ON tasks(pool, priority DESC, seq) WHERE state = 0;
    DROP INDEX IF EXISTS tasks_unseen;
    CREATE INDEX IF NOT EXISTS tasks_ended ON tasks(updated_at_ms) WHERE state >= 2;
    CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks(state, seq);
    CREATE TABLE IF NOT EXISTS applied_events(
      event_id TEXT PRIMARY KEY, applied_at_ms INTEGER NOT NULL) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS applied_events_age ON applied_events(applied_at_ms);
    CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL)
      WITHOUT ROWID;
  )sql");
  auto tag = store::meta_text(db_, "task_id_tag");
  if (!tag) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%06llx",
                  static_cast<unsigned long long>(std::random_device{}() & 0xffffff));
    tag = buf;
    store::set_meta_text(db_, "task_id_tag", *tag);
  }
  tag_ = *tag;
  txn.commit();
}

void TaskStore::prepare() {
  const std::string cols = kCols;
  insert_ = db_.prepare(
      "INSERT INTO tasks(seq, task_id, state, attempt, max_attempts, priority, payload, pool, "
      "idempotency_key, created_at_ms, updated_at_ms, available_at_ms) "
      "VALUES(?9, ?1, 0, 0, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)");
  by_key_ = db_.prepare("SELECT task_id FROM tasks WHERE idempotency_key = ?1");
  by_id_ = db_.prepare("SELECT " + cols + " FROM tasks WHERE task_id = ?1");
  // Two index walks (this pool, then none) rather than one OR, which the
  // planner could not serve from tasks_ready in priority order.
  lease_pool_ = db_.prepare(
      "SELECT seq, priority FROM tasks WHERE state = 0 AND pool = ?1 "
      "AND available_at_ms <= ?2 ORDER BY priority DESC, seq LIMIT 1");
  lease_none_ = db_.prepare(
      "SELECT seq, priority FROM tasks WHERE state = 0 AND pool IS NULL "
      "AND available_at_ms <= ?1 ORDER BY priority DESC, seq LIMIT 1");
  set_leased_ = db_.prepare(
      "UPDATE tasks SET state = 1, attempt = attempt + 1, runner_id = ?2, leased_at_ms = ?3, "
      "heartbeat_seen = 0, updated_at_ms = ?3 WHERE seq = ?1 RETURNING " +
      cols);
  set_ended_ = db_.prepare(
      "UPDATE tasks SET state = ?2, updated_at_ms = ?3, result = coalesce(?4, result), "
      "last_error = coalesce(?5, last_error), runner_id = NULL WHERE task_id = ?1");
  set_queued_ = db_.prepare(
      "UPDATE tasks SET state = 0, runner_id = NULL, updated_at_ms = ?2, available_at_ms = ?3, "
      "last_error = ?4 WHERE task_id = ?1");
  set_cancelled_ = db_.prepare(
      "UPDATE tasks SET state = 4, runner_id = NULL, updated_at_ms = ?2 WHERE task_id = ?1");
  seen_event_ = db_.prepare("SELECT 1 FROM applied_events WHERE event_id = ?1");
  insert_event_ = db_.prepare("INSERT INTO applied_events(event_id, applied_at_ms) VALUES(?1, ?2)");
  bump_counter_ = db_.prepare(
      "INSERT INTO counters(name, value) VALUES(?1, 1) "
      "ON CONFLICT(name) DO UPDATE SET value = value + 1");
  // Walks tasks_by_state(state, seq): leased tasks in seq order.
  candidates_ = db_.prepare(
      "SELECT seq, runner_id, task_id, attempt FROM tasks WHERE state = 1 AND seq > ?1 "
      "AND leased_at_ms <= ?2 ORDER BY seq LIMIT ?3");
}

void TaskStore::reload() {
  counts_.fill(0);
  store::Stmt s = db_.prepare("SELECT state, count(*) FROM tasks GROUP BY state");
  while (s.step()) {
    const int64_t st = s.int64(0);
    if (st >= 0 && st < kTaskStateCount) counts_[st] = static_cast<uint64_t>(s.int64(1));
  }
  next_seq_ = 1;
  store::Stmt q = db_.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'tasks'");
  if (q.step()) next_seq_ = q.int64(0) + 1;
  counters_ = {};
  store::Stmt c = db_.prepare("SELECT name, value FROM counters");
  while (c.step()) {
    const std::string name = c.text(0);
    const auto v = static_cast<uint64_t>(c.int64(1));
    if (name == "reassigned") counters_.reassigned = v;
    if (name == "reconciled") counters_.reconciled = v;
    if (name == "events_applied") counters_.events_applied = v;
    if (name == "events_ignored") counters_.events_ignored = v;
  }
}

void TaskStore::set_state_count(TaskState from, TaskState to) {
  // The counts mirror the table: a task leaves a state it was counted in.
  assert(counts_[static_cast<int>(from)] > 0);
  assert(from != to);
  --counts_[static_cast<int>(from)];
  ++counts_[static_cast<int>(to)];
}

void TaskStore::bump(const char* counter, uint64_t& field) {
  bump_counter_.bind(1, counter).run();
  ++field;
}

std::string TaskStore::make_task_id(int64_t seq) const {
  return "t-" + tag_ + "-" + std::to_string(seq);
}

std::optional<int64_t> TaskStore::seq_of(const std::string& task_id) {
  const auto dash = task_id.rfind('-');
  if (dash == std::string::npos) return std::nullopt;
  int64_t seq = 0;
  const char* b = task_id.data() + dash + 1;
  const char* e = task_id.data() + task_id.size();
  auto [p, ec] = std::from_chars(b, e, seq);
  if (ec != std::errc() || p != e) return std::nullopt;
  return seq;
}

std::optional<Task> TaskStore::read_task(store::Stmt& s) {
  if (!s.step()) {
    s.reset();
    return std::nullopt;
  }
  Task t;
  t.task_id = s.text(0);
  t.state = static_cast<TaskState>(s.int64(1));
  t.attempt = static_cast<uint64_t>(s.int64(2));
  t.max_attempts = static_cast<uint64_t>(s.int64(3));
  t.priority = s.int64(4);
  t.payload = s.text(5);
  t.runner_id = s.opt_text(6);
  t.pool = s.opt_text(7);
  t.idempotency_key = s.opt_text(8);
  t.created_at_ms = s.int64(9);
  t.updated_at_ms = s.int64(10);
  t.available_at_ms = s.int64(11);
  t.last_error = s.opt_text(12);
  t.result = s.opt_text(13);
  return t;
}

SubmitResult TaskStore::submit(const SubmitRequest& r) {
  SubmitResult out;
  if (r.idempotency_key) {
    by_key_.bind(1, *r.idempotency_key);
    if (by_key_.step()) {
      out.task_id = by_key_.text(0);
      by_key_.reset();
      return out;
    }
    by_key_.reset();
  }
  const uint64_t live = counts_[0] + counts_[1];
  if (live >= opts_.max_live_tasks) {
    out.error = TaskError::kUnavailable;
    return out;
  }
  const int64_t now = clock_.wall_ms();
  // The id names the row it goes into. AUTOINCREMENT never hands out a seq
  // twice, even after the newest tasks were pruned.
  const int64_t seq = next_seq_;
  out.task_id = make_task_id(seq);
  insert_.bind(9, seq)
      .bind(1, out.task_id)
      .bind(2, r.max_attempts)
      .bind(3, r.priority)
      .bind_blob(4, r.payload)
      .bind(5, r.pool)
      .bind(6, r.idempotency_key)
      .bind(7, now)
      .bind(8, now + static_cast<int64_t>(r.delay_ms))
      .run();
  if (db_.last_insert_rowid() != seq) {
    throw std::logic_error("task seq mismatch: " + std::to_string(db_.last_insert_rowid()));
  }
  ++next_seq_;
  ++counts_[0];
  out.created = true;
  return out;
}

std::optional<Task> TaskStore::lease(const std::string& runner_id,
                                     const std::optional<std::string>& pool) {
  const int64_t now = clock_.wall_ms();
  // Best candidate: highest priority, then earliest submitted.
  std::optional<std::pair<int64_t, int64_t>> best;  // (priority, seq)
  auto consider = [&](store::Stmt& s) {
    if (s.step()) {
      const std::pair<int64_t, int64_t> cand{s.int64(1), s.int64(0)};
      if (!best || cand.first > best->first ||
          (cand.first == best->first && cand.second < best->second)) {
        best = cand;
      }
    }
    s.reset();
  };
  if (pool) {
    lease_pool_.bind(1, *pool).bind(2, now);
    consider(lease_pool_);
  }
  lease_none_.bind(1, now);
  consider(lease_none_);
  if (!best) return std::nullopt;
  set_leased_.bind(1, best->second).bind(2, runner_id).bind(3, now);
  auto t = read_task(set_leased_);
  set_leased_.reset();
  if (t) set_state_count(TaskState::kQueued, TaskState::kLeased);
  return t;
}

TaskError TaskStore::complete(const std::string& task_id, uint64_t attempt,
                              const std::optional<std::string>& result) {
  auto t = get(task_id);
  if (!t) return TaskError::kNotFound;
  if (is_ended(t->state)) return TaskError::kConflict;
  if (t->state != TaskState::kLeased || t->attempt != attempt) return TaskError::kStaleAttempt;
  set_ended_.bind(1, task_id)
      .bind(2, static_cast<int64_t>(TaskState::kCompleted))
      .bind(3, clock_.wall_ms())
      .bind_opt_blob(4, result)
      .bind_null(5)
      .run();
  set_state_count(TaskState::kLeased, TaskState::kCompleted);
  return TaskError::kNone;
}

TaskState TaskStore::requeue(const Task& t, const std::string& error) {
  assert(t.state == TaskState::kLeased);  // only a lease is lost or failed
  const int64_t now = clock_.wall_ms();
  if (t.attempt >= t.max_attempts) {
    set_ended_.bind(1, t.task_id)
        .bind(2, static_cast<int64_t>(TaskState::kDead))
        .bind(3, now)
        .bind_null(4)
        .bind(5, error)
        .run();
    set_state_count(t.state, TaskState::kDead);
    return TaskState::kDead;
  }
  const auto delay = static_cast<int64_t>(opts_.backoff.delay_ms(t.attempt, rng_));
  set_queued_.bind(1, t.task_id).bind(2, now).bind(3, now + delay).bind(4, error).run();
  set_state_count(t.state, TaskState::kQueued);
  return TaskState::kQueued;
}

TaskError TaskStore::fail(const std::string& task_id, uint64_t attempt,
                          const std::optional<std::string>& error, bool retry, TaskState& state) {
  auto t = get(task_id);
  if (!t) return TaskError::kNotFound;
  state = t->state;
  if (is_ended(t->state)) return TaskError::kConflict;
  if (t->state != TaskState::kLeased || t->attempt != attempt) return TaskError::kStaleAttempt;
  const std::string why = error.value_or("failed by its runner");
  if (!retry) {
    Task last = *t;
    last.max_attempts = last.attempt;  // no attempts left: dead
    state = requeue(last, why);
  } else {
    state = requeue(*t, why);
  }
  return TaskError::kNone;
}

TaskError TaskStore::cancel(const std::string& task_id, TaskState& state) {
  auto t = get(task_id);
  if (!t) return TaskError::kNotFound;
  state = t->state;
  if (t->state == TaskState::kCancelled) return TaskError::kNone;
  if (t->state == TaskState::kCompleted || t->state == TaskState::kDead) {
    return TaskError::kConflict;
  }
  set_cancelled_.bind(1, task_id).bind(2, clock_.wall_ms()).run();
  set_state_count(t->state, TaskState::kCancelled);
  state = TaskState::kCancelled;
  return TaskError::kNone;
}

std::optional<Task> TaskStore::get(const std::string& task_id) {
  by_id_.bind(1, task_id);
  auto t = read_task(by_id_);
  by_id_.reset();
  return t;
}

ListPage TaskStore::list(std::optional<TaskState> state, const std::optional<std::string>& pool,
                         std::size_t limit, const std::optional<std::string>& after,
                         std::size_t max_bytes) {
  ListPage page;
  int64_t after_seq = 0;
  if (after) after_seq = seq_of(*after).value_or(0);
  std::string sql = std::string("SELECT ") + kCols + " FROM tasks WHERE seq > ?1";
  if (state) sql += " AND state = ?2";
  if (pool) sql += " AND pool = ?3";
  sql += " ORDER BY seq LIMIT ?4";
  store::Stmt s = db_.prepare(sql);
  s.bind(1, after_seq);
  if (state) s.bind(2, static_cast<int64_t>(*state));
  if (pool) s.bind(3, *pool);
  s.bind(4, static_cast<int64_t>(limit + 1));
  std::size_t bytes = 0;
  while (auto t = read_task(s)) {
    const std::size_t size = t->payload.size() + (t->result ? t->result->size() : 0) + 256;
    if (page.tasks.size() == limit || (!page.tasks.empty() && bytes + size > max_bytes)) {
      page.more = true;
      break;
    }
    bytes += size;
    page.tasks.push_back(std::move(*t));
  }
  return page;
}

EventOutcome TaskStore::apply_timeout(const protocol::TimeoutEvent& ev) {
  seen_event_.bind(1, ev.event_id);
  const bool repeat = seen_event_.step();
  seen_event_.reset();
  if (repeat) {
    bump("events_ignored", counters_.events_ignored);
    return EventOutcome::kIgnoredRepeat;
  }
  insert_event_.bind(1, ev.event_id).bind(2, clock_.wall_ms()).run();
  auto t = get(ev.runner.task_id);
  if (!t) {
    bump("events_ignored", counters_.events_ignored);
    return EventOutcome::kIgnoredUnknown;
  }
  // Fenced by the whole (runner, task, attempt): an event for another
  // runner's lifecycle of this attempt number changes nothing.
  if (t->state != TaskState::kLeased || t->attempt != ev.runner.attempt ||
      t->runner_id != ev.runner.runner_id) {
    bump("events_ignored", counters_.events_ignored);
    return EventOutcome::kIgnoredStale;
  }
  const TaskState next =
      requeue(*t, "runner " + ev.runner.runner_id + " timed out (event " + ev.event_id + ")");
  bump("events_applied", counters_.events_applied);
  bump("reassigned", counters_.reassigned);
  return next == TaskState::kDead ? EventOutcome::kDead : EventOutcome::kRequeued;
}

CandidatePage TaskStore::reconcile_candidates(const ReconcileCursor& from, std::size_t max) {
  CandidatePage page;
  const int64_t cutoff = clock_.wall_ms() - static_cast<int64_t>(opts_.first_heartbeat_grace_ms);
  candidates_.bind(1, from.start ? int64_t{0} : from.num)
      .bind(2, cutoff)
      .bind(3, static_cast<int64_t>(max));
  page.next = from;
  while (candidates_.step()) {
    page.next.num = candidates_.int64(0);
    page.keys.push_back(
        {candidates_.text(1), candidates_.text(2), static_cast<uint64_t>(candidates_.int64(3))});
  }
  candidates_.reset();
  page.last = page.keys.size() < max;
  return page;
}

bool TaskStore::apply_verdict(const Judged& j) {
  if (!takes_back(j.verdict)) return false;
  auto t = get(j.key.task_id);
  // Only the very lease that was judged: it may have ended or moved on
  // while the monitors were being asked.
  if (!t || t->state != TaskState::kLeased || t->attempt != j.key.attempt ||
      t->runner_id != j.key.runner_id) {
    return false;
  }
  requeue(*t, j.why);
  bump("reassigned", counters_.reassigned);
  bump("reconciled", counters_.reconciled);
  return true;
}

uint64_t TaskStore::prune() {
  const int64_t now = clock_.wall_ms();
  uint64_t deleted = 0;
  constexpr int64_t kChunk = 5000;
  for (int round = 0; round < 20; ++round) {
    store::Transaction txn(db_);
    store::Stmt old = db_.prepare(
        "SELECT state, count(*) FROM tasks WHERE seq IN (SELECT seq FROM tasks WHERE state >= 2 "
        "AND updated_at_ms < ?1 LIMIT ?2) GROUP BY state");
    old.bind(1, now - static_cast<int64_t>(opts_.retention_ms)).bind(2, kChunk);
    std::array<uint64_t, kTaskStateCount> gone{};
    while (old.step()) gone[old.int64(0)] = static_cast<uint64_t>(old.int64(1));
    store::Stmt del = db_.prepare(
        "DELETE FROM tasks WHERE seq IN (SELECT seq FROM tasks WHERE state >= 2 AND "
        "updated_at_ms < ?1 LIMIT ?2)");
    del.bind(1, now - static_cast<int64_t>(opts_.retention_ms)).bind(2, kChunk).run();
    int n = db_.changes();
    store::Stmt ev = db_.prepare(
        "DELETE FROM applied_events WHERE event_id IN (SELECT event_id FROM applied_events "
        "WHERE applied_at_ms < ?1 LIMIT ?2)");
    ev.bind(1, now - static_cast<int64_t>(opts_.event_retention_ms)).bind(2, kChunk).run();
    n += db_.changes();
    txn.commit();
    for (int s = 0; s < kTaskStateCount; ++s) counts_[s] -= gone[s];
    deleted += static_cast<uint64_t>(n);
    if (n == 0) break;
  }
  return deleted;
}

}  // namespace rmon::tq
