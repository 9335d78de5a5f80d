#pragma once
// What the consumer-service skeleton needs of a database, whichever engine
// holds it (SQLite in the data folder, or PostgreSQL shared by replicas):
// one transaction per batch and a savepoint per item inside it. A storage
// failure is an exception; the caller rolls back.

#include <chrono>

namespace rmon::store {

class Db;
class PgDb;

// How often a service on a store shared by replicas re-reads its in-memory
// counts (state counts, slots in use, counters), so that the others'
// changes reach its metrics and stats.
inline constexpr std::chrono::seconds kSharedRefreshEvery{30};
// How old those counts may be when a client asks for `stats`: a replica's
// stats then include the other replicas' changes of a second ago (a client
// waiting for the queue to drain must not see only its own replica's).
inline constexpr std::chrono::seconds kSharedStatsFresh{1};

// Whether those counts are due to be read again: at the first call, then
// when the last read is older than `max_age`.
class RefreshDue {
 public:
  bool operator()(std::chrono::steady_clock::time_point now,
                  std::chrono::steady_clock::duration max_age) {
    if (read_ && now - last_ < max_age) return false;
    read_ = true;
    last_ = now;
    return true;
  }

 private:
  std::chrono::steady_clock::time_point last_{};
  bool read_ = false;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual void begin() = 0;
  virtual void commit() = 0;
  virtual void rollback() noexcept = 0;  // of what begin() opened; never throws
  // One savepoint at a time (the skeleton does not nest them).
  virtual void savepoint() = 0;
  virtual void release_savepoint() = 0;
  virtual void rollback_to_savepoint() noexcept = 0;  // and releases it
  // Whether a savepoint costs next to nothing (SQLite, in-process) rather
  // than a round trip to a server (PostgreSQL).
  virtual bool cheap_savepoints() const { return true; }
  // Throws when the database cannot be reached now (readiness); for SQLite,
  // a local file, nothing to do.
  virtual void probe() {}
  // The SQLite database when that is the engine (its log's fsync is
  // pipelined by a WalSyncer); nullptr otherwise.
  virtual Db* sqlite() { return nullptr; }
  // The PostgreSQL database when that is the engine (its commits' flush is
  // pipelined by a PgSyncer); nullptr otherwise.
  virtual PgDb* postgres() { return nullptr; }
};

}  // namespace rmon::store
