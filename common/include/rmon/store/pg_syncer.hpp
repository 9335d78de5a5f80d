#pragma once
// Pipelined group commit (commit_syncer.hpp) for PostgreSQL.
//
// The writer's sessions commit with synchronous_commit=off (set here on
// `writer`, and on each of its later connections): a COMMIT returns once
// its WAL record is written, without waiting for the flush, and the writer
// takes a ticket and applies its next batch. This syncer's own connection
// then runs, in one round trip, a transaction that writes a WAL record (a
// transactional pg_logical_emit_message, allowed to any user at any
// wal_level) and commits under the server's synchronous_commit (on, by
// default). A commit that wrote WAL waits for the WAL to be flushed through
// its own record, so through every commit before it, the writer's included
// (the WAL is one sequence). Every ticket taken before the flush began is
// then durable. (A transaction that only takes an id, txid_current(),
// writes no WAL before its commit and does not wait for the flush.)
//
// The promise is the same as the writer committing synchronously: nothing
// is answered before its commit is flushed. Another replica that reads a
// commit not yet flushed cannot answer for what it then did before its own
// flush, which covers that commit too.
//
// A flush that fails (the connection broke, the server went away) says
// nothing of the commits it was to cover, and neither does the first flush
// on a new connection: the server may have restarted or recovered from a
// crash in between, losing what it had not flushed. Their tickets are
// settled *lost*: the writer answers their requests `unavailable` and
// acknowledges none of their events, as for a commit that failed. The
// syncer is then unhealthy (the writer answers everything `unavailable`)
// and tries again every 100 ms, on a new connection, until a flush works.

#include <memory>
#include <string>

#include "rmon/store/commit_syncer.hpp"
#include "rmon/store/postgres.hpp"

namespace rmon::store {

class PgSyncer final : public CommitSyncer {
 public:
  // Opens a connection of its own to `writer`'s database (throws
  // PgUnavailable when it cannot), then sets `writer`'s sessions to
  // synchronous_commit=off and starts the thread.
  explicit PgSyncer(PgDb& writer);
  // Stops the thread (a wait() returns); flushes nothing more: call
  // wait(last ticket) first.
  ~PgSyncer() override;

 private:
  // One round trip; lost when it fails or runs on a new connection.
  Flushed flush() override;

  const std::string url_;
  std::unique_ptr<PgDb> db_;  // the thread's, after the constructor; null after a failure
  bool fresh_ = false;        // db_ connected since the last flush that worked
};

}  // namespace rmon::store
