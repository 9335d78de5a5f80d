// PoolRows over a PostgreSQL database shared by pool-manager replicas
// (pool_rows.hpp). Correctness between replicas rests on PostgreSQL's
// constraints, never on memory:
// - a holding's primary key is (pool, slot), and (pool, runner_id) is
//   unique: an acquire inserts the lowest slot it sees free ON CONFLICT DO
//   NOTHING. When another replica took that slot first (its insert is
//   waited for, then skipped), the next free one is tried; when it gave
//   this runner a slot of the pool first, the store answers from that
//   holding;
// - releases are DELETE ... RETURNING, so two replicas releasing the same
//   holding release it once;
// - applied event ids are a primary key (ON CONFLICT DO NOTHING);
// - counters are one row per replica start, summed when read;
// - reconciliation runs on one replica at a time (a session advisory lock).
// The tables are prefixed (slot_holdings, pool_*) so that the task-queue
// and the pool-manager can share one database.

#include <stdexcept>

#include "pool_rows.hpp"
#include "rmon/store/postgres.hpp"
#include "rmon/store/sqlite.hpp"

namespace rmon::pool {

namespace {

using store::PgDb;

// Schema versions, applied once by store::pg_migrate. Only append.
const std::vector<std::string> kMigrations = {
    R"sql(
    CREATE TABLE slot_holdings(
      pool TEXT NOT NULL,
      slot INTEGER NOT NULL,
      runner_id TEXT NOT NULL,
      task_id TEXT NOT NULL,
      attempt BIGINT NOT NULL,
      since_ms BIGINT NOT NULL,
      PRIMARY KEY(pool, slot),
      UNIQUE(pool, runner_id));
    CREATE INDEX slot_holdings_by_attempt ON slot_holdings(runner_id, task_id, attempt);
    CREATE TABLE pool_configs(
      name TEXT PRIMARY KEY,
      type TEXT NOT NULL,
      slots INTEGER NOT NULL,
      configured BOOLEAN NOT NULL);
    CREATE TABLE pool_seen_events(
      event_id TEXT PRIMARY KEY,
      runner_id TEXT NOT NULL,
      task_id TEXT NOT NULL,
      attempt BIGINT NOT NULL,
      applied_ms BIGINT NOT NULL);
    CREATE INDEX pool_seen_events_by_attempt ON pool_seen_events(runner_id, task_id, attempt);
    CREATE INDEX pool_seen_events_by_age ON pool_seen_events(applied_ms);
    CREATE TABLE pool_counters(name TEXT NOT NULL, owner TEXT NOT NULL, value BIGINT NOT NULL,
                               PRIMARY KEY(name, owner));
    )sql",
};

// The reconciliation lock's key (pg_try_advisory_lock).
constexpr int64_t kReconcileLock = 0x726d6f6e'706d'0001;  // "rmon" pm 1

// How many slots an acquire tries when other replicas keep taking the one
// it found free; then the item is answered `unavailable`.
constexpr int kMaxSlotTries = 64;

constexpr char kCols[] = "pool, slot, runner_id, task_id, attempt, since_ms";

Holding read_holding(const pqxx::row& r) {
  Holding h;
  h.pool = r[0].c_str();
  h.slot = r[1].as<uint32_t>();
  h.runner_id = r[2].c_str();
  h.task_id = r[3].c_str();
  h.attempt = r[4].as<uint64_t>();
  h.since_ms = r[5].as<int64_t>();
  return h;
}

std::vector<Holding> read_holdings(const pqxx::result& r) {
  std::vector<Holding> out;
  out.reserve(r.size());
  for (const auto& row : r) out.push_back(read_holding(row));
  return out;
}

class PgPoolRows final : public PoolRows {
 public:
  explicit PgPoolRows(PgDb& db) : db_(db), owner_(store::pg_owner_id()) {
    store::pg_migrate(db_, "pool-manager", kMigrations);
    prepare();
  }

  store::Backend& backend() override { return db_; }
  std::string describe() const override { return "postgresql " + store::redact_url(db_.url()); }
  bool shared() const override { return true; }

