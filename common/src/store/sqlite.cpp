#include "rmon/store/sqlite.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <utility>

namespace rmon::store {

namespace {

[[noreturn]] void fail(sqlite3* db, int rc, const std::string& context) {
  std::string msg = context + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  throw SqliteError(rc, msg);
}

// Another process holds the database (open_exclusive, open_owned).
std::runtime_error in_use(const std::filesystem::path& path, const std::string& owner,
                          const std::string& why) {
  return std::runtime_error("database " + path.string() + " is in use by another process (" +
                            owner + "): " + why);
}

}  // namespace

std::optional<SyncMode> parse_sync_mode(std::string_view s) {
  if (s == "full") return SyncMode::kFull;
  if (s == "normal") return SyncMode::kNormal;
  return std::nullopt;
}

Db::Db(const std::filesystem::path& path, SyncMode sync) : path_(path) {
  const int rc =
      sqlite3_open_v2(path.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = "cannot open database " + path.string() + ": " +
                      (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
    sqlite3_close(db_);
    db_ = nullptr;
    throw SqliteError(rc, msg);
  }
  sqlite3_extended_result_codes(db_, 1);
  try {
    // Reading the schema is what detects a file that is not a database.
    exec("PRAGMA journal_mode=WAL");
    exec(sync == SyncMode::kFull ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
    exec("PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000; PRAGMA temp_store=MEMORY");
    // Checkpoints keep the log short; a bounded WAL after each checkpoint.
    exec("PRAGMA wal_autocheckpoint=1000; PRAGMA journal_size_limit=67108864");
  } catch (const SqliteError& e) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw SqliteError(e.code(), "database " + path.string() + " is unusable: " + e.what());
  }
}

Db Db::open_exclusive(const std::filesystem::path& path, SyncMode sync, const std::string& owner) {
  auto busy = [&](const SqliteError& e) { return in_use(path, owner, e.what()); };
  try {
    Db db(path, sync);
    db.exec("PRAGMA locking_mode=EXCLUSIVE; PRAGMA busy_timeout=0");
    try {
      db.exec("BEGIN IMMEDIATE; COMMIT");  // takes the lock now, not at the first request
    } catch (const SqliteError& e) {
      if ((e.code() & 0xff) == SQLITE_BUSY || (e.code() & 0xff) == SQLITE_LOCKED) throw busy(e);
      throw;
    }
    db.exec("PRAGMA busy_timeout=5000");
    return db;
  } catch (const SqliteError& e) {
    // Opening reads the file already: a holder of the lock can show up here.
    if ((e.code() & 0xff) == SQLITE_BUSY) throw busy(e);
    throw;
  }
}

Db Db::open_owned(const std::filesystem::path& path, SyncMode sync, const std::string& owner) {
  const std::string lock_path = path.string() + ".lock";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw std::system_error(errno, std::generic_category(), "cannot open lock file " + lock_path);
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      throw in_use(path, owner, lock_path + " is locked");
    }
    throw std::system_error(err, std::generic_category(), "cannot lock " + lock_path);
  }
  try {
    Db db(path, sync);
    db.lock_fd_ = fd;
    return db;
  } catch (...) {
    ::close(fd);
    throw;
  }
}

Db::~Db() {
  if (db_) sqlite3_close_v2(db_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Db::Db(Db&& o) noexcept
    : db_(std::exchange(o.db_, nullptr)),
      path_(std::move(o.path_)),
      lock_fd_(std::exchange(o.lock_fd_, -1)) {}

Db& Db::operator=(Db&& o) noexcept {
  if (this != &o) {
    if (db_) sqlite3_close_v2(db_);
    if (lock_fd_ >= 0) ::close(lock_fd_);
    db_ = std::exchange(o.db_, nullptr);
    path_ = std::move(o.path_);
    lock_fd_ = std::exchange(o.lock_fd_, -1);
  }
  return *this;
}

Checkpointer::Checkpointer(Db& writer, Options options)
    : writer_(&writer), opts_(options), db_(writer.path(), options.sync) {
  db_.exec("PRAGMA wal_autocheckpoint=0");  // only checkpoint() checkpoints here
  db_.exec(
      "CREATE TABLE IF NOT EXISTS checkpoints(id INTEGER PRIMARY KEY CHECK(id = 1), "
      "n INTEGER NOT NULL)");
  count_ = db_.prepare(
      "INSERT INTO checkpoints(id, n) VALUES(1, 1) ON CONFLICT(id) DO UPDATE SET n = n + 1");
  sqlite3_wal_hook(writer_->raw(), &Checkpointer::on_commit, this);
  thread_ = std::thread([this] { run(); });
}

Checkpointer::~Checkpointer() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  sqlite3_wal_hook(writer_->raw(), nullptr, nullptr);
}

int Checkpointer::on_commit(void* self, sqlite3*, const char*, int frames) {
  auto* c = static_cast<Checkpointer*>(self);
  c->frames_.store(frames, std::memory_order_relaxed);
  c->last_commit_ns_.store(std::chrono::steady_clock::now().time_since_epoch().count(),
                           std::memory_order_relaxed);
  c->commits_.fetch_add(1, std::memory_order_release);
  return SQLITE_OK;
}

void Checkpointer::checkpoint() {
  const uint64_t commits = commits_.load(std::memory_order_acquire);
  const auto start = std::chrono::steady_clock::now();
  int log_frames = 0;
  int copied = 0;
  int rc = sqlite3_wal_checkpoint_v2(db_.raw(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                     &copied);
  std::string error;
  if (rc != SQLITE_OK) {
    error = sqlite3_errmsg(db_.raw());
  } else if (log_frames > 0 && copied == log_frames) {
    // The whole log is in the database: restart it now, from here.
    try {
      Transaction txn(db_);
      count_.run();
      txn.commit();
    } catch (const SqliteError& e) {
      rc = e.code();
      error = e.what();
    }
  }
  if (rc == SQLITE_OK) {
    seen_commits_ = commits;
    stats_.done.fetch_add(1, std::memory_order_relaxed);
    stats_.last_us.store(
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                  std::chrono::steady_clock::now() - start)
                                  .count()),
        std::memory_order_relaxed);
    if (failing_) {
      failing_ = false;
      spdlog::warn("checkpoint of {} works again", db_.path().string());
    }
    return;
  }
  stats_.failed.fetch_add(1, std::memory_order_relaxed);
  if (!failing_) {
    failing_ = true;
    spdlog::error("checkpoint of {} failed (retried; its log grows meanwhile): {}",
                  db_.path().string(), error);
  }
}

