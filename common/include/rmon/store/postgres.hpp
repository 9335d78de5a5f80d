#pragma once
// PostgreSQL for the consumer services' shared state (`--store
// postgresql://...`), through libpqxx: one connection, prepared statements,
// and the skeleton's transaction per batch with a savepoint per item.
//
// Transactions are driven by plain BEGIN / SAVEPOINT / COMMIT on a
// nontransaction: libpqxx's own transaction classes abort the whole
// transaction when one statement fails, which would undo every other item
// of the batch (jtv/libpqxx#512), where a savepoint undoes just the one.
//
// When the server goes away (a broken connection, or none to be had), calls
// throw PgUnavailable at once: the skeleton answers `unavailable` and leaves
// events unacknowledged. The next call reconnects, no sooner than a backoff
// (doubling from 100 ms to 5 s) after the last failed attempt, so a service
// whose database is down answers quickly rather than hanging on connects.
// Each session sets statement, lock and idle-in-transaction timeouts, so no
// statement or transaction stays open for long, and the connection has
// connect, keepalive and TCP user timeouts (unless the URL sets them), so a
// server that stops answering fails a call in seconds.
//
// Not thread-safe: one PgDb belongs to the service's loop thread.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "rmon/store/backend.hpp"

namespace rmon::store {

// The database cannot be reached now; retry later.
class PgUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// True when `store` names a PostgreSQL database (postgresql:// or
// postgres://); the empty store is SQLite in the data folder.
bool is_postgres_url(std::string_view store);
// The URL with its password replaced by ***, for logs.
std::string redact_url(std::string_view url);

class PgDb final : public Backend {
 public:
  struct Options {
    std::chrono::milliseconds retry_min{100};
    std::chrono::milliseconds retry_max{5000};
    std::chrono::milliseconds statement_timeout{10'000};
    std::chrono::milliseconds lock_timeout{2'000};
    std::chrono::milliseconds idle_in_transaction_timeout{5'000};
    std::string application_name = "rmon";
  };
  // Connects to `url` (a postgresql:// URI or a libpq key=value string).
  // Throws PgUnavailable with the server's message when it cannot.
  explicit PgDb(std::string url);
  PgDb(std::string url, Options opts);
  ~PgDb() override;
  PgDb(const PgDb&) = delete;
  PgDb& operator=(const PgDb&) = delete;

  // Registers a statement, prepared on this connection and every later one.
  void prepare(const std::string& name, const std::string& sql);
  // Runs a prepared statement, inside the open transaction or on its own.
  // Arguments as libpqxx takes them: nullptr for NULL, bytes() for bytea.
  template <class... A>
  pqxx::result run(const std::string& name, A&&... args) {
    return guarded(
        [&](pqxx::nontransaction& s) { return s.exec_prepared(name, std::forward<A>(args)...); });
  }
  // Runs SQL text (schema, one-off queries), with parameters $1...
  template <class... A>
  pqxx::result exec(const std::string& sql, A&&... args) {
    return guarded([&](pqxx::nontransaction& s) {
      if constexpr (sizeof...(A) == 0) {
        return s.exec(sql);
      } else {
        return s.exec_params(sql, std::forward<A>(args)...);
      }
    });
  }

  void begin() override;
  void commit() override;
  void rollback() noexcept override;
  void savepoint() override;
  void release_savepoint() override;
  void rollback_to_savepoint() noexcept override;
  bool cheap_savepoints() const override { return false; }
  void probe() override;  // SELECT 1, outside a transaction
  PgDb* postgres() override { return this; }
  // From now on, this session and every later one commit with
  // synchronous_commit=off: a COMMIT returns before its WAL is flushed.
  // Only for a writer whose answers wait for a PgSyncer's flush.
  void commit_without_flush();

  bool in_transaction() const { return in_txn_; }
  // Connections made so far (1 after a start; each reconnect adds one).
  uint64_t connects() const { return connects_; }
  // A number that changes with each new connection: session state (such as
  // an advisory lock) held under an older one is gone.
  uint64_t session() const { return connects_; }
  const std::string& url() const { return url_; }

  // Arguments for run()/exec().
  static pqxx::binarystring bytes(std::string_view b) { return {b.data(), b.size()}; }
  static const char* text_or_null(const std::optional<std::string>& s) {
    return s ? s->c_str() : nullptr;
  }
  // A bytea column's bytes.
  static std::string read_bytes(const pqxx::field& f) {
    return f.is_null() ? std::string() : pqxx::binarystring(f).str();
  }
  static std::optional<std::string> read_opt_bytes(const pqxx::field& f) {
    if (f.is_null()) return std::nullopt;
    return pqxx::binarystring(f).str();
  }
  static std::optional<std::string> read_opt_text(const pqxx::field& f) {
    if (f.is_null()) return std::nullopt;
    return std::string(f.c_str(), f.size());
  }

 private:
  template <class Fn>
  pqxx::result guarded(Fn&& fn) {
    pqxx::nontransaction& s = session_or_throw();
    try {
      return fn(s);
    } catch (const pqxx::broken_connection& e) {
      drop(e.what());
      throw PgUnavailable(std::string("PostgreSQL connection lost: ") + e.what());
    }
  }
  pqxx::nontransaction& session_or_throw();
  void connect();
  void drop(const std::string& why);
  void plain(const char* sql);
  void rollback_quietly() noexcept;

  std::string url_;
  std::string conninfo_;  // url_ with connect and keepalive timeouts added
  Options opts_;
  std::unique_ptr<pqxx::connection> conn_;
  std::unique_ptr<pqxx::nontransaction> session_;
  std::vector<std::pair<std::string, std::string>> statements_;
  bool in_txn_ = false;
  bool commit_without_flush_ = false;
  bool aborted_ = false;      // a rollback to a savepoint failed: the transaction is lost
  uint64_t txn_session_ = 0;  // the connection the open transaction began on
  uint64_t connects_ = 0;
  std::chrono::steady_clock::time_point retry_at_{};
  std::chrono::milliseconds retry_delay_{0};
  std::string last_error_;
};

// A random id for this process's rows where replicas must not share a row
// (per-replica counter rows): 16 hex digits.
std::string pg_owner_id();

// One holder among the replicas of a session-level advisory lock (one
// reconciler at a time): try() takes it if free, and keeps it for the
// connection's life; a replica that dies, or loses its connection, lets it go
// to another.
class PgSingleton {
 public:
  explicit PgSingleton(int64_t key) : key_(key) {}
  // Whether this connection holds the lock now (taking it if it is free).
  bool try_hold(PgDb& db);

 private:
  int64_t key_;
  uint64_t session_ = 0;  // the session that holds it; 0: none
};

// Applies `steps` (step i is schema version i + 1) that `db` has not
// applied yet, for `component`, in one transaction under an advisory lock:
// replicas starting together apply each step once. A database whose version
// for `component` is newer than steps.size() was written by newer code and
// is refused (std::runtime_error naming both versions).
void pg_migrate(PgDb& db, const std::string& component, const std::vector<std::string>& steps);

}  // namespace rmon::store
