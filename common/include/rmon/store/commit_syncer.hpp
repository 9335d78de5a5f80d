#pragma once
// Pipelined group commit, whichever the engine: the writer commits a batch
// without waiting for the disk, takes a ticket (commit()), and goes on with
// its next batch; the syncer's own thread makes those commits durable and
// settles the tickets, in order. Whoever answers for a commit (a reply, an
// ack) waits until its ticket is settled durable. Two engines:
//   WalSyncer (wal_syncer.hpp)  SQLite in the data folder: an fdatasync of
//                               its log covers every commit before it;
//   PgSyncer (pg_syncer.hpp)    PostgreSQL: a synchronous commit on a second
//                               connection flushes the server's WAL through
//                               every commit before it.
//
// commit(), take_settled() and wait() from the writer's thread; stats(),
// failure() and fd() from any.

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace rmon::store {

class CommitSyncer {
 public:
  struct Stats {
    std::atomic<uint64_t> syncs{0};    // flushes of the log
    std::atomic<uint64_t> tickets{0};  // commits they covered
    std::atomic<uint64_t> lost{0};     // commits settled lost
    std::atomic<uint64_t> last_us{0};  // duration of the last flush
  };
  // Every ticket up to `through` is settled: durable, or lost (its commit
  // may be gone, so what it would answer is not answered), saying why.
  struct Settled {
    uint64_t through = 0;
    bool durable = true;
    std::string why;
  };

  virtual ~CommitSyncer() = default;
  // After a commit: its ticket.
  virtual uint64_t commit() = 0;
  // The settlements since the last call, in ticket order.
  virtual std::vector<Settled> take_settled() = 0;
  // Blocks until `ticket` is settled, the syncer failed, or it stops.
  virtual void wait(uint64_t ticket) = 0;
  // Set when the writer must stop (SQLite: an fsync failed, and no later
  // one would say so); nullopt otherwise.
  virtual std::optional<std::string> failure() const = 0;
  // Readable when something was settled (or the syncer failed); drain() it.
  virtual int fd() const = 0;
  virtual void drain() = 0;
  virtual const Stats& stats() const = 0;
};

}  // namespace rmon::store
