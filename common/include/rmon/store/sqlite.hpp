#pragma once
// A thin, move-only RAII layer over SQLite (Debian's libsqlite3) for the
// services' durable state: a database in WAL mode, prepared statements and
// transactions. Errors are exceptions (SqliteError): a failed statement is a
// bug or a broken disk, not bad input, and the caller rolls back its batch.
//
// Not thread-safe: one Db and its statements belong to one thread.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

#include "rmon/store/backend.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace rmon::store {

class SqliteError : public std::runtime_error {
 public:
  SqliteError(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

// SQLite's `synchronous` setting in WAL mode: kFull fsyncs the log at every
// commit (an answered request survives power loss); kNormal only at
// checkpoints (it survives a crash of the process, not of the machine).
enum class SyncMode : uint8_t { kFull, kNormal };
std::optional<SyncMode> parse_sync_mode(std::string_view s);

class Stmt;

class Db : public Backend {
 public:
  // Opens (creating) `path` in WAL mode with `sync`. Throws SqliteError with
  // the path and SQLite's message when it cannot be opened, read or written
  // (a corrupt file fails here, not at the first request).
  Db(const std::filesystem::path& path, SyncMode sync);
  // Opens it for this process alone (EXCLUSIVE locking, taken at once): a
  // service that keeps state in memory next to its database must be its only
  // writer. Throws std::runtime_error naming `owner` ("one task-queue per
  // data folder") when another process holds it.
  static Db open_exclusive(const std::filesystem::path& path, SyncMode sync,
                           const std::string& owner);
  // Opens it for this process alone, like open_exclusive, but by a lock file
  // (`<path>.lock`, flock'd while this Db is open) rather than SQLite's
  // EXCLUSIVE locking: this process may then open more connections to it,
  // e.g. a Checkpointer, which copies the log into the database on a thread
  // of its own so that the writer never waits for an fsync.
  static Db open_owned(const std::filesystem::path& path, SyncMode sync, const std::string& owner);
  ~Db() override;
  Db(Db&&) noexcept;
  Db& operator=(Db&&) noexcept;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Runs one or more statements without results (schema, pragmas).
  void exec(const std::string& sql);
  Stmt prepare(std::string_view sql);
  int64_t last_insert_rowid() const;
  int changes() const;  // rows changed by the last statement
  const std::filesystem::path& path() const { return path_; }
  sqlite3* raw() { return db_; }

  // Backend: BEGIN IMMEDIATE ... COMMIT, savepoint "req".
  void begin() override;
  void commit() override;
  void rollback() noexcept override;
  void savepoint() override;
  void release_savepoint() override;
  void rollback_to_savepoint() noexcept override;
  Db* sqlite() override { return this; }

 private:
  sqlite3* db_ = nullptr;
  std::filesystem::path path_;
  int lock_fd_ = -1;  // open_owned's lock file, released after the database closes
};

// A prepared statement. Bind with 1-based indexes, step(), read columns with
// 0-based indexes, reset() to run it again (bindings are cleared).
class Stmt {
 public:
  Stmt() = default;
  ~Stmt();
  Stmt(Stmt&&) noexcept;
  Stmt& operator=(Stmt&&) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, int64_t v);
  Stmt& bind(int i, std::string_view text);
  Stmt& bind_blob(int i, std::string_view bytes);
  Stmt& bind_null(int i);
  // As bind and bind_blob without SQLite's copy, for hot loops: `bytes` must
  // stay as it is until the statement is bound again or reset() (run() resets
  // it, whether it succeeds or throws; a bare step() that throws does not).
  Stmt& bind_ref(int i, std::string_view text);
  Stmt& bind_blob_ref(int i, std::string_view bytes);
  template <class T>
  Stmt& bind(int i, const std::optional<T>& v) {
    return v ? bind(i, *v) : bind_null(i);
  }
  Stmt& bind_opt_blob(int i, const std::optional<std::string>& v) {
    return v ? bind_blob(i, *v) : bind_null(i);
  }
  // Disambiguation for integer literals and unsigned values.
  Stmt& bind(int i, int v) { return bind(i, static_cast<int64_t>(v)); }
  Stmt& bind(int i, uint64_t v) { return bind(i, static_cast<int64_t>(v)); }
  Stmt& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
  Stmt& bind(int i, const char* v) { return bind(i, std::string_view(v)); }

  // Binding a statement left mid-way (a step that threw, a loop that
  // stopped early) resets it first.
  // True when a row is available; false when done. Throws on error.
  bool step();
  // step() until done, then reset(); for statements without results.
  void run();
  void reset();

  bool is_null(int col) const;
  int64_t int64(int col) const;
  std::string text(int col) const;  // empty for NULL
  std::optional<std::string> opt_text(int col) const;
  std::optional<int64_t> opt_int64(int col) const;

 private:
  Stmt& bind_bytes(int i, std::string_view bytes, bool blob, bool copy);
  friend class Db;
  Stmt(sqlite3* db, sqlite3_stmt* s) : db_(db), s_(s) {}
  void check(int rc) const;
  void ready();
  sqlite3* db_ = nullptr;
  sqlite3_stmt* s_ = nullptr;
};

// Backend::begin() on construction (BEGIN IMMEDIATE with SQLite); commit()
// commits; the destructor rolls back what was not committed.
class Transaction {
 public:
  explicit Transaction(Backend& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  Backend& db_;
  bool open_ = true;
};

// A savepoint inside a transaction: release() keeps its writes, the
// destructor rolls back to it otherwise (one request's partial writes, when
// its handler threw, without losing the rest of the batch).
class Savepoint {
 public:
  explicit Savepoint(Backend& db);
  ~Savepoint();
  Savepoint(const Savepoint&) = delete;
  Savepoint& operator=(const Savepoint&) = delete;
  void release();

