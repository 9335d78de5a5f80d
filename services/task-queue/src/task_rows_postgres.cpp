// TaskRows over a PostgreSQL database shared by task-queue replicas
// (task_rows.hpp). Every replica runs the same statements; correctness
// between them rests on PostgreSQL's row locks, never on memory:
// - lease: the best queued row is taken FOR UPDATE SKIP LOCKED, so two
//   replicas leasing at once take different tasks and neither waits;
// - every other transition reads its row FOR UPDATE, and its UPDATE is
//   fenced by the (state, attempt) it was decided on;
// - task numbers come from a sequence, applied event ids are a primary key
//   (ON CONFLICT DO NOTHING), idempotency keys a unique index;
// - reconciliation runs on one replica at a time: the one holding a
//   session advisory lock, released when its connection ends.

#include <cstdio>
#include <random>

#include "rmon/store/postgres.hpp"
#include "task_rows.hpp"
#include "task_store.hpp"

namespace rmon::tq {

namespace {

using store::PgDb;

// Schema versions, applied once by store::pg_migrate. Only append.
const std::vector<std::string> kMigrations = {
    R"sql(
    CREATE SEQUENCE task_seq;
    CREATE TABLE tasks(
      seq BIGINT PRIMARY KEY,
      task_id TEXT NOT NULL UNIQUE,
      state SMALLINT NOT NULL,
      attempt BIGINT NOT NULL DEFAULT 0,
      max_attempts BIGINT NOT NULL,
      priority BIGINT NOT NULL,
      payload BYTEA NOT NULL,
      runner_id TEXT,
      pool TEXT,
      idempotency_key TEXT UNIQUE,
      created_at_ms BIGINT NOT NULL,
      updated_at_ms BIGINT NOT NULL,
      available_at_ms BIGINT NOT NULL,
      leased_at_ms BIGINT,
      last_error TEXT,
      result BYTEA);
    -- Queued rows only: lease walks it in priority order, per pool.
    CREATE INDEX tasks_ready ON tasks(pool, priority DESC, seq) WHERE state = 0;
    CREATE INDEX tasks_ended ON tasks(updated_at_ms) WHERE state >= 2;
    CREATE INDEX tasks_leased ON tasks(seq) WHERE state = 1;
    CREATE INDEX tasks_by_state ON tasks(state, seq);
    CREATE TABLE applied_events(event_id TEXT PRIMARY KEY, applied_at_ms BIGINT NOT NULL);
    CREATE INDEX applied_events_age ON applied_events(applied_at_ms);
    -- One row per counter and replica (owner): replicas never wait for each
    -- other's counter rows; read as sums.
    CREATE TABLE counters(name TEXT NOT NULL, owner TEXT NOT NULL, value BIGINT NOT NULL,
                          PRIMARY KEY(name, owner));
    CREATE TABLE task_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
    )sql",
};

// The reconciliation lock's key (pg_try_advisory_lock).
constexpr int64_t kReconcileLock = 0x726d6f6e'7471'0001;  // "rmon" tq 1

Task read_task(const pqxx::row& r) {
  Task t;
  t.task_id = r[0].c_str();
  t.state = static_cast<TaskState>(r[1].as<int>());
  t.attempt = r[2].as<uint64_t>();
  t.max_attempts = r[3].as<uint64_t>();
  t.priority = r[4].as<int64_t>();
  t.payload = PgDb::read_bytes(r[5]);
  t.runner_id = PgDb::read_opt_text(r[6]);
  t.pool = PgDb::read_opt_text(r[7]);
  t.idempotency_key = PgDb::read_opt_text(r[8]);
  t.created_at_ms = r[9].as<int64_t>();
  t.updated_at_ms = r[10].as<int64_t>();
  t.available_at_ms = r[11].as<int64_t>();
  t.last_error = PgDb::read_opt_text(r[12]);
  t.result = PgDb::read_opt_bytes(r[13]);
  return t;
}

class PgTaskRows final : public TaskRows {
 public:
  explicit PgTaskRows(PgDb& db) : db_(db), owner_(store::pg_owner_id()) {
    store::pg_migrate(db_, "task-queue", kMigrations);
    read_tag();
    prepare();
  }

