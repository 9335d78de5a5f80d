#include "pool_store.hpp"

#include <sqlite3.h>

#include <cassert>

#include <limits>
#include <stdexcept>

namespace rmon::pool {

namespace {

constexpr std::array<std::string_view, kCounterCount> kCounterNames = {
    "acquired",   "released",       "released_by_timeout",
    "reconciled", "events_applied", "events_ignored"};

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

}  // namespace

std::string_view counter_name(Counter c) { return kCounterNames[static_cast<std::size_t>(c)]; }

PoolStore::PoolStore(const std::filesystem::path& path, std::vector<PoolSpec> pools,
                     const Clock& clock, StoreOptions options)
    : clock_(clock),
      options_(options),
      pools_(std::move(pools)),
      // One pool-manager per data folder: the in-memory slot bitmaps assume
      // no other writer.
      db_(store::open_service_db(path, options.sync, "one pool-manager per data folder",
                                 kSchemaVersion)) {
  create_schema();
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
      "DELETE FROM holdings WHERE runner_id = ?1 AND task_id = ?2 AND attempt = ?3 RETURNING " +
      cols);
  event_seen_ = db_.prepare("SELECT 1 FROM seen_events WHERE event_id = ?1");
  attempt_timed_out_ = db_.prepare(
      "SELECT 1 FROM seen_events "
      "WHERE runner_id = ?1 AND task_id = ?2 AND attempt = ?3 LIMIT 1");
  insert_event_ = db_.prepare(
      "INSERT INTO seen_events(event_id, runner_id, task_id, attempt, "
      "applied_ms) VALUES(?1, ?2, ?3, ?4, ?5)");
  bump_counter_ = db_.prepare("UPDATE counters SET value = value + ?2 WHERE name = ?1");
  // Walks the primary key (pool, slot).
  select_candidates_ = db_.prepare(
      "SELECT pool, slot, runner_id, task_id, attempt FROM holdings "
      "WHERE (pool, slot) > (?1, ?2) AND since_ms <= ?3 ORDER BY pool, slot LIMIT ?4");
  select_pool_holders_ =
      db_.prepare("SELECT " + cols + " FROM holdings WHERE pool = ?1 ORDER BY slot");
  prune_events_ = db_.prepare(
      "DELETE FROM seen_events WHERE event_id IN "
      "(SELECT event_id FROM seen_events WHERE applied_ms < ?1 LIMIT ?2)");
  for (const PoolSpec& p : pools_) mirror_.emplace(p.name, Mirror{p, SlotBitmap(p.slots)});
  resync();
}

void PoolStore::create_schema() {
  // The version is checked by store::open_service_db.
  store::Transaction tx(db_);
  db_.exec(kSchema);
  store::Stmt add = db_.prepare("INSERT OR IGNORE INTO counters(name, value) VALUES(?1, 0)");
  for (std::string_view name : kCounterNames) add.bind(1, name).run();
  // Remember each pool's type, so status can still name the type of a pool
  // that is no longer configured but has holdings.
  db_.exec("UPDATE pools SET configured = 0");
  store::Stmt upsert = db_.prepare(
      "INSERT INTO pools(name, type, slots, configured) VALUES(?1, ?2, ?3, 1) "
      "ON CONFLICT(name) DO UPDATE SET type = excluded.type, slots = excluded.slots, "
      "configured = 1");
  for (const PoolSpec& p : pools_) {
    upsert.bind(1, p.name).bind(2, protocol::to_string(p.type)).bind(3, int64_t{p.slots}).run();
  }
  tx.commit();
}

void PoolStore::resync() {
  store::Stmt c = db_.prepare("SELECT name, value FROM counters");
  counters_.fill(0);
  while (c.step()) {
    const std::string name = c.text(0);
    for (std::size_t i = 0; i < kCounterCount; ++i) {
      if (kCounterNames[i] == name) counters_[i] = static_cast<uint64_t>(c.int64(1));
    }
  }
  for (auto& [name, m] : mirror_) m.used.clear_all();
  holdings_total_ = 0;
  store::Stmt h = db_.prepare("SELECT pool, slot FROM holdings");
  while (h.step()) {
    ++holdings_total_;
    auto it = mirror_.find(h.text(0));
    if (it != mirror_.end()) it->second.used.set(static_cast<uint32_t>(h.int64(1)));
  }
}