 private:
  Backend& db_;
  bool open_ = true;
};

// Checkpoints a database in WAL mode from a thread and a connection of its
// own, so that its writer never waits for an fsync (with `synchronous`
// NORMAL, SQLite's only syncs are a checkpoint's, and the log header's when
// the next write restarts the log from its beginning).
//
// It watches the writer's commits (a WAL hook on the writer's connection,
// which replaces SQLite's automatic checkpoints) and checkpoints when the
// writer has been quiet for `quiet` and the last checkpoint is `every` old,
// or at once when the log holds `max_frames` pages. A checkpoint is PASSIVE
// (it never blocks the writer). When it copied the whole log, the
// checkpointer makes one small write itself (it counts checkpoints in a
// table `checkpoints`): that write restarts the log and pays its header's
// fsync, here rather than in the writer's next transaction.
//
// A failed checkpoint is logged once per failure streak and retried at the
// next turn: the log only grows meanwhile. Stops and joins on destruction,
// which must come before the writer's Db closes.
class Checkpointer {
 public:
  struct Options {
    SyncMode sync = SyncMode::kNormal;  // the writer's
    std::chrono::milliseconds every{1000};
    std::chrono::milliseconds quiet{100};
    int max_frames = 16384;  // 64 MiB of 4 KiB pages
  };
  struct Stats {
    std::atomic<uint64_t> done{0};
    std::atomic<uint64_t> failed{0};
    std::atomic<uint64_t> last_us{0};  // duration of the last one, restart write included
  };
  Checkpointer(Db& writer, Options options);
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  const Stats& stats() const { return stats_; }

 private:
  static int on_commit(void* self, sqlite3*, const char*, int frames);
  void run();
  void checkpoint();  // on the thread

  Db* writer_;
  const Options opts_;
  std::atomic<uint64_t> commits_{0};  // the writer's, counted by its WAL hook
  std::atomic<int> frames_{0};        // pages in the log after its last commit
  std::atomic<int64_t> last_commit_ns_{0};
  Db db_;  // this and the next two belong to the thread
  Stmt count_;
  uint64_t seen_commits_ = 0;  // commits_ at the last checkpoint
  bool failing_ = false;       // log a failure streak once
  Stats stats_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// Creates `dir` if needed and checks it is a writable folder; returns
// `dir / (service + ".db")`. Throws std::runtime_error with a clear message
// otherwise (a start-up error).
std::filesystem::path service_db_path(const std::filesystem::path& dir, std::string_view service);

// How open_service_db keeps other processes out.
enum class Ownership : uint8_t {
  kExclusive,  // SQLite EXCLUSIVE locking (Db::open_exclusive)
  kLockFile,   // a lock file, so this process may open more connections (Db::open_owned)
};

// Every database of the stack opens through here: `path` for this process
// alone (a second process gets an error naming `owner`), then its schema
// version (meta `schema_version`) checked: a database written by a newer
// version of this code is refused, with the file and both versions in the
// message; any other gets `schema_version` recorded (schemas only grow:
// CREATE ... IF NOT EXISTS, and each store's own upgrades). Throws
// std::runtime_error or SqliteError (a start-up error).
Db open_service_db(const std::filesystem::path& path, SyncMode sync, const std::string& owner,
                   int64_t schema_version, Ownership how = Ownership::kExclusive);

// Reads and writes one integer in a `meta(key TEXT PRIMARY KEY, value)`
// table, created by ensure_meta(). For schema versions and counters.
void ensure_meta(Db& db);
std::optional<int64_t> meta_int(Db& db, std::string_view key);
void set_meta_int(Db& db, std::string_view key, int64_t value);
std::optional<std::string> meta_text(Db& db, std::string_view key);
void set_meta_text(Db& db, std::string_view key, std::string_view value);

}  // namespace rmon::store