  store::Backend& backend() override { return db_; }
  std::string describe() const override { return "postgresql " + store::redact_url(db_.url()); }
  bool shared() const override { return true; }

  std::optional<std::string> find_key(const std::string& key) override {
    const pqxx::result r = db_.run("tq_by_key", key);
    if (r.empty()) return std::nullopt;
    return std::string(r[0][0].c_str());
  }

  std::string insert(const SubmitRequest& r, int64_t now, bool& created) override {
    const pqxx::result res =
        db_.run("tq_insert", prefix_, r.max_attempts, r.priority, PgDb::bytes(r.payload),
                PgDb::text_or_null(r.pool), PgDb::text_or_null(r.idempotency_key), now,
                now + static_cast<int64_t>(r.delay_ms));
    if (!res.empty()) {
      created = true;
      return res[0][0].c_str();
    }
    // Another replica inserted this idempotency key first (ON CONFLICT).
    created = false;
    auto id = r.idempotency_key ? find_key(*r.idempotency_key) : std::nullopt;
    if (!id) throw std::runtime_error("task insert neither inserted nor found its key");
    return *id;
  }

  std::optional<Task> get(const std::string& task_id, bool for_update) override {
    const pqxx::result r = db_.run(for_update ? "tq_by_id_locked" : "tq_by_id", task_id);
    if (r.empty()) return std::nullopt;
    return read_task(r[0]);
  }

  std::optional<Task> lease(const std::string& runner_id, const std::optional<std::string>& pool,
                            int64_t now) override {
    // One statement: the best row of each walk of tasks_ready (this pool,
    // and none), each taken FOR UPDATE SKIP LOCKED, and the better one
    // leased. With a pool, the other stays queued and locked until this
    // batch commits: other replicas skip it meanwhile.
    const pqxx::result r = pool ? db_.run("tq_lease_pool", runner_id, now, *pool)
                                : db_.run("tq_lease_none", runner_id, now);
    if (r.empty()) return std::nullopt;
    return read_task(r[0]);
  }

  bool set_ended(const std::string& task_id, Fence f, TaskState to, int64_t now,
                 const std::optional<std::string>& result,
                 const std::optional<std::string>& error) override {
    const pqxx::result r = db_.run("tq_set_ended", task_id, static_cast<int>(to), now,
                                   result.has_value(), PgDb::bytes(result.value_or(std::string())),
                                   PgDb::text_or_null(error), static_cast<int>(f.state), f.attempt);
    return r.affected_rows() == 1;
  }

  bool set_queued(const std::string& task_id, Fence f, int64_t now, int64_t available_at,
                  const std::string& error) override {
    const pqxx::result r = db_.run("tq_set_queued", task_id, now, available_at, error,
                                   static_cast<int>(f.state), f.attempt);
    return r.affected_rows() == 1;
  }

  bool set_cancelled(const std::string& task_id, Fence f, int64_t now) override {
    const pqxx::result r =
        db_.run("tq_set_cancelled", task_id, now, static_cast<int>(f.state), f.attempt);
    return r.affected_rows() == 1;
  }

  bool remember_event(const std::string& event_id, int64_t now) override {
    return db_.run("tq_insert_event", event_id, now).affected_rows() == 1;
  }

  void bump(const char* counter) override { db_.run("tq_bump", counter, owner_); }

  CandidatePage candidates(const ReconcileCursor& from, int64_t leased_before,
                           std::size_t max) override {
    CandidatePage page;
    page.next = from;
    page.last = true;
    // One reconciler among the replicas: the holder of a session lock. It is
    // held for the connection's life; a replica that dies releases it.
    if (!reconciler_.try_hold(db_)) return page;
    const pqxx::result r = db_.run("tq_candidates", from.start ? int64_t{0} : from.num,
                                   leased_before, static_cast<int64_t>(max));
    for (const auto& row : r) {
      page.next.num = row[0].as<int64_t>();
      page.keys.push_back({row[1].c_str(), row[2].c_str(), row[3].as<uint64_t>()});
    }
    page.last = page.keys.size() < max;
    return page;
  }