  void record_pools(const std::vector<PoolSpec>& pools) override {
    store::Transaction tx(db_);
    db_.exec("UPDATE pool_configs SET configured = false");
    for (const PoolSpec& p : pools) {
      db_.exec(
          "INSERT INTO pool_configs(name, type, slots, configured) VALUES($1, $2, $3, true) "
          "ON CONFLICT (name) DO UPDATE SET type = excluded.type, slots = excluded.slots, "
          "configured = true",
          p.name, std::string(protocol::to_string(p.type)), p.slots);
    }
    tx.commit();
  }

  std::optional<HeldSlot> holding(std::string_view pool, std::string_view runner_id) override {
    const pqxx::result r = db_.run("pm_holding", std::string(pool), std::string(runner_id));
    if (r.empty()) return std::nullopt;
    return HeldSlot{r[0][0].as<uint32_t>(), r[0][1].c_str(), r[0][2].as<uint64_t>()};
  }

  bool attempt_timed_out(std::string_view runner_id, std::string_view task_id,
                         uint64_t attempt) override {
    return !db_.run("pm_timed_out", std::string(runner_id), std::string(task_id), attempt).empty();
  }

  Taken take_slot(const PoolSpec& pool, std::string_view runner_id, std::string_view task_id,
                  uint64_t attempt, int64_t now_ms) override {
    for (int i = 0; i < kMaxSlotTries; ++i) {
      const pqxx::result r = db_.run("pm_take_slot", pool.name, pool.slots, std::string(runner_id),
                                     std::string(task_id), attempt, now_ms);
      if (!r.empty()) return {Taken::kTaken, r[0][0].as<uint32_t>()};
      // Nothing inserted: no free slot, or a conflict with a holding another
      // replica committed meanwhile (this statement waited for it).
      if (holding(pool.name, runner_id)) return {Taken::kRunnerHolds, 0};
      if (db_.run("pm_free_slot", pool.name, pool.slots)[0][0].is_null()) return {Taken::kFull, 0};
    }
    throw std::runtime_error("pool " + pool.name + ": other replicas kept taking its free slots");
  }

  std::vector<Holding> delete_runner(std::string_view runner_id,
                                     const std::optional<std::string>& pool) override {
    return read_holdings(
        db_.run("pm_delete_runner", std::string(runner_id), PgDb::text_or_null(pool)));
  }

  std::vector<Holding> delete_attempt(std::string_view runner_id, std::string_view task_id,
                                      uint64_t attempt) override {
    return read_holdings(
        db_.run("pm_delete_attempt", std::string(runner_id), std::string(task_id), attempt));
  }

  bool remember_event(const protocol::TimeoutEvent& event, int64_t now_ms) override {
    const protocol::RunnerInfo& r = event.runner;
    return db_.run("pm_remember_event", event.event_id, r.runner_id, r.task_id, r.attempt, now_ms)
               .affected_rows() == 1;
  }

  std::size_t prune_events(int64_t before_ms, std::size_t max) override {
    // SKIP LOCKED: ids another replica's batch holds wait for a later call.
    return static_cast<std::size_t>(
        db_.exec("DELETE FROM pool_seen_events WHERE event_id IN (SELECT event_id FROM "
                 "pool_seen_events WHERE applied_ms < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
                 before_ms, static_cast<int64_t>(max))
            .affected_rows());
  }

  void bump(Counter c, uint64_t n) override {
    db_.run("pm_bump", std::string(counter_name(c)), owner_, n);
  }

  Counters read_counters() override {
    Counters out{};
    const pqxx::result r =
        db_.exec("SELECT name, sum(value)::bigint FROM pool_counters GROUP BY name");
    for (const auto& row : r) set_counter(out, row[0].c_str(), row[1].as<uint64_t>());
    return out;
  }

  CandidatePage candidates(const ReconcileCursor& from, int64_t since_before_ms,
                           std::size_t max) override {
    CandidatePage page;
    page.next = from;
    page.last = true;
    if (!reconciler_.try_hold(db_)) return page;
    const pqxx::result r =
        db_.run("pm_candidates", from.start ? std::string() : from.text,
                from.start ? int64_t{-1} : from.num, since_before_ms, static_cast<int64_t>(max));
    for (const auto& row : r) {
      page.next.text = row[0].c_str();
      page.next.num = row[1].as<int64_t>();
      page.keys.push_back({row[2].c_str(), row[3].c_str(), row[4].as<uint64_t>()});
    }
    page.last = page.keys.size() < max;
    return page;
  }

