#include "outbox_store.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "rmon/protocol/codec.hpp"

namespace rmon::monitor {

class ABSL_SCOPED_LOCKABLE OutboxStore::DispatchTurn {
 public:
  explicit DispatchTurn(OutboxStore& s) ABSL_EXCLUSIVE_LOCK_FUNCTION(s.mu_) : mu_(s.mu_) {
    s.dispatch_waiting_.fetch_add(1);
    mu_.lock();
    s.dispatch_waiting_.fetch_sub(1);
  }
  ~DispatchTurn() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  DispatchTurn(const DispatchTurn&) = delete;
  DispatchTurn& operator=(const DispatchTurn&) = delete;

 private:
  Mutex& mu_;
};

class ABSL_SCOPED_LOCKABLE OutboxStore::MaintenanceTurn {
 public:
  // Lets a waiting dispatch call take the connection first (it is about to:
  // nobody else holds it), so that the ack thread's next transaction does not
  // win the race for it again and again.
  explicit MaintenanceTurn(OutboxStore& s) ABSL_EXCLUSIVE_LOCK_FUNCTION(s.mu_) : mu_(s.mu_) {
    while (s.dispatch_waiting_.load() > 0) std::this_thread::yield();
    mu_.lock();
  }
  ~MaintenanceTurn() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  MaintenanceTurn(const MaintenanceTurn&) = delete;
  MaintenanceTurn& operator=(const MaintenanceTurn&) = delete;