  std::vector<Task> list(std::optional<TaskState> state, const std::optional<std::string>& pool,
                         int64_t after_seq, std::size_t limit) override {
    const auto lim = static_cast<int64_t>(limit);
    const std::string head = std::string("SELECT ") + kTaskCols + " FROM tasks WHERE seq > $1";
    pqxx::result r;
    if (state && pool) {
      r = db_.exec(head + " AND state = $2 AND pool = $3 ORDER BY seq LIMIT $4", after_seq,
                   static_cast<int>(*state), *pool, lim);
    } else if (state) {
      r = db_.exec(head + " AND state = $2 ORDER BY seq LIMIT $3", after_seq,
                   static_cast<int>(*state), lim);
    } else if (pool) {
      r = db_.exec(head + " AND pool = $2 ORDER BY seq LIMIT $3", after_seq, *pool, lim);
    } else {
      r = db_.exec(head + " ORDER BY seq LIMIT $2", after_seq, lim);
    }
    std::vector<Task> out;
    out.reserve(r.size());
    for (const auto& row : r) out.push_back(read_task(row));
    return out;
  }

  uint64_t prune_chunk(int64_t ended_before, int64_t events_before, int64_t chunk,
                       StateCounts& gone) override {
    gone.fill(0);
    store::Transaction txn(db_);
    // SKIP LOCKED: rows another replica's batch holds wait for a later chunk.
    const pqxx::result r = db_.exec(
        "WITH gone AS (DELETE FROM tasks WHERE seq IN (SELECT seq FROM tasks WHERE state >= 2 "
        "AND updated_at_ms < $1 LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING state) "
        "SELECT state, count(*) FROM gone GROUP BY state",
        ended_before, chunk);
    uint64_t n = 0;
    for (const auto& row : r) {
      const int st = row[0].as<int>();
      const auto c = row[1].as<uint64_t>();
      if (st >= 0 && st < kTaskStateCount) gone[st] = c;
      n += c;
    }
    const pqxx::result ev = db_.exec(
        "DELETE FROM applied_events WHERE event_id IN (SELECT event_id FROM applied_events "
        "WHERE applied_at_ms < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
        events_before, chunk);
    n += static_cast<uint64_t>(ev.affected_rows());
    txn.commit();
    return n;
  }

  StateCounts count_states() override {
    StateCounts counts{};
    const pqxx::result r = db_.exec("SELECT state, count(*) FROM tasks GROUP BY state");
    for (const auto& row : r) {
      const int st = row[0].as<int>();
      if (st >= 0 && st < kTaskStateCount) counts[st] = row[1].as<uint64_t>();
    }
    return counts;
  }

  Counters read_counters() override {
    Counters out;
    const pqxx::result r = db_.exec("SELECT name, sum(value)::bigint FROM counters GROUP BY name");
    for (const auto& row : r) {
      set_counter(out, row[0].c_str(), row[1].as<uint64_t>());
    }
    return out;
  }

 private:
  void read_tag() {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%06llx",
                  static_cast<unsigned long long>(std::random_device{}() & 0xffffff));
    // The first replica's tag wins; the others read it.
    db_.exec(
        "INSERT INTO task_meta(key, value) VALUES('task_id_tag', $1) ON CONFLICT (key) DO "
        "NOTHING",
        std::string(buf));
    const pqxx::result r = db_.exec("SELECT value FROM task_meta WHERE key = 'task_id_tag'");
    prefix_ = make_task_id(r[0][0].c_str(), 0);
    prefix_.pop_back();  // "t-<tag>-"
  }

