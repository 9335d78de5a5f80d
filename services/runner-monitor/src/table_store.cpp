#include "table_store.hpp"

#include <charconv>

namespace rmon::monitor {

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS runners(
  runner_id TEXT PRIMARY KEY,
  task_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  state TEXT NOT NULL,
  seq INTEGER NOT NULL,
  has_seq INTEGER NOT NULL,
  timed_out INTEGER NOT NULL,
  pool TEXT NOT NULL,
  pool_type TEXT NOT NULL,
  pid INTEGER,
  interval_ms INTEGER,
  timeout_ms INTEGER NOT NULL,
  last_heartbeat_ms INTEGER NOT NULL,
  added_at_ms INTEGER NOT NULL,
  container_id TEXT,
  job_name TEXT,
  progress BLOB,
  fences TEXT NOT NULL
) WITHOUT ROWID;
)sql";

constexpr char kFenceHash[] = "xxh3-64";

// Fences as "task_hash:attempt:timed_out" joined by ';', into `out`.
void encode_fences(const std::vector<SavedFence>& fences, std::string& out) {
  out.clear();
  char num[24];
  for (const SavedFence& f : fences) {
    if (!out.empty()) out += ';';
    out.append(num, std::to_chars(num, num + sizeof num, f.task_hash).ptr);
    out += ':';
    out.append(num, std::to_chars(num, num + sizeof num, f.attempt).ptr);
    out += ':';
    out += f.timed_out ? '1' : '0';
  }
}

bool decode_fences(std::string_view text, std::vector<SavedFence>& out) {
  while (!text.empty()) {
    const auto end = text.find(';');
    std::string_view item = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    SavedFence f;
    const auto c1 = item.find(':');
    const auto c2 = item.rfind(':');
    if (c1 == std::string_view::npos || c2 == c1) return false;
    const char* b = item.data();
    if (std::from_chars(b, b + c1, f.task_hash).ec != std::errc() ||
        std::from_chars(b + c1 + 1, b + c2, f.attempt).ec != std::errc()) {
      return false;
    }
    f.timed_out = item.substr(c2 + 1) == "1";
    out.push_back(f);
  }
  return true;
}

}  // namespace

TableStore::TableStore(store::Db db) : db_(std::move(db)) {
  db_.exec(kSchema);
  // Fences name their task by a hash. Tables saved before it was a stable
  // one (XXH3-64) hold hashes nothing matches any more: drop those fences
  // once (a fence lives one retention anyway).
  store::Transaction txn(db_);
  store::ensure_meta(db_);
  if (store::meta_text(db_, "fence_hash") != std::optional<std::string>(kFenceHash)) {
    db_.exec("UPDATE runners SET fences = ''");
    store::set_meta_text(db_, "fence_hash", kFenceHash);
  }
  txn.commit();
  upsert_ = db_.prepare(
      "INSERT OR REPLACE INTO runners(runner_id, task_id, attempt, state, seq, has_seq, "
      "timed_out, pool, pool_type, pid, interval_ms, timeout_ms, last_heartbeat_ms, added_at_ms, "
      "container_id, job_name, progress, fences) "
      "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  delete_ = db_.prepare("DELETE FROM runners WHERE runner_id = ?");
}

// Text bound by reference: `r` outlives the statement's run (a save's hot
// loop; SQLite would otherwise copy each of a row's strings).
void TableStore::upsert(const SavedRunner& r) {
  const auto& i = r.info;
  const auto opt_text = [&](int col, const std::optional<std::string>& v) {
    v ? upsert_.bind_ref(col, *v) : upsert_.bind_null(col);
  };
  encode_fences(r.fences, fences_);
  upsert_.bind_ref(1, i.runner_id)
      .bind_ref(2, i.task_id)
      .bind(3, i.attempt)
      .bind_ref(4, protocol::to_string(r.state))
      .bind(5, r.seq)
      .bind(6, r.has_seq ? 1 : 0)
      .bind(7, r.timed_out ? 1 : 0)
      .bind_ref(8, i.pool)
      .bind_ref(9, protocol::to_string(i.pool_type))
      .bind(10, i.pid)
      .bind(11, r.interval_ms)
      .bind(12, static_cast<int64_t>(r.timeout_ms))
      .bind(13, r.last_heard_wall_ms)
      .bind(14, r.added_wall_ms);
  opt_text(15, i.container_id);
  opt_text(16, i.job_name);
  if (i.progress) {
    upsert_.bind_blob_ref(17, *i.progress);
  } else {
    upsert_.bind_null(17);
  }
  upsert_.bind_ref(18, fences_).run();
}

void TableStore::forget(std::string_view runner_id) { delete_.bind_ref(1, runner_id).run(); }

void TableStore::write(const Rows& each) {
  store::Transaction txn(db_);
  Writer w(*this);
  each(w);
  txn.commit();
}

void TableStore::rewrite(const Rows& each) {
  store::Transaction txn(db_);
  db_.exec("DELETE FROM runners");
  Writer w(*this);
  each(w);
  txn.commit();
}

std::size_t TableStore::load(const std::function<void(const SavedRunner&)>& fn,
                             std::size_t& unreadable) {
  store::Stmt q = db_.prepare(
      "SELECT runner_id, task_id, attempt, state, seq, has_seq, timed_out, pool, pool_type, pid, "
      "interval_ms, timeout_ms, last_heartbeat_ms, added_at_ms, container_id, job_name, progress, "
      "fences FROM runners");
  std::size_t n = 0;
  unreadable = 0;
  while (q.step()) {
    SavedRunner r;
    r.info.runner_id = q.text(0);
    r.info.task_id = q.text(1);
    r.info.attempt = static_cast<uint64_t>(q.int64(2));
    const auto state = protocol::parse_runner_state(q.text(3));
    r.seq = static_cast<uint64_t>(q.int64(4));
    r.has_seq = q.int64(5) != 0;
    r.timed_out = q.int64(6) != 0;
    r.info.pool = q.text(7);
    const auto pool_type = protocol::parse_pool_type(q.text(8));
    if (auto pid = q.opt_int64(9)) r.info.pid = static_cast<uint64_t>(*pid);
    if (auto iv = q.opt_int64(10)) r.interval_ms = static_cast<uint64_t>(*iv);
    r.timeout_ms = static_cast<uint32_t>(q.int64(11));
    r.last_heard_wall_ms = q.int64(12);
    r.added_wall_ms = q.int64(13);
    r.info.container_id = q.opt_text(14);
    r.info.job_name = q.opt_text(15);
    r.info.progress = q.opt_text(16);
    if (!state || !pool_type || r.info.attempt == 0 || !decode_fences(q.text(17), r.fences)) {
      ++unreadable;
      continue;
    }
    r.state = *state;
    r.info.pool_type = *pool_type;
    fn(r);
    ++n;
  }
  return n;
}

std::size_t TableStore::size() {
  store::Stmt q = db_.prepare("SELECT COUNT(*) FROM runners");
  q.step();
  return static_cast<std::size_t>(q.int64(0));
}

}  // namespace rmon::monitor
