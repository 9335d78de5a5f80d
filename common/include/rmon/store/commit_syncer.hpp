#pragma once
// Pipelined group commit, whichever the engine: the writer commits a batch
// without waiting for the disk, takes a ticket (commit()), and goes on with
// its next batch; the syncer's own thread makes those commits durable with
// one flush for every ticket taken before it began, and settles them, in
// order. Whoever answers for a commit (a reply, an ack) waits until its
// ticket is settled durable. Two engines supply the flush:
//   WalSyncer (wal_syncer.hpp)  SQLite in the data folder: an fdatasync of
//                               its log; a failed one is fatal (failure());
//   PgSyncer (pg_syncer.hpp)    PostgreSQL: a synchronous commit on a second
//                               connection flushes the server's WAL; a
//                               failed one settles its tickets lost, and
//                               the syncer is unhealthy until a flush works
//                               again (it tries every 100 ms, tickets or
//                               not): the writer takes no new work meanwhile.
//
// commit(), take_settled() and wait() from the writer's thread; durable(),
// stats(), failure() and fd() from any.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "rmon/wake_signal.hpp"

namespace rmon::store {

class CommitSyncer {
 public:
  struct Stats {
    std::atomic<uint64_t> syncs{0};    // flushes of the log
    std::atomic<uint64_t> tickets{0};  // commits they made durable
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

  virtual ~CommitSyncer();
  CommitSyncer(const CommitSyncer&) = delete;
  CommitSyncer& operator=(const CommitSyncer&) = delete;

  // After a commit: its ticket.
  uint64_t commit();
  // The last ticket settled durable: with SQLite every ticket up to it is
  // durable; on PostgreSQL some below it may have been settled lost
  // (take_settled() says which).
  uint64_t durable() const { return durable_.load(std::memory_order_acquire); }
  // The settlements since the last call, in ticket order.
  std::vector<Settled> take_settled();
  // Blocks until `ticket` is settled, the syncer failed, or it stops.
  void wait(uint64_t ticket);
  // Why a fatal flush failed: the writer must stop (SQLite: no later fsync
  // would say the pages were dropped). nullopt while none did; once set,
  // nothing more is settled.
  std::optional<std::string> failure() const;
  // False from a lost flush until a flush works again: commits made now
  // would be settled lost, so the writer answers `unavailable` instead of
  // applying anything.
  bool healthy() const { return healthy_.load(std::memory_order_acquire); }
  // Readable when something was settled, health changed, or the syncer
  // failed; drain() it.
  int fd() const { return wake_.fd(); }
  void drain() { wake_.drain(); }
  const Stats& stats() const { return stats_; }

 protected:
  enum class Outcome { kDurable, kLost, kFatal };
  struct Flushed {
    Outcome outcome = Outcome::kDurable;
    std::string why;  // when not durable
  };
  CommitSyncer() = default;
  // Makes every commit before the call durable, or says why not. Runs on the
  // syncer's thread only; also with nothing to cover while unhealthy (a
  // probe).
  virtual Flushed flush() = 0;
  // The engine's constructor calls start() last, and its destructor stop()
  // first (flush() must not run on a half-destroyed object).
  void start(const char* thread_name);
  void stop();

 private:
  void run(const char* thread_name);

  // After a lost flush the next one waits this long (tickets gather).
  static constexpr auto kRetryAfterLost = std::chrono::milliseconds(100);

  Stats stats_;
  WakeSignal wake_;
  std::atomic<uint64_t> durable_{0};
  std::atomic<bool> healthy_{true};
  mutable std::mutex mu_;
  std::condition_variable cv_;          // the thread waits for tickets
  std::condition_variable done_cv_;     // wait() waits for settlements
  uint64_t requested_ = 0;              // guarded by mu_: tickets taken
  uint64_t settled_through_ = 0;        // guarded by mu_
  std::deque<Settled> settled_;         // guarded by mu_: not taken yet
  bool stop_ = false;                   // guarded by mu_
  std::optional<std::string> failure_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace rmon::store