  void prepare() {
    const std::string cols = kTaskCols;
    db_.prepare("tq_insert",
                "INSERT INTO tasks(seq, task_id, state, attempt, max_attempts, priority, payload, "
                "pool, idempotency_key, created_at_ms, updated_at_ms, available_at_ms) "
                "SELECT s, $1::text || s, 0, 0, $2, $3, $4, $5, $6, $7, $7, $8 "
                "FROM nextval('task_seq') AS s ON CONFLICT (idempotency_key) DO NOTHING "
                "RETURNING task_id");
    db_.prepare("tq_by_key", "SELECT task_id FROM tasks WHERE idempotency_key = $1");
    db_.prepare("tq_by_id", "SELECT " + cols + " FROM tasks WHERE task_id = $1");
    db_.prepare("tq_by_id_locked", "SELECT " + cols + " FROM tasks WHERE task_id = $1 FOR UPDATE");
    const std::string none_walk =
        "SELECT seq, priority FROM tasks WHERE state = 0 AND pool IS NULL AND "
        "available_at_ms <= $2 ORDER BY priority DESC, seq LIMIT 1 FOR UPDATE SKIP LOCKED";
    const std::string set_leased =
        "UPDATE tasks SET state = 1, attempt = attempt + 1, runner_id = $1, leased_at_ms = $2, "
        "updated_at_ms = $2 FROM best WHERE tasks.seq = best.seq AND tasks.state = 0 RETURNING ";
    std::string tcols;  // kTaskCols, each column qualified by the table
    for (std::string_view rest = kTaskCols; !rest.empty();) {
      const auto comma = rest.find(", ");
      tcols += "tasks.";
      tcols += rest.substr(0, comma);
      if (comma == std::string_view::npos) break;
      tcols += ", ";
      rest.remove_prefix(comma + 2);
    }
    db_.prepare("tq_lease_none", "WITH best AS (" + none_walk + ") " + set_leased + tcols);
    db_.prepare("tq_lease_pool",
                "WITH mine AS (SELECT seq, priority FROM tasks WHERE state = 0 AND pool = $3 AND "
                "available_at_ms <= $2 ORDER BY priority DESC, seq LIMIT 1 FOR UPDATE SKIP "
                "LOCKED), none AS (" +
                    none_walk +
                    "), best AS (SELECT seq FROM (SELECT * FROM mine UNION ALL SELECT * FROM "
                    "none) c ORDER BY priority DESC, seq LIMIT 1) " +
                    set_leased + tcols);
    db_.prepare("tq_set_ended",
                "UPDATE tasks SET state = $2, updated_at_ms = $3, "
                "result = CASE WHEN $4 THEN $5 ELSE result END, "
                "last_error = coalesce($6, last_error), runner_id = NULL "
                "WHERE task_id = $1 AND state = $7 AND attempt = $8");
    db_.prepare("tq_set_queued",
                "UPDATE tasks SET state = 0, runner_id = NULL, updated_at_ms = $2, "
                "available_at_ms = $3, last_error = $4 "
                "WHERE task_id = $1 AND state = $5 AND attempt = $6");
    db_.prepare("tq_set_cancelled",
                "UPDATE tasks SET state = 4, runner_id = NULL, updated_at_ms = $2 "
                "WHERE task_id = $1 AND state = $3 AND attempt = $4");
    db_.prepare("tq_insert_event",
                "INSERT INTO applied_events(event_id, applied_at_ms) VALUES($1, $2) "
                "ON CONFLICT (event_id) DO NOTHING");
    db_.prepare("tq_bump",
                "INSERT INTO counters(name, owner, value) VALUES($1, $2, 1) "
                "ON CONFLICT (name, owner) DO UPDATE SET value = counters.value + 1");
    db_.prepare("tq_candidates",
                "SELECT seq, runner_id, task_id, attempt FROM tasks WHERE state = 1 AND seq > $1 "
                "AND leased_at_ms <= $2 ORDER BY seq LIMIT $3");
  }

  PgDb& db_;
  std::string prefix_;  // "t-<tag>-"
  std::string owner_;   // this replica's counter rows (one set per start)
  store::PgSingleton reconciler_{kReconcileLock};
};

}  // namespace

std::unique_ptr<TaskRows> make_postgres_rows(store::PgDb& db) {
  return std::make_unique<PgTaskRows>(db);
}

}  // namespace rmon::tq
