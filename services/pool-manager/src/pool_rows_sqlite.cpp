// PoolRows over the data folder's SQLite database (pool_rows.hpp). This
// process is its only writer (store::open_service_db locks the file), so
// the held slots of each configured pool are mirrored in memory, as a
// bitmap, and the lowest free slot is found there.

#include <cassert>
#include <map>

#include "pool_rows.hpp"
#include "rmon/store/sqlite.hpp"
#include "slot_bitmap.hpp"

namespace rmon::pool {

namespace {

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS holdings(
  pool TEXT NOT NULL,
  slot INTEGER NOT NULL,
  runner_id TEXT NOT NULL,
  task_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  since_ms INTEGER NOT NULL,
  heartbeat_seen INTEGER NOT NULL DEFAULT 0, -- unused since reconciliation
  PRIMARY KEY(pool, slot),
  UNIQUE(pool, runner_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS holdings_by_attempt ON holdings(runner_id, task_id, attempt);
DROP INDEX IF EXISTS holdings_unseen;
CREATE TABLE IF NOT EXISTS pools(
  name TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  slots INTEGER NOT NULL,
  configured INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seen_events(
  event_id TEXT PRIMARY KEY,
  runner_id TEXT NOT NULL,
  task_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  applied_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_events_by_attempt ON seen_events(runner_id, task_id, attempt);
CREATE INDEX IF NOT EXISTS seen_events_by_age ON seen_events(applied_ms);
CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
)sql";

constexpr char kHoldingColumns[] =
    "pool, slot, runner_id, task_id, attempt, since_ms, heartbeat_seen";

// Resets a statement when the scope ends, also on an exception.
struct Done {
  store::Stmt& s;
  ~Done() { s.reset(); }
};

Holding read_holding(const store::Stmt& s) {
  Holding h;
  h.pool = s.text(0);
  h.slot = static_cast<uint32_t>(s.int64(1));
  h.runner_id = s.text(2);
  h.task_id = s.text(3);
  h.attempt = static_cast<uint64_t>(s.int64(4));
  h.since_ms = s.int64(5);
  h.heartbeat_seen = s.int64(6) != 0;
  return h;
}

class SqlitePoolRows final : public PoolRows {
 public:
  SqlitePoolRows(store::Db& db, const std::vector<PoolSpec>& pools) : db_(db) {
    {
      // The version is checked by store::open_service_db.
      store::Transaction tx(db_);
      db_.exec(kSchema);
      tx.commit();
    }
    const std::string cols = kHoldingColumns;
    get_holding_ = db_.prepare(
        "SELECT slot, task_id, attempt FROM holdings "
        "WHERE pool = ?1 AND runner_id = ?2");
    insert_holding_ = db_.prepare(
        "INSERT INTO holdings(pool, slot, runner_id, task_id, attempt, since_ms, heartbeat_seen) "
        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, 0)");
    delete_runner_ = db_.prepare(
        "DELETE FROM holdings WHERE runner_id = ?1 AND "
        "(?2 IS NULL OR pool = ?2) RETURNING " +
        cols);
    delete_attempt_ = db_.prepare(
        "DELETE FROM holdings WHERE runner_id = ?1 AND task_id = ?2 AND attempt = ?3 "
        "RETURNING " +
        cols);
    event_seen_ = db_.prepare("SELECT 1 FROM seen_events WHERE event_id = ?1");
    attempt_timed_out_ = db_.prepare(
        "SELECT 1 FROM seen_events "
        "WHERE runner_id = ?1 AND task_id = ?2 AND attempt = ?3 LIMIT 1");
    insert_event_ = db_.prepare(
        "INSERT INTO seen_events(event_id, runner_id, task_id, attempt, "
        "applied_ms) VALUES(?1, ?2, ?3, ?4, ?5)");
    bump_counter_ = db_.prepare(
        "INSERT INTO counters(name, value) VALUES(?1, ?2) "
        "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value");
    // Walks the primary key (pool, slot).
    select_candidates_ = db_.prepare(
        "SELECT pool, slot, runner_id, task_id, attempt FROM holdings "
        "WHERE (pool, slot) > (?1, ?2) AND since_ms <= ?3 ORDER BY pool, slot LIMIT ?4");
    select_pool_holders_ =
        db_.prepare("SELECT " + cols + " FROM holdings WHERE pool = ?1 ORDER BY slot");
    prune_events_ = db_.prepare(
        "DELETE FROM seen_events WHERE event_id IN "
        "(SELECT event_id FROM seen_events WHERE applied_ms < ?1 LIMIT ?2)");
    for (const PoolSpec& p : pools) used_.emplace(p.name, SlotBitmap(p.slots));
    reload();
  }

  store::Backend& backend() override { return db_; }
  std::string describe() const override { return "sqlite " + db_.path().string(); }
  bool shared() const override { return false; }

  void record_pools(const std::vector<PoolSpec>& pools) override {
    store::Transaction tx(db_);
    db_.exec("UPDATE pools SET configured = 0");
    store::Stmt upsert = db_.prepare(
        "INSERT INTO pools(name, type, slots, configured) VALUES(?1, ?2, ?3, 1) "
        "ON CONFLICT(name) DO UPDATE SET type = excluded.type, slots = excluded.slots, "
        "configured = 1");
    for (const PoolSpec& p : pools) {
      upsert.bind(1, p.name).bind(2, protocol::to_string(p.type)).bind(3, int64_t{p.slots}).run();
    }
    tx.commit();
  }

  std::optional<HeldSlot> holding(std::string_view pool, std::string_view runner_id) override {
    Done done{get_holding_};
    if (!get_holding_.bind(1, pool).bind(2, runner_id).step()) return std::nullopt;
    return HeldSlot{static_cast<uint32_t>(get_holding_.int64(0)), get_holding_.text(1),
                    static_cast<uint64_t>(get_holding_.int64(2))};
  }

  bool attempt_timed_out(std::string_view runner_id, std::string_view task_id,
                         uint64_t attempt) override {
    Done done{attempt_timed_out_};
    return attempt_timed_out_.bind(1, runner_id).bind(2, task_id).bind(3, attempt).step();
  }

  Taken take_slot(const PoolSpec& pool, std::string_view runner_id, std::string_view task_id,
                  uint64_t attempt, int64_t now_ms) override {
    auto it = used_.find(pool.name);
    assert(it != used_.end());
    const auto slot = it->second.lowest_free();
    if (!slot) return {Taken::kFull, 0};
    insert_holding_.bind(1, pool.name)
        .bind(2, int64_t{*slot})
        .bind(3, runner_id)
        .bind(4, task_id)
        .bind(5, attempt)
        .bind(6, now_ms)
        .run();
    it->second.set(*slot);
    return {Taken::kTaken, *slot};
  }

  std::vector<Holding> delete_runner(std::string_view runner_id,
                                     const std::optional<std::string>& pool) override {
    delete_runner_.bind(1, runner_id).bind(2, pool);
    return deleted(delete_runner_);
  }

  std::vector<Holding> delete_attempt(std::string_view runner_id, std::string_view task_id,
                                      uint64_t attempt) override {
    delete_attempt_.bind(1, runner_id).bind(2, task_id).bind(3, attempt);
    return deleted(delete_attempt_);
  }

  bool remember_event(const protocol::TimeoutEvent& event, int64_t now_ms) override {
    {
      Done done{event_seen_};
      if (event_seen_.bind(1, event.event_id).step()) return false;
    }
    const protocol::RunnerInfo& r = event.runner;
    insert_event_.bind(1, event.event_id)
        .bind(2, r.runner_id)
        .bind(3, r.task_id)
        .bind(4, r.attempt)
        .bind(5, now_ms)
        .run();
    return true;
  }

  std::size_t prune_events(int64_t before_ms, std::size_t max) override {
    prune_events_.bind(1, before_ms).bind(2, static_cast<int64_t>(max)).run();
    return static_cast<std::size_t>(db_.changes());
  }

  void bump(Counter c, uint64_t n) override {
    bump_counter_.bind(1, counter_name(c)).bind(2, n).run();
  }

  Counters read_counters() override {
    Counters out{};
    store::Stmt c = db_.prepare("SELECT name, value FROM counters");
    while (c.step()) set_counter(out, c.text(0), static_cast<uint64_t>(c.int64(1)));
    return out;
  }

  CandidatePage candidates(const ReconcileCursor& from, int64_t since_before_ms,
                           std::size_t max) override {
    CandidatePage page;
    page.next = from;
    Done done{select_candidates_};
    // Row values compare NULL as unknown: bind an empty pool name, never NULL.
    select_candidates_.bind(1, from.start ? std::string_view("") : std::string_view(from.text))
        .bind(2, from.start ? int64_t{-1} : from.num)
        .bind(3, since_before_ms)
        .bind(4, static_cast<int64_t>(max));
    while (select_candidates_.step()) {
      page.next.text = select_candidates_.text(0);
      page.next.num = select_candidates_.int64(1);
      page.keys.push_back({select_candidates_.text(2), select_candidates_.text(3),
                           static_cast<uint64_t>(select_candidates_.int64(4))});
    }
    page.last = page.keys.size() < max;
    return page;
  }

  std::vector<PoolCount> count_by_pool() override {
    std::vector<PoolCount> out;
    store::Stmt s = db_.prepare(
        "SELECT h.pool, COUNT(*), p.type FROM holdings h LEFT JOIN pools p ON p.name = h.pool "
        "GROUP BY h.pool ORDER BY h.pool");
    while (s.step()) out.push_back({s.text(0), s.text(2), static_cast<uint64_t>(s.int64(1))});
    return out;
  }

  void walk(const std::optional<std::string>& pool,
            const std::function<bool(const Holding&)>& fn) override {
    if (pool) {
      Done done{select_pool_holders_};
      select_pool_holders_.bind(1, *pool);
      while (select_pool_holders_.step()) {
        if (!fn(read_holding(select_pool_holders_))) return;
      }
      return;
    }
    store::Stmt s = db_.prepare("SELECT " + std::string(kHoldingColumns) +
                                " FROM holdings ORDER BY pool, slot");
    while (s.step()) {
      if (!fn(read_holding(s))) return;
    }
  }

  void reload() override {
    for (auto& [name, used] : used_) used.clear_all();
    store::Stmt h = db_.prepare("SELECT pool, slot FROM holdings");
    while (h.step()) {
      auto it = used_.find(h.text(0));
      if (it != used_.end()) it->second.set(static_cast<uint32_t>(h.int64(1)));
    }
  }

 private:
  // Steps a DELETE ... RETURNING, and frees the deleted slots in memory.
  std::vector<Holding> deleted(store::Stmt& s) {
    std::vector<Holding> out;
    {
      Done done{s};
      while (s.step()) out.push_back(read_holding(s));
    }
    for (const Holding& h : out) {
      auto it = used_.find(h.pool);
      if (it != used_.end()) it->second.clear(h.slot);  // a slot past the size is not in it
    }
    return out;
  }

  store::Db& db_;
  std::map<std::string, SlotBitmap, std::less<>> used_;  // configured pools' held slots
  // Prepared once; each is reset after use (also when a step throws).
  store::Stmt get_holding_, insert_holding_, delete_runner_, delete_attempt_, event_seen_,
      attempt_timed_out_, insert_event_, bump_counter_, select_candidates_, select_pool_holders_,
      prune_events_;
};

}  // namespace

std::unique_ptr<PoolRows> make_sqlite_rows(store::Db& db, const std::vector<PoolSpec>& pools) {
  return std::make_unique<SqlitePoolRows>(db, pools);
}

}  // namespace rmon::pool
