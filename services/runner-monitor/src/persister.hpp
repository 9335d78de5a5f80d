#pragma once
// Saves the runner table to its TableStore on a schedule: a table observer
// that notes which runners changed (joined, started a task or attempt,
// ended, timed out, were forgotten), and a thread that writes them every
// `interval`. A heartbeat that only refreshes a runner changes nothing on
// disk: after a restart every runner gets a grace anyway (see
// RunnerTable::grant_grace), so its last heartbeat time need not be exact.
// Going from RUNNING to SUSPECT and back is not saved either (a restored
// runner starts RUNNING).
//
// Bounded: at most `max_dirty` notes wait (a runner changed twice is noted
// twice, 37 bytes a note with 36-byte ids); past that the notes are dropped
// and the next save rewrites the whole table instead. A save streams its
// rows to the store one at a time. A rewrite goes through the table in
// passes of about `rewrite_pass` runners (at most kMaxRewritePasses: an
// eighth of a larger table), each a range of ids (RunnerTable::split_ids),
// in one transaction: it holds one range's ids at a time (41 bytes a runner
// with 36-byte ids; holding them all cost 31-38 B per runner of the table
// at the peak of a 1M-runner rewrite). A crash loses the changes
// not yet saved: those of the last interval, or of a save that has not
// finished (a rewrite of 1M runners takes seconds); a clean stop saves
// everything.
//
// Thread-safe: the observer calls come from any thread; run() and
// save_now() from one thread at a time.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "id_list.hpp"
#include "rmon/clock.hpp"
#include "runner_table.hpp"
#include "table_store.hpp"

namespace rmon::monitor {

struct PersisterStats {
  std::atomic<uint64_t> saves{0};  // save passes that wrote something
  std::atomic<uint64_t> rows_written{0};
  std::atomic<uint64_t> rewrites{0};        // whole-table rewrites (the dirty set overflowed)
  std::atomic<uint64_t> rewrite_passes{0};  // the ranges they went through
  std::atomic<uint64_t> last_save_us{0};
  std::atomic<uint64_t> failures{0};
};

// Changed runners noted between saves before a save rewrites the table.
inline constexpr std::size_t kMaxDirtyRunners = 262'144;
// Runners a whole-table rewrite takes in one pass (one range of ids): 1M
// runners make 8 passes, each scanning the table for its range; larger
// tables make larger passes (at most kMaxRewritePasses scans of the table).
inline constexpr std::size_t kRewritePassRunners = 131'072;
inline constexpr std::size_t kMaxRewritePasses = 8;

class Persister final : public TableObserver {
 public:
  Persister(std::unique_ptr<TableStore> store, Millis interval, std::size_t max_dirty,
            std::size_t rewrite_pass = kRewritePassRunners);

  // The table to read runners from; set before the first save.
  void attach(const RunnerTable& table) { table_ = &table; }
  TableStore& store() { return *store_; }

  void on_added(std::string_view runner_id, std::string_view task_id, uint64_t attempt,
                protocol::RunnerState state) override;
  void on_state_changed(std::string_view runner_id, std::string_view task_id, uint64_t attempt,
                        protocol::RunnerState from, protocol::RunnerState to) override;
  void on_removed(std::string_view runner_id, bool expired) override;
  void mark(std::string_view runner_id);

  // Writes what changed since the last save; returns the rows written.
  // Throws if the disk refuses (the ids stay marked for the next try).
  std::size_t save_now();
  // Saves every `interval` until `stop`; then once more.
  void run(const std::atomic<bool>& stop);
  void wake();  // ends the current wait early

  const PersisterStats& stats() const { return stats_; }

 private:
  std::unique_ptr<TableStore> store_;
  const RunnerTable* table_ = nullptr;
  const Millis interval_;
  const std::size_t max_dirty_;
  const std::size_t rewrite_pass_;
  std::mutex mu_;
  std::condition_variable cv_;
  // Ids noted since the last save (cheap to add under the lock: no
  // allocation per id once warm); duplicates are dropped at save.
  IdList dirty_;          // guarded by mu_
  bool rewrite_ = false;  // guarded by mu_
  bool woken_ = false;    // guarded by mu_
  PersisterStats stats_;
};

// Passes table notifications on to several observers.
class ObserverFanout final : public TableObserver {
 public:
  explicit ObserverFanout(std::vector<TableObserver*> to) : to_(std::move(to)) {}
  void on_added(std::string_view runner_id, std::string_view task_id, uint64_t attempt,
                protocol::RunnerState state) override {
    for (auto* o : to_) o->on_added(runner_id, task_id, attempt, state);
  }
  void on_state_changed(std::string_view runner_id, std::string_view task_id, uint64_t attempt,
                        protocol::RunnerState from, protocol::RunnerState to) override {
    for (auto* o : to_) o->on_state_changed(runner_id, task_id, attempt, from, to);
  }
  void on_removed(std::string_view runner_id, bool expired) override {
    for (auto* o : to_) o->on_removed(runner_id, expired);
  }

 private:
  std::vector<TableObserver*> to_;
};

}  // namespace rmon::monitor
