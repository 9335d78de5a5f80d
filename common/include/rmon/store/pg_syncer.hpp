#pragma once
// Pipelined group commit (commit_syncer.hpp) for PostgreSQL.
//
// The writer's sessions commit with synchronous_commit=off (set here on
// `writer`, and on each of its later connections): a COMMIT returns once
// its WAL record is written, without waiting for the flush, and the writer
// takes a ticket and applies its next batch. This syncer's own connection
// then runs, in one round trip, a transaction that takes a transaction id
// and commits under the server's synchronous_commit (on, by default): that
// commit flushes the WAL through its own record, so through every commit
// before it, the writer's included (the WAL is one sequence). Every ticket
// taken before the flush began is then durable.
//
// The promise is the same as the writer committing synchronously: nothing
// is answered before its commit is flushed. Another replica that reads a
// commit not yet flushed cannot answer for what it then did before its own
// flush, which covers that commit too.
//
// A flush that fails (the connection broke) says nothing of the commits it
// was to cover, and a server that restarted since the last flush (its
// pg_postmaster_start_time changed) may have lost what it had not flushed:
// their tickets are settled *lost*. The writer then answers their requests
// `unavailable` and acknowledges none of their events, as for a commit that
// failed. The syncer goes on: once the server answers again (its session
// reconnects with PgDb's backoff, tried again every 100 ms), later tickets
// are flushed as before.

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "rmon/store/commit_syncer.hpp"
#include "rmon/store/postgres.hpp"
#include "rmon/wake_signal.hpp"

namespace rmon::store {

class PgSyncer final : public CommitSyncer {
 public:
  // Opens a connection of its own to `writer`'s database and reads when the
  // server started (throws PgUnavailable when it cannot), then sets
  // `writer`'s sessions to synchronous_commit=off and starts the thread.
  explicit PgSyncer(PgDb& writer);
  // Stops the thread (a wait() returns); flushes nothing more: call
  // wait(last ticket) first.
  ~PgSyncer() override;
  PgSyncer(const PgSyncer&) = delete;
  PgSyncer& operator=(const PgSyncer&) = delete;

  uint64_t commit() override;
  std::vector<Settled> take_settled() override;
  void wait(uint64_t ticket) override;
  // Never set: a lost flush settles tickets lost, the writer goes on.
  std::optional<std::string> failure() const override { return std::nullopt; }
  int fd() const override { return wake_.fd(); }
  void drain() override { wake_.drain(); }
  const Stats& stats() const override { return stats_; }

 private:
  void run();
  // One flush: empty when every commit before it is durable, else why not.
  std::string flush();

  PgDb db_;                   // the thread's, after the constructor
  std::string server_start_;  // pg_postmaster_start_time of the last flush
  Stats stats_;
  WakeSignal wake_;
  std::mutex mu_;
  std::condition_variable cv_;       // the thread waits for tickets
  std::condition_variable done_cv_;  // wait() waits for settlements
  uint64_t requested_ = 0;           // guarded by mu_: tickets taken
  uint64_t settled_through_ = 0;     // guarded by mu_
  std::deque<Settled> settled_;      // guarded by mu_: not yet taken
  bool stop_ = false;                // guarded by mu_
  std::thread thread_;
};

}  // namespace rmon::store
