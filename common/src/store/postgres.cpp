#include "rmon/store/postgres.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <random>

namespace rmon::store {

bool is_postgres_url(std::string_view store) {
  return store.starts_with("postgresql://") || store.starts_with("postgres://");
}

std::string redact_url(std::string_view url) {
  // scheme://user:password@host/... -> scheme://user:***@host/...
  const auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  const auto at = url.find('@', scheme + 3);
  if (at == std::string_view::npos) return std::string(url);
  const auto colon = url.find(':', scheme + 3);
  if (colon == std::string_view::npos || colon > at) return std::string(url);
  return std::string(url.substr(0, colon + 1)) + "***" + std::string(url.substr(at));
}

PgDb::PgDb(std::string url) : PgDb(std::move(url), Options{}) {}

namespace {

// libpq settings a service needs so that a server that stops answering
// (a partition, a host that drops packets) fails a call in seconds instead
// of blocking the loop thread for minutes: unless the URL sets them.
std::string with_timeouts(std::string url) {
  const std::pair<const char*, const char*> defaults[] = {
      {"connect_timeout", "3"},     {"keepalives", "1"},       {"keepalives_idle", "5"},
      {"keepalives_interval", "2"}, {"keepalives_count", "3"}, {"tcp_user_timeout", "10000"}};
  const bool uri = is_postgres_url(url);
  for (const auto& [key, value] : defaults) {
    if (url.find(std::string(key) + "=") != std::string::npos) continue;
    if (uri) {
      url += (url.find('?') == std::string::npos ? "?" : "&");
    } else if (!url.empty()) {
      url += " ";
    }
    url += std::string(key) + "=" + value;
  }
  return url;
}

}  // namespace

PgDb::PgDb(std::string url, Options opts)
    : url_(std::move(url)), conninfo_(with_timeouts(url_)), opts_(std::move(opts)) {
  connect();
}

PgDb::~PgDb() {
  session_.reset();
  conn_.reset();
}

void PgDb::connect() {
  session_.reset();
  conn_.reset();
  try {
    auto conn = std::make_unique<pqxx::connection>(conninfo_);
    // A lost connection is ours to notice (a new session: advisory locks and
    // session settings gone), never reopened behind our back by libpqxx.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    conn->inhibit_reactivation(true);
#pragma GCC diagnostic pop
    for (const auto& [name, sql] : statements_) conn->prepare(name, sql);
    auto s = std::make_unique<pqxx::nontransaction>(*conn, "rmon");
    s->exec("SET application_name = " + s->quote(opts_.application_name) +
            "; SET statement_timeout = " + std::to_string(opts_.statement_timeout.count()) +
            "; SET lock_timeout = " + std::to_string(opts_.lock_timeout.count()) +
            "; SET idle_in_transaction_session_timeout = " +
            std::to_string(opts_.idle_in_transaction_timeout.count()) +
            (commit_without_flush_ ? "; SET synchronous_commit = off" : ""));
    conn_ = std::move(conn);
    session_ = std::move(s);
  } catch (const std::exception& e) {
    retry_delay_ = std::clamp(retry_delay_ * 2, opts_.retry_min, opts_.retry_max);
    retry_at_ = std::chrono::steady_clock::now() + retry_delay_;
    last_error_ = e.what();
    while (!last_error_.empty() && last_error_.back() == '\n') last_error_.pop_back();
    throw PgUnavailable("PostgreSQL " + redact_url(url_) + " unreachable: " + last_error_);
  }
  ++connects_;
  if (connects_ > 1) spdlog::info("postgresql reconnected store={}", redact_url(url_));
  retry_delay_ = std::chrono::milliseconds(0);
  last_error_.clear();
}

void PgDb::drop(const std::string& why) {
  if (session_) {
    std::string w = why;
    while (!w.empty() && w.back() == '\n') w.pop_back();
    spdlog::error("postgresql connection lost store={} error=\"{}\"", redact_url(url_), w);
  }
  session_.reset();
  conn_.reset();
  aborted_ = false;
  retry_delay_ = opts_.retry_min;
  retry_at_ = std::chrono::steady_clock::now() + retry_delay_;
  last_error_ = why;
}

pqxx::nontransaction& PgDb::session_or_throw() {
  if (session_) return *session_;
  if (in_txn_) {
    // The transaction died with its connection: the caller rolls back.
    throw PgUnavailable("PostgreSQL connection lost mid-transaction: " + last_error_);
  }
  if (std::chrono::steady_clock::now() < retry_at_) {
    throw PgUnavailable("PostgreSQL " + redact_url(url_) +
                        " unreachable (retrying): " + last_error_);
  }
  connect();
  return *session_;
}

void PgDb::prepare(const std::string& name, const std::string& sql) {
  statements_.emplace_back(name, sql);
  if (conn_) conn_->prepare(name, sql);
}

void PgDb::plain(const char* sql) {
  guarded([&](pqxx::nontransaction& s) { return s.exec(sql); });
}

void PgDb::commit_without_flush() {
  if (in_txn_) throw std::logic_error("PgDb::commit_without_flush inside a transaction");
  commit_without_flush_ = true;
  if (session_) plain("SET synchronous_commit = off");
}

void PgDb::probe() {
  if (in_txn_) return;  // a transaction is under way: the connection is in use
  plain("SELECT 1");
}

void PgDb::begin() {
  if (in_txn_) throw std::logic_error("PgDb::begin inside a transaction");
  plain("BEGIN");
  in_txn_ = true;
  aborted_ = false;
  txn_session_ = connects_;
}

void PgDb::commit() {
  if (!in_txn_) throw std::logic_error("PgDb::commit without a transaction");
  // A transaction whose connection went, or that a failed rollback to a
  // savepoint left aborted, is not committed: PostgreSQL would answer
  // COMMIT with ROLLBACK (no error), or a new session would commit nothing.
  if (!session_ || txn_session_ != connects_ || aborted_) {
    in_txn_ = false;
    const bool aborted = aborted_;
    rollback_quietly();
    throw PgUnavailable(aborted ? "PostgreSQL transaction aborted; rolled back"
                                : "PostgreSQL connection lost mid-transaction: " + last_error_);
  }
  // Whatever happens now, the transaction is over: committed, refused (the
  // server rolled it back), or in doubt with a lost connection, which the
  // caller treats as not committed (nothing was answered yet).
  in_txn_ = false;
  plain("COMMIT");
}

void PgDb::rollback_quietly() noexcept {
  aborted_ = false;
  if (!session_) return;
  try {
    session_->exec("ROLLBACK");
  } catch (const pqxx::broken_connection& e) {
    drop(e.what());
  } catch (...) {  // NOLINT(bugprone-empty-catch): the transaction is gone either way
  }
}

void PgDb::rollback() noexcept {
  if (!in_txn_) return;
  in_txn_ = false;
  rollback_quietly();  // without a session the server rolled it back with the connection
}

void PgDb::savepoint() { plain("SAVEPOINT req"); }
void PgDb::release_savepoint() { plain("RELEASE SAVEPOINT req"); }

void PgDb::rollback_to_savepoint() noexcept {
  if (!session_) return;  // commit() refuses a transaction whose session went
  try {
    session_->exec("ROLLBACK TO SAVEPOINT req; RELEASE SAVEPOINT req");
  } catch (const pqxx::broken_connection& e) {
    drop(e.what());
  } catch (...) {
    aborted_ = true;  // still aborted: commit() refuses it
  }
}

void pg_migrate(PgDb& db, const std::string& component, const std::vector<std::string>& steps) {
  db.begin();
  try {
    // One migrator at a time across every replica; released at commit.
    db.exec("SELECT pg_advisory_xact_lock(hashtext('rmon.migrate'))");
    db.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations(component TEXT NOT NULL, version INTEGER "
        "NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY(component, "
        "version))");
    const pqxx::result r = db.exec(
        "SELECT coalesce(max(version), 0) FROM schema_migrations WHERE component = $1", component);
    const auto have = r[0][0].as<int64_t>();
    const auto known = static_cast<int64_t>(steps.size());
    if (have > known) {
      throw std::runtime_error("the PostgreSQL schema of " + component + " is version " +
                               std::to_string(have) + ", newer than this build's " +
                               std::to_string(known) + ": upgrade this service");
    }
    for (int64_t v = have + 1; v <= known; ++v) {
      db.exec(steps[static_cast<std::size_t>(v - 1)]);
      db.exec("INSERT INTO schema_migrations(component, version) VALUES($1, $2)", component, v);
      spdlog::info("postgresql schema migrated component={} version={}", component, v);
    }
    db.commit();
  } catch (...) {
    db.rollback();
    throw;
  }
}

}  // namespace rmon::store

namespace rmon::store {

std::string pg_owner_id() {
  std::random_device rd;
  char owner[24];
  std::snprintf(owner, sizeof owner, "%08x%08x", rd(), rd());
  return owner;
}

bool PgSingleton::try_hold(PgDb& db) {
  if (session_ != 0 && session_ == db.session()) return true;
  const pqxx::result r = db.exec("SELECT pg_try_advisory_lock($1)", key_);
  if (!r[0][0].as<bool>()) return false;
  session_ = db.session();
  return true;
}

}  // namespace rmon::store
