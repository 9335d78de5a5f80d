#pragma once
// Pipelined group commit (commit_syncer.hpp) for SQLite: makes a WAL
// database's commits durable from a thread of its own, so that the writer
// applies and commits its next batch while the last ones are being fsync'd.
//
// The writer's connection runs with synchronous=NORMAL (set here): a commit
// writes its pages to the log, which a crash of the process no longer loses,
// but does not wait for the disk. After each commit (or failed attempt) the
// writer takes a ticket (commit()). This thread then fdatasyncs the log and
// marks durable() every ticket taken before that fsync began, and signals
// fd(). The log is one file written in order, so one fsync covers every
// commit before it; SQLite itself syncs the log before a checkpoint copies
// it, and the database after.
//
// The promise is synchronous=FULL's: what a ticket covers is on the disk
// once durable() >= ticket. Whoever answers for a commit (a reply, an ack)
// waits for that, in order.
//
// A failed fsync is not retried: the kernel may have dropped the pages, and
// no later fsync would say so (PostgreSQL's "fsyncgate"). failure() then
// says why, and the writer must stop (its process exits; what it had not
// answered is asked again or redelivered).
//
// commit(), durable(), wait() and failure() from the writer's thread;
// durable() and failure() from any.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "rmon/store/commit_syncer.hpp"
#include "rmon/store/sqlite.hpp"

namespace rmon::store {

class WalSyncer final : public CommitSyncer {
 public:
  // What makes the log durable: empty on success, else why. The default
  // fdatasyncs the log file; tests put a gate or a failure in its place.
  using SyncFn = std::function<std::string()>;

  // First copies the whole log into the database and syncs both
  // (wal_checkpoint(TRUNCATE) under synchronous=FULL): commits of an earlier
  // run whose fsync failed may still be readable from the page cache, and
  // must not be served as durable. Then sets `writer` to synchronous=NORMAL,
  // opens its log (the name SQLite uses, symlinks resolved) and starts the
  // thread. Throws SqliteError or std::runtime_error (a start-up error).
  explicit WalSyncer(Db& writer, SyncFn sync = {});
  // Stops the thread (a wait() returns); syncs nothing more: call
  // wait(last ticket) first.
  ~WalSyncer() override;

 private:
  // The log's fsync (or sync_); a failure is fatal.
  Flushed flush() override;
  // fdatasync of the log; reopens it (and syncs its folder) when SQLite made
  // a new file. Empty on success, else why (a missing log is a failure).
  std::string sync_log();
  std::string open_log();

  const std::filesystem::path log_path_;
  const SyncFn sync_;  // empty: sync_log()
  int log_fd_ = -1;    // belongs to the thread
  uint64_t log_ino_ = 0;
};

}  // namespace rmon::store