 private:
  Mutex& mu_;
};

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS events(
  seq INTEGER PRIMARY KEY,
  event_id TEXT NOT NULL UNIQUE,
  runner_id TEXT NOT NULL,
  task_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  body BLOB NOT NULL,
  done_ms INTEGER
);
CREATE INDEX IF NOT EXISTS events_done ON events(done_ms) WHERE done_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS pending(
  grp TEXT NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY(grp, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pending_seq ON pending(seq);
CREATE TABLE IF NOT EXISTS quarantine(
  grp TEXT NOT NULL,
  seq INTEGER NOT NULL,
  event_id TEXT NOT NULL,
  body BLOB NOT NULL,
  reason TEXT NOT NULL,
  PRIMARY KEY(grp, seq)
) WITHOUT ROWID;
)sql";

}  // namespace

OutboxStore::OutboxStore(store::Db db, std::vector<std::string> groups,
                         const std::vector<std::string>& drop_groups)
    : db_(std::move(db)), groups_(std::move(groups)) {
  db_.exec(kSchema);
  // No checkpoint inside an append (it would fsync the database while a
  // timeout waits to be sent): a Checkpointer runs them (see open()).
  db_.exec("PRAGMA wal_autocheckpoint=0");
  {
    // Groups no longer configured: their pending rows would never go, but a
    // misspelled --group must not delete them. Only --drop-group does.
    store::Transaction txn(db_);
    store::Stmt orphans =
        db_.prepare("SELECT grp, COUNT(*) FROM pending GROUP BY grp ORDER BY grp");
    std::vector<std::pair<std::string, int64_t>> drop;
    std::string refused;
    while (orphans.step()) {
      std::string g = orphans.text(0);
      const int64_t n = orphans.int64(1);
      if (std::find(groups_.begin(), groups_.end(), g) != groups_.end()) continue;
      if (std::find(drop_groups.begin(), drop_groups.end(), g) != drop_groups.end()) {
        drop.emplace_back(std::move(g), n);
        continue;
      }
      refused += (refused.empty() ? "" : ", ") + g + " (" + std::to_string(n) + " pending event" +
                 (n == 1 ? ")" : "s)");
    }
    orphans.reset();
    if (!refused.empty()) {
      throw std::runtime_error(
          "outbox " + db_.path().string() +
          " holds events not yet acknowledged by groups that are not configured: " + refused +
          ". Starting would lose them. If --group misspelled or renamed a group, correct it; to "
          "delete a group's events deliberately, add --drop-group NAME for it");
    }
    for (const auto& [g, n] : drop) {
      store::Stmt del = db_.prepare("DELETE FROM pending WHERE grp = ?");
      del.bind(1, g).run();
    }
    db_.exec(
        "UPDATE events SET done_ms = CAST(strftime('%s', 'now') AS INTEGER) * 1000 WHERE done_ms "
        "IS NULL AND seq NOT IN "
        "(SELECT seq FROM pending)");
    txn.commit();
    for (const auto& [g, n] : drop) {
      spdlog::warn(
          "outbox: pending events of a group no longer configured deleted (--drop-group) "
          "group={} events={}",
          g, n);
    }
    for (const std::string& g : drop_groups) {
      if (std::none_of(drop.begin(), drop.end(), [&](const auto& d) { return d.first == g; })) {
        spdlog::info("outbox: --drop-group {}: no pending events of that group", g);
      }
    }
  }
  insert_event_ = db_.prepare(
      "INSERT INTO events(event_id, runner_id, task_id, attempt, body) VALUES(?, ?, ?, ?, ?)");
  insert_pending_ = db_.prepare("INSERT INTO pending(grp, seq) VALUES(?, ?)");
  delete_pending_ = db_.prepare("DELETE FROM pending WHERE grp = ? AND seq = ?");
  find_seq_ = db_.prepare("SELECT seq FROM events WHERE event_id = ?");
  any_pending_ = db_.prepare("SELECT 1 FROM pending WHERE seq = ? LIMIT 1");
  mark_done_ = db_.prepare("UPDATE events SET done_ms = ? WHERE seq = ?");
  load_ = db_.prepare(
      "SELECT e.seq, e.body FROM pending p JOIN events e ON e.seq = p.seq "
      "WHERE p.grp = ? AND p.seq > ? ORDER BY p.seq LIMIT ?");
  prune_ = db_.prepare(
      "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE done_ms IS NOT NULL AND "
      "done_ms < ? LIMIT ?)");
  quarantine_ = db_.prepare(
      "INSERT OR IGNORE INTO quarantine(grp, seq, event_id, body, reason) "
      "SELECT ?, seq, event_id, body, ? FROM events WHERE seq = ?");
  store::Stmt quarantined = db_.prepare("SELECT COUNT(*) FROM quarantine");
  if (quarantined.step() && quarantined.int64(0) > 0) {
    spdlog::warn(
        "outbox: table quarantine of {} holds {} unreadable events (a row per group that had one "
        "pending; damaged on disk, never sent again)",
        db_.path().string(), quarantined.int64(0));
  }
}

std::unique_ptr<OutboxStore> OutboxStore::open(const std::filesystem::path& path,
                                               store::SyncMode sync, const std::string& owner,
                                               std::vector<std::string> groups,
                                               store::Checkpointer::Options checkpoints,
                                               const std::vector<std::string>& drop_groups) {
  // A lock file, not EXCLUSIVE locking: the Checkpointer opens a second
  // connection.
  auto s = std::make_unique<OutboxStore>(
      store::open_service_db(path, sync, owner, kOutboxSchemaVersion, store::Ownership::kLockFile),
      std::move(groups), drop_groups);
  checkpoints.sync = sync;
  DispatchTurn turn(*s);  // before any other thread has it, but the analysis cannot know
  s->checkpointer_ = std::make_unique<store::Checkpointer>(s->db_, checkpoints);
  return s;
}

std::unique_ptr<OutboxStore> OutboxStore::in_memory(std::vector<std::string> groups) {
  return std::make_unique<OutboxStore>(store::Db(":memory:", store::SyncMode::kNormal),
                                       std::move(groups));
}

void OutboxStore::append(std::vector<StoredEvent>& events) {
  if (events.empty()) return;
  DispatchTurn turn(*this);
  store::Transaction txn(db_);
  for (StoredEvent& e : events) {
    const auto& ev = e.event;
    insert_event_.bind(1, ev.event_id)
        .bind(2, ev.runner.runner_id)
        .bind(3, ev.runner.task_id)
        .bind(4, ev.runner.attempt)
        .bind_blob(5, protocol::encode_timeout_event(ev))
        .run();
    e.seq = db_.last_insert_rowid();
    for (const std::string& g : groups_) insert_pending_.bind(1, g).bind(2, e.seq).run();
  }
  txn.commit();
}

void OutboxStore::ack(const std::vector<std::pair<std::size_t, std::string>>& acks, int64_t wall_ms,
                      std::vector<bool>& acked) {
  acked.assign(acks.size(), false);
  if (acks.empty()) return;
  MaintenanceTurn turn(*this);
  store::Transaction txn(db_);
  for (std::size_t i = 0; i < acks.size(); ++i) {
    const auto& [g, event_id] = acks[i];
    find_seq_.bind(1, event_id);
    if (!find_seq_.step()) {
      find_seq_.reset();
      continue;
    }
    const int64_t seq = find_seq_.int64(0);
    find_seq_.reset();
    delete_pending_.bind(1, groups_[g]).bind(2, seq).run();
    if (db_.changes() == 0) continue;
    acked[i] = true;
    any_pending_.bind(1, seq);
    const bool others = any_pending_.step();
    any_pending_.reset();
    if (!others) mark_done_.bind(1, wall_ms).bind(2, seq).run();
  }
  txn.commit();
}

std::vector<StoredEvent> OutboxStore::load(std::size_t g, int64_t after, std::size_t limit,
                                           std::size_t& quarantined) {
  std::vector<StoredEvent> out;
  std::vector<std::pair<int64_t, std::string>> bad;  // seq, reason
  {
    DispatchTurn turn(*this);
    load_.bind(1, groups_[g]).bind(2, after).bind(3, static_cast<int64_t>(limit));
    while (load_.step()) {
      const int64_t seq = load_.int64(0);
      const std::string body = load_.text(1);
      auto ev = protocol::decode_timeout_event(body);
      if (!ev) {
        bad.emplace_back(seq, ev.error().to_string());
        continue;
      }
      out.push_back({seq, std::move(ev).value()});
    }
    load_.reset();
    if (!bad.empty()) {
      // Written by this program: only a damaged disk gets here. Left pending
      // it would be read and reported at every refill and every start, and
      // the group's backlog would never reach 0.
      store::Transaction txn(db_);
      for (const auto& [seq, reason] : bad) {
        quarantine_.bind(1, groups_[g]).bind(2, reason).bind(3, seq).run();
        delete_pending_.bind(1, groups_[g]).bind(2, seq).run();
      }
      txn.commit();
    }
  }
  for (const auto& [seq, reason] : bad) {
    spdlog::error(
        "outbox: stored event unreadable, quarantined (never sent to this group; kept in table "
        "quarantine) group={} seq={} reason={}",
        groups_[g], seq, reason);
  }
  quarantined = bad.size();
  return out;
}

std::vector<uint64_t> OutboxStore::pending_counts() {
  std::vector<uint64_t> out(groups_.size(), 0);
  DispatchTurn turn(*this);
  store::Stmt q = db_.prepare("SELECT grp, COUNT(*) FROM pending GROUP BY grp");
  while (q.step()) {
    const std::string g = q.text(0);
    for (std::size_t i = 0; i < groups_.size(); ++i) {
      if (groups_[i] == g) out[i] = static_cast<uint64_t>(q.int64(1));
    }
  }
  return out;
}

void OutboxStore::for_each_attempt(const std::function<void(const TimedOutAttempt&)>& fn) {
  DispatchTurn turn(*this);
  store::Stmt q = db_.prepare("SELECT runner_id, task_id, attempt FROM events");
  TimedOutAttempt a;
  while (q.step()) {
    a.runner_id = q.text(0);
    a.task_id = q.text(1);
    a.attempt = static_cast<uint64_t>(q.int64(2));
    fn(a);
  }
}

std::size_t OutboxStore::prune(int64_t before_wall_ms, std::size_t limit) {
  if (limit == 0) return 0;
  MaintenanceTurn turn(*this);
  prune_.bind(1, before_wall_ms).bind(2, static_cast<int64_t>(limit)).run();
  return static_cast<std::size_t>(db_.changes());
}

}  // namespace rmon::monitor