void Checkpointer::run() {
  pthread_setname_np(pthread_self(), "rmon-checkpoint");
  const auto tick = std::min(opts_.quiet, opts_.every);
  auto last = std::chrono::steady_clock::now();
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, tick, [this] { return stop_; })) {
    lock.unlock();
    const auto now = std::chrono::steady_clock::now();
    if (commits_.load(std::memory_order_acquire) != seen_commits_) {
      const auto last_commit = std::chrono::steady_clock::time_point(
          std::chrono::steady_clock::duration(last_commit_ns_.load(std::memory_order_relaxed)));
      if (frames_.load(std::memory_order_relaxed) >= opts_.max_frames ||
          (now - last_commit >= opts_.quiet && now - last >= opts_.every)) {
        checkpoint();
        last = now;
      }
    }
    lock.lock();
  }
}

void Db::exec(const std::string& sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    throw SqliteError(rc, msg + " (in: " + sql.substr(0, 80) + ")");
  }
}

Stmt Db::prepare(std::string_view sql) {
  sqlite3_stmt* s = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  if (rc != SQLITE_OK) fail(db_, rc, "prepare '" + std::string(sql.substr(0, 80)) + "'");
  return Stmt(db_, s);
}

int64_t Db::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
int Db::changes() const { return sqlite3_changes(db_); }

Stmt::~Stmt() {
  if (s_) sqlite3_finalize(s_);
}
Stmt::Stmt(Stmt&& o) noexcept
    : db_(std::exchange(o.db_, nullptr)), s_(std::exchange(o.s_, nullptr)) {}
Stmt& Stmt::operator=(Stmt&& o) noexcept {
  if (this != &o) {
    if (s_) sqlite3_finalize(s_);
    db_ = std::exchange(o.db_, nullptr);
    s_ = std::exchange(o.s_, nullptr);
  }
  return *this;
}

void Stmt::check(int rc) const {
  if (rc != SQLITE_OK) fail(db_, rc, std::string("bind in '") + sqlite3_sql(s_) + "'");
}

Stmt& Stmt::bind(int i, int64_t v) {
  ready();
  check(sqlite3_bind_int64(s_, i, v));
  return *this;
}
Stmt& Stmt::bind_bytes(int i, std::string_view bytes, bool blob, bool copy) {
  ready();
  const int n = static_cast<int>(bytes.size());
  const auto keep = copy ? SQLITE_TRANSIENT : SQLITE_STATIC;
  check(blob ? sqlite3_bind_blob(s_, i, bytes.data(), n, keep)
             : sqlite3_bind_text(s_, i, bytes.data(), n, keep));
  return *this;
}
Stmt& Stmt::bind(int i, std::string_view text) { return bind_bytes(i, text, false, true); }
Stmt& Stmt::bind_blob(int i, std::string_view bytes) { return bind_bytes(i, bytes, true, true); }
Stmt& Stmt::bind_ref(int i, std::string_view text) { return bind_bytes(i, text, false, false); }
Stmt& Stmt::bind_blob_ref(int i, std::string_view bytes) {
  return bind_bytes(i, bytes, true, false);
}
Stmt& Stmt::bind_null(int i) {
  ready();
  check(sqlite3_bind_null(s_, i));
  return *this;
}