  std::vector<PoolCount> count_by_pool() override {
    std::vector<PoolCount> out;
    const pqxx::result r = db_.exec(
        "SELECT h.pool, count(*), coalesce(p.type, '') FROM slot_holdings h "
        "LEFT JOIN pool_configs p ON p.name = h.pool GROUP BY h.pool, p.type ORDER BY h.pool");
    for (const auto& row : r)
      out.push_back({row[0].c_str(), row[2].c_str(), row[1].as<uint64_t>()});
    return out;
  }

  void walk(const std::optional<std::string>& pool,
            const std::function<bool(const Holding&)>& fn) override {
    const std::string head = std::string("SELECT ") + kCols + " FROM slot_holdings";
    const pqxx::result r = pool ? db_.exec(head + " WHERE pool = $1 ORDER BY slot", *pool)
                                : db_.exec(head + " ORDER BY pool, slot");
    for (const auto& row : r) {
      if (!fn(read_holding(row))) return;
    }
  }

 private:
  void prepare() {
    const std::string cols = kCols;
    db_.prepare("pm_holding",
                "SELECT slot, task_id, attempt FROM slot_holdings WHERE pool = $1 AND "
                "runner_id = $2");
    db_.prepare("pm_timed_out",
                "SELECT 1 FROM pool_seen_events WHERE runner_id = $1 AND task_id = $2 AND "
                "attempt = $3 LIMIT 1");
    // The lowest free slot below the size $2: slot 0, or the first held slot
    // (walking the primary key) whose next one is free. NULL: none.
    const std::string free_slot =
        "SELECT min(s) AS s FROM ("
        "SELECT 0 AS s WHERE NOT EXISTS (SELECT 1 FROM slot_holdings WHERE pool = $1 AND "
        "slot = 0) "
        "UNION ALL (SELECT h.slot + 1 FROM slot_holdings h WHERE h.pool = $1 AND h.slot + 1 < $2 "
        "AND NOT EXISTS (SELECT 1 FROM slot_holdings n WHERE n.pool = $1 AND n.slot = h.slot + 1) "
        "ORDER BY h.slot LIMIT 1)) f";
    db_.prepare("pm_free_slot", free_slot);
    db_.prepare("pm_take_slot",
                "INSERT INTO slot_holdings(" + cols + ") SELECT $1, f.s, $3, $4, $5, $6 FROM (" +
                    free_slot + ") f WHERE f.s IS NOT NULL ON CONFLICT DO NOTHING RETURNING slot");
    db_.prepare("pm_delete_runner",
                "DELETE FROM slot_holdings WHERE runner_id = $1 AND ($2::text IS NULL OR pool = "
                "$2::text) RETURNING " +
                    cols);
    db_.prepare("pm_delete_attempt",
                "DELETE FROM slot_holdings WHERE runner_id = $1 AND task_id = $2 AND attempt = $3 "
                "RETURNING " +
                    cols);
    db_.prepare("pm_remember_event",
                "INSERT INTO pool_seen_events(event_id, runner_id, task_id, attempt, applied_ms) "
                "VALUES($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING");
    db_.prepare("pm_bump",
                "INSERT INTO pool_counters(name, owner, value) VALUES($1, $2, $3) "
                "ON CONFLICT (name, owner) DO UPDATE SET value = pool_counters.value + "
                "excluded.value");
    db_.prepare("pm_candidates",
                "SELECT " + cols +
                    " FROM slot_holdings WHERE (pool, slot) > ($1, $2) AND since_ms <= $3 "
                    "ORDER BY pool, slot LIMIT $4");
  }

  PgDb& db_;
  std::string owner_;  // this replica's counter rows (one set per start)
  store::PgSingleton reconciler_{kReconcileLock};
};

}  // namespace

std::unique_ptr<PoolRows> make_postgres_rows(store::PgDb& db) {
  return std::make_unique<PgPoolRows>(db);
}

}  // namespace rmon::pool