void PoolStore::bump(Counter c, uint64_t n) {
  if (n == 0) return;
  bump_counter_.bind(1, counter_name(c)).bind(2, n).run();
  counters_[static_cast<std::size_t>(c)] += n;
}

void PoolStore::forget(const Holding& h) {
  // The mirror matches the database: a released holding was counted, and
  // its slot (when within the pool's size) was marked used.
  assert(holdings_total_ > 0);
  --holdings_total_;
  auto it = mirror_.find(h.pool);
  if (it != mirror_.end()) {
    assert(h.slot >= it->second.spec.slots || it->second.used.test(h.slot));
    it->second.used.clear(h.slot);
  }
}

Holding PoolStore::read_holding(const store::Stmt& s) const {
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

AcquireResult PoolStore::acquire(std::string_view pool, std::string_view runner_id,
                                 std::string_view task_id, uint64_t attempt) {
  auto it = mirror_.find(pool);
  if (it == mirror_.end()) {
    return {AcquireStatus::kNotFound, 0, "no pool '" + std::string(pool) + "'"};
  }
  {
    Done done{attempt_timed_out_};
    if (attempt_timed_out_.bind(1, runner_id).bind(2, task_id).bind(3, attempt).step()) {
      return {AcquireStatus::kStaleAttempt, 0,
              "runner " + std::string(runner_id) + " timed out on task " + std::string(task_id) +
                  " attempt " + std::to_string(attempt)};
    }
  }
  {
    Done done{get_holding_};
    if (get_holding_.bind(1, pool).bind(2, runner_id).step()) {
      const auto slot = static_cast<uint32_t>(get_holding_.int64(0));
      const std::string held_task = get_holding_.text(1);
      const auto held_attempt = static_cast<uint64_t>(get_holding_.int64(2));
      if (held_task == task_id && held_attempt == attempt) {
        return {AcquireStatus::kAlreadyHeld, slot, {}};
      }
      return {AcquireStatus::kConflict, 0,
              "runner " + std::string(runner_id) + " holds slot " + std::to_string(slot) +
                  " of pool " + std::string(pool) + " for task " + held_task + " attempt " +
                  std::to_string(held_attempt)};
    }
  }
  Mirror& m = it->second;
  const auto slot = m.used.lowest_free();
  if (!slot) {
    return {
        AcquireStatus::kPoolFull, 0,
        "all " + std::to_string(m.spec.slots) + " slots of pool " + m.spec.name + " are in use"};
  }
  insert_holding_.bind(1, pool)
      .bind(2, int64_t{*slot})
      .bind(3, runner_id)
      .bind(4, task_id)
      .bind(5, attempt)
      .bind(6, clock_.wall_ms())
      .run();
  m.used.set(*slot);
  ++holdings_total_;
  bump(Counter::kAcquired);
  return {AcquireStatus::kAcquired, *slot, {}};
}

std::vector<Holding> PoolStore::release(std::string_view runner_id,
                                        const std::optional<std::string>& pool) {
  std::vector<Holding> out;
  {
    Done done{delete_runner_};
    delete_runner_.bind(1, runner_id).bind(2, pool);
    while (delete_runner_.step()) out.push_back(read_holding(delete_runner_));
  }
  for (const Holding& h : out) forget(h);
  bump(Counter::kReleased, out.size());
  return out;
}

std::vector<Holding> PoolStore::release_attempt(std::string_view runner_id,
                                                std::string_view task_id, uint64_t attempt) {
  std::vector<Holding> out;
  {
    Done done{delete_attempt_};
    delete_attempt_.bind(1, runner_id).bind(2, task_id).bind(3, attempt);
    while (delete_attempt_.step()) out.push_back(read_holding(delete_attempt_));
  }
  for (const Holding& h : out) forget(h);
  return out;
}

EventOutcome PoolStore::apply_timeout(const protocol::TimeoutEvent& event) {
  const protocol::RunnerInfo& r = event.runner;
  {
    Done done{event_seen_};
    if (event_seen_.bind(1, event.event_id).step()) {
      bump(Counter::kEventsIgnored);
      return {EventResult::kRepeated, {}};
    }
  }
  insert_event_.bind(1, event.event_id)
      .bind(2, r.runner_id)
      .bind(3, r.task_id)
      .bind(4, r.attempt)
      .bind(5, clock_.wall_ms())
      .run();
  // Matched on (runner, task, attempt), not on the event's pool: that is the
  // fence; a runner's heartbeat pool name is informational here.
  EventOutcome out{EventResult::kApplied, release_attempt(r.runner_id, r.task_id, r.attempt)};
  if (out.released.empty()) {
    out.result = EventResult::kNoHolding;
    bump(Counter::kEventsIgnored);
  } else {
    bump(Counter::kEventsApplied);
    bump(Counter::kReleasedByTimeout, out.released.size());
  }
  return out;
}

std::vector<Holding> PoolStore::apply_verdict(const Judged& j) {
  if (!takes_back(j.verdict)) return {};
  // Fenced by the whole (runner, task, attempt): the slot may have been
  // released and acquired again while the monitors were being asked.
  auto released = release_attempt(j.key.runner_id, j.key.task_id, j.key.attempt);
  bump(Counter::kReleasedByTimeout, released.size());
  bump(Counter::kReconciled, released.size());
  return released;
}

std::size_t PoolStore::prune_events(std::size_t max) {
  const int64_t cutoff = clock_.wall_ms() - options_.event_retention.count();
  prune_events_.bind(1, cutoff).bind(2, static_cast<int64_t>(max)).run();
  return static_cast<std::size_t>(db_.changes());
}

CandidatePage PoolStore::reconcile_candidates(const ReconcileCursor& from, std::size_t max) {
  CandidatePage page;
  page.next = from;
  const int64_t cutoff = clock_.wall_ms() - options_.first_heartbeat_grace.count();
  Done done{select_candidates_};
  // Row values compare NULL as unknown: bind an empty pool name, never NULL.
  select_candidates_.bind(1, from.start ? std::string_view("") : std::string_view(from.text))
      .bind(2, from.start ? int64_t{-1} : from.num)
      .bind(3, cutoff)
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

std::vector<PoolView> PoolStore::pool_views() {
  std::map<std::string, std::pair<uint64_t, std::string>, std::less<>> counts;
  store::Stmt s = db_.prepare(
      "SELECT h.pool, COUNT(*), p.type FROM holdings h LEFT JOIN pools p ON p.name = h.pool "
      "GROUP BY h.pool ORDER BY h.pool");
  while (s.step()) counts[s.text(0)] = {static_cast<uint64_t>(s.int64(1)), s.text(2)};
  std::vector<PoolView> out;
  for (const PoolSpec& p : pools_) {
    auto it = counts.find(p.name);
    out.push_back({p.name, std::string(protocol::to_string(p.type)), p.slots, true,
                   it == counts.end() ? 0 : it->second.first});
    if (it != counts.end()) counts.erase(it);
  }
  for (auto& [name, c] : counts) out.push_back({name, std::move(c.second), 0, false, c.first});
  return out;
}

std::optional<PoolView> PoolStore::pool_view(std::string_view name) {
  store::Stmt s = db_.prepare(
      "SELECT COUNT(*), (SELECT type FROM pools WHERE name = ?1) "
      "FROM holdings WHERE pool = ?1");
  s.bind(1, name);
  const uint64_t in_use = s.step() ? static_cast<uint64_t>(s.int64(0)) : 0;
  auto it = mirror_.find(name);
  if (it != mirror_.end()) {
    const PoolSpec& p = it->second.spec;
    return PoolView{p.name, std::string(protocol::to_string(p.type)), p.slots, true, in_use};
  }
  if (in_use == 0) return std::nullopt;
  return PoolView{std::string(name), s.text(1), 0, false, in_use};
}

void PoolStore::for_each_holder(std::string_view pool,
                                const std::function<bool(const Holding&)>& fn) {
  Done done{select_pool_holders_};
  select_pool_holders_.bind(1, pool);
  while (select_pool_holders_.step()) {
    if (!fn(read_holding(select_pool_holders_))) return;
  }
}

std::vector<Holding> PoolStore::orphaned_holdings() {
  std::vector<Holding> out;
  store::Stmt s =
      db_.prepare("SELECT " + std::string(kHoldingColumns) + " FROM holdings ORDER BY pool, slot");
  while (s.step()) {
    Holding h = read_holding(s);
    auto it = mirror_.find(h.pool);
    if (it == mirror_.end() || h.slot >= it->second.spec.slots) out.push_back(std::move(h));
  }
  return out;
}

uint32_t PoolStore::used_slots(std::string_view pool) const {
  auto it = mirror_.find(pool);
  return it == mirror_.end() ? 0 : it->second.used.used();
}

}  // namespace rmon::pool
