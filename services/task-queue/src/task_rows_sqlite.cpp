// TaskRows over the data folder's SQLite database (task_rows.hpp). This
// process is its only writer (store::open_service_db), so the next task
// number is kept in memory and no row needs locking.

#include <cstdio>
#include <random>
#include <stdexcept>

#include "rmon/store/sqlite.hpp"
#include "task_rows.hpp"
#include "task_store.hpp"

namespace rmon::tq {

namespace {

std::optional<Task> read_task(store::Stmt& s) {
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

class SqliteTaskRows final : public TaskRows {
 public:
  explicit SqliteTaskRows(store::Db& db) : db_(db) {
    create_schema();
    prepare();
    reload();
  }

  store::Backend& backend() override { return db_; }
  std::string describe() const override { return "sqlite " + db_.path().string(); }
  bool shared() const override { return false; }

  std::optional<std::string> find_key(const std::string& key) override {
    by_key_.bind(1, key);
    std::optional<std::string> id;
    if (by_key_.step()) id = by_key_.text(0);
    by_key_.reset();
    return id;
  }

  std::string insert(const SubmitRequest& r, int64_t now, bool& created) override {
    // The id names the row it goes into. AUTOINCREMENT never hands out a seq
    // twice, even after the newest tasks were pruned.
    const int64_t seq = next_seq_;
    std::string id = make_task_id(tag_, seq);
    insert_.bind(9, seq)
        .bind(1, id)
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
    created = true;
    return id;
  }

  std::optional<Task> get(const std::string& task_id, bool /*for_update*/) override {
    // The only writer, inside BEGIN IMMEDIATE: nothing to lock.
    by_id_.bind(1, task_id);
    auto t = read_task(by_id_);
    by_id_.reset();
    return t;
  }

  std::optional<Task> lease(const std::string& runner_id, const std::optional<std::string>& pool,
                            int64_t now) override {
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
    return t;
  }

  bool set_ended(const std::string& task_id, Fence f, TaskState to, int64_t now,
                 const std::optional<std::string>& result,
                 const std::optional<std::string>& error) override {
    set_ended_.bind(1, task_id)
        .bind(2, static_cast<int64_t>(to))
        .bind(3, now)
        .bind_opt_blob(4, result)
        .bind(5, error)
        .bind(6, static_cast<int64_t>(f.state))
        .bind(7, f.attempt)
        .run();
    return db_.changes() == 1;
  }

  bool set_queued(const std::string& task_id, Fence f, int64_t now, int64_t available_at,
                  const std::string& error) override {
    set_queued_.bind(1, task_id)
        .bind(2, now)
        .bind(3, available_at)
        .bind(4, error)
        .bind(5, static_cast<int64_t>(f.state))
        .bind(6, f.attempt)
        .run();
    return db_.changes() == 1;
  }

  bool set_cancelled(const std::string& task_id, Fence f, int64_t now) override {
    set_cancelled_.bind(1, task_id)
        .bind(2, now)
        .bind(3, static_cast<int64_t>(f.state))
        .bind(4, f.attempt)
        .run();
    return db_.changes() == 1;
  }

  bool remember_event(const std::string& event_id, int64_t now) override {
    insert_event_.bind(1, event_id).bind(2, now).run();
    return db_.changes() == 1;
  }

  void bump(const char* counter) override { bump_counter_.bind(1, counter).run(); }

  CandidatePage candidates(const ReconcileCursor& from, int64_t leased_before,
                           std::size_t max) override {
    CandidatePage page;
    candidates_.bind(1, from.start ? int64_t{0} : from.num)
        .bind(2, leased_before)
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

  std::vector<Task> list(std::optional<TaskState> state, const std::optional<std::string>& pool,
                         int64_t after_seq, std::size_t limit) override {
    std::string sql = std::string("SELECT ") + kTaskCols + " FROM tasks WHERE seq > ?1";
    if (state) sql += " AND state = ?2";
    if (pool) sql += " AND pool = ?3";
    sql += " ORDER BY seq LIMIT ?4";
    store::Stmt s = db_.prepare(sql);
    s.bind(1, after_seq);
    if (state) s.bind(2, static_cast<int64_t>(*state));
    if (pool) s.bind(3, *pool);
    s.bind(4, static_cast<int64_t>(limit));
    std::vector<Task> out;
    while (auto t = read_task(s)) out.push_back(std::move(*t));
    return out;
  }

  uint64_t prune_chunk(int64_t ended_before, int64_t events_before, int64_t chunk,
                       StateCounts& gone) override {
    store::Transaction txn(db_);
    store::Stmt old = db_.prepare(
        "SELECT state, count(*) FROM tasks WHERE seq IN (SELECT seq FROM tasks WHERE state >= 2 "
        "AND updated_at_ms < ?1 LIMIT ?2) GROUP BY state");
    old.bind(1, ended_before).bind(2, chunk);
    gone.fill(0);
    while (old.step()) gone[old.int64(0)] = static_cast<uint64_t>(old.int64(1));
    store::Stmt del = db_.prepare(
        "DELETE FROM tasks WHERE seq IN (SELECT seq FROM tasks WHERE state >= 2 AND "
        "updated_at_ms < ?1 LIMIT ?2)");
    del.bind(1, ended_before).bind(2, chunk).run();
    int n = db_.changes();
    store::Stmt ev = db_.prepare(
        "DELETE FROM applied_events WHERE event_id IN (SELECT event_id FROM applied_events "
        "WHERE applied_at_ms < ?1 LIMIT ?2)");
    ev.bind(1, events_before).bind(2, chunk).run();
    n += db_.changes();
    txn.commit();
    return static_cast<uint64_t>(n);
  }

  StateCounts count_states() override {
    StateCounts counts{};
    store::Stmt s = db_.prepare("SELECT state, count(*) FROM tasks GROUP BY state");
    while (s.step()) {
      const int64_t st = s.int64(0);
      if (st >= 0 && st < kTaskStateCount) counts[st] = static_cast<uint64_t>(s.int64(1));
    }
    return counts;
  }

  Counters read_counters() override {
    Counters out;
    store::Stmt c = db_.prepare("SELECT name, value FROM counters");
    while (c.step()) {
      set_counter(out, c.text(0), static_cast<uint64_t>(c.int64(1)));
    }
    return out;
  }

  void reload() override {
    next_seq_ = 1;
    store::Stmt q = db_.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'tasks'");
    if (q.step()) next_seq_ = q.int64(0) + 1;
  }

 private:
  void create_schema() {
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

  void prepare() {
    const std::string cols = kTaskCols;
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
        "last_error = coalesce(?5, last_error), runner_id = NULL "
        "WHERE task_id = ?1 AND state = ?6 AND attempt = ?7");
    set_queued_ = db_.prepare(
        "UPDATE tasks SET state = 0, runner_id = NULL, updated_at_ms = ?2, available_at_ms = ?3, "
        "last_error = ?4 WHERE task_id = ?1 AND state = ?5 AND attempt = ?6");
    set_cancelled_ = db_.prepare(
        "UPDATE tasks SET state = 4, runner_id = NULL, updated_at_ms = ?2 "
        "WHERE task_id = ?1 AND state = ?3 AND attempt = ?4");
    insert_event_ = db_.prepare(
        "INSERT INTO applied_events(event_id, applied_at_ms) VALUES(?1, ?2) "
        "ON CONFLICT(event_id) DO NOTHING");
    bump_counter_ = db_.prepare(
        "INSERT INTO counters(name, value) VALUES(?1, 1) "
        "ON CONFLICT(name) DO UPDATE SET value = value + 1");
    // Walks tasks_by_state(state, seq): leased tasks in seq order.
    candidates_ = db_.prepare(
        "SELECT seq, runner_id, task_id, attempt FROM tasks WHERE state = 1 AND seq > ?1 "
        "AND leased_at_ms <= ?2 ORDER BY seq LIMIT ?3");
  }

  store::Db& db_;
  std::string tag_;  // per-database part of task ids
  int64_t next_seq_ = 1;
  store::Stmt insert_, by_key_, by_id_, lease_pool_, lease_none_, set_leased_, set_ended_,
      set_queued_, set_cancelled_, insert_event_, bump_counter_, candidates_;
};

}  // namespace

std::unique_ptr<TaskRows> make_sqlite_rows(store::Db& db) {
  return std::make_unique<SqliteTaskRows>(db);
}

}  // namespace rmon::tq