void Stmt::ready() {
  if (sqlite3_stmt_busy(s_)) sqlite3_reset(s_);
}

bool Stmt::step() {
  const int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  const std::string sql = sqlite3_sql(s_);
  sqlite3_reset(s_);
  fail(db_, rc, "step '" + sql.substr(0, 80) + "'");
}

void Stmt::run() {
  try {
    while (step()) {
    }
  } catch (...) {
    reset();  // no binding outlives a failed run (bind_ref's buffers may go next)
    throw;
  }
  reset();
}

void Stmt::reset() {
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
}

bool Stmt::is_null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
int64_t Stmt::int64(int col) const { return sqlite3_column_int64(s_, col); }
std::string Stmt::text(int col) const {
  const void* p = sqlite3_column_blob(s_, col);
  const int n = sqlite3_column_bytes(s_, col);
  return p ? std::string(static_cast<const char*>(p), static_cast<std::size_t>(n)) : std::string();
}
std::optional<std::string> Stmt::opt_text(int col) const {
  if (is_null(col)) return std::nullopt;
  return text(col);
}
std::optional<int64_t> Stmt::opt_int64(int col) const {
  if (is_null(col)) return std::nullopt;
  return int64(col);
}

void Db::begin() { exec("BEGIN IMMEDIATE"); }
void Db::commit() { exec("COMMIT"); }
void Db::rollback() noexcept {
  try {
    exec("ROLLBACK");
  } catch (...) {  // NOLINT(bugprone-empty-catch): nothing more to undo
  }
}
void Db::savepoint() { exec("SAVEPOINT req"); }
void Db::release_savepoint() { exec("RELEASE req"); }
void Db::rollback_to_savepoint() noexcept {
  try {
    exec("ROLLBACK TO req; RELEASE req");
  } catch (...) {  // NOLINT(bugprone-empty-catch): the transaction rolls back then
  }
}

Transaction::Transaction(Backend& db) : db_(db) { db_.begin(); }
Transaction::~Transaction() {
  if (open_) db_.rollback();
}
void Transaction::commit() {
  db_.commit();
  open_ = false;
}

Savepoint::Savepoint(Backend& db) : db_(db) { db_.savepoint(); }
Savepoint::~Savepoint() {
  if (open_) db_.rollback_to_savepoint();
}
void Savepoint::release() {
  db_.release_savepoint();
  open_ = false;
}

std::filesystem::path service_db_path(const std::filesystem::path& dir, std::string_view service) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    throw std::runtime_error("cannot create data folder " + dir.string() + ": " + ec.message());
  }
  if (!std::filesystem::is_directory(dir, ec)) {
    throw std::runtime_error("data folder " + dir.string() + " is not a folder");
  }
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    throw std::runtime_error("data folder " + dir.string() + " is not writable: " +
                             std::error_code(errno, std::generic_category()).message());
  }
  return dir / (std::string(service) + ".db");
}

void ensure_meta(Db& db) {
  db.exec("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID");
}

std::optional<int64_t> meta_int(Db& db, std::string_view key) {
  Stmt s = db.prepare("SELECT value FROM meta WHERE key = ?1");
  s.bind(1, key);
  if (!s.step()) return std::nullopt;
  return s.opt_int64(0);
}

void set_meta_int(Db& db, std::string_view key, int64_t value) {
  Stmt s = db.prepare(
      "INSERT INTO meta(key, value) VALUES(?1, ?2) "
      "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
  s.bind(1, key).bind(2, value).run();
}

std::optional<std::string> meta_text(Db& db, std::string_view key) {
  Stmt s = db.prepare("SELECT value FROM meta WHERE key = ?1");
  s.bind(1, key);
  if (!s.step()) return std::nullopt;
  return s.opt_text(0);
}

void set_meta_text(Db& db, std::string_view key, std::string_view value) {
  Stmt s = db.prepare(
      "INSERT INTO meta(key, value) VALUES(?1, ?2) "
      "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
  s.bind(1, key).bind(2, value).run();
}

Db open_service_db(const std::filesystem::path& path, SyncMode sync, const std::string& owner,
                   int64_t schema_version, Ownership how) {
  Db db = how == Ownership::kLockFile ? Db::open_owned(path, sync, owner)
                                      : Db::open_exclusive(path, sync, owner);
  Transaction txn(db);
  ensure_meta(db);
  // task-queue databases before open_service_db kept it under their own key.
  auto found = meta_int(db, "schema_version");
  if (!found) found = meta_int(db, "task_queue_schema");
  if (found && *found > schema_version) {
    throw std::runtime_error("database " + path.string() + " has schema version " +
                             std::to_string(*found) + ", newer than this build reads (" +
                             std::to_string(schema_version) + "); run a newer build");
  }
  if (found != schema_version) set_meta_int(db, "schema_version", schema_version);
  txn.commit();
  return db;
}

}  // namespace rmon::store
