#pragma once
// The outbox on disk: every timeout event, and which consumer groups have yet
// to acknowledge it, in `<data-dir>/runner-monitor.db` (SQLite, WAL).
//
//   events(seq, event_id, runner_id, task_id, attempt, body, done_ms)
//   pending(grp, seq)      one row per group that has not acknowledged
//   quarantine(grp, seq, event_id, body, reason)
//                          pending rows whose event could not be decoded
//
// A stored event that cannot be decoded (only a damaged disk makes one)
// cannot be sent, and nobody could acknowledge it. The first load that meets
// it moves the group's pending row to `quarantine`, with a copy of the body
// and the decoder's reason, in one transaction, and logs one ERROR: it is no
// longer pending, never read again (nor after a restart), and not lost
// silently: an operator finds it there (and the startup WARN counts them).
// The event row itself goes on like any other whose groups are all done:
// a tombstone, pruned after the retention.
//
// An event is appended (with its pending rows) in one transaction before its
// first send; an acknowledgement deletes its pending row, and the event is
// marked done once no group is left. Done events are kept for a retention
// as tombstones: after a crash they tell the restored table which attempts
// already timed out (the table is saved on its own schedule), so none times
// out twice. The Outbox keeps only a window of each group's pending events in
// memory; the rest wait here however far a group falls behind.
//
// Thread-safe, for two threads: the dispatch thread appends and loads
// (through the Outbox), the ack thread (AckWriter) acknowledges and prunes.
// Each call holds the connection (mu_) for one transaction, and the dispatch
// thread goes first: an ack or prune call waits while the dispatch thread
// waits for the connection, so a timeout's append waits at most for the one
// transaction already running (keep those small: AckWriter's chunks). Its
// checkpointer, when it has one, runs on a thread and connection of its own.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "annotated_mutex.hpp"
#include "rmon/protocol/messages.hpp"
#include "rmon/store/sqlite.hpp"

namespace rmon::monitor {

// The schema version of the outbox database (store::open_service_db).
inline constexpr int64_t kOutboxSchemaVersion = 1;

struct StoredEvent {
  int64_t seq = 0;  // set by append
  protocol::TimeoutEvent event;
};

// An attempt that timed out, as the outbox remembers it.
struct TimedOutAttempt {
  std::string runner_id;
  std::string task_id;
  uint64_t attempt = 0;
};

class OutboxStore {
 public:
  // Takes the database (its schema is created here). Pending events of a
  // group that is no longer configured (a renamed or misspelled --group)
  // refuse the start: throws std::runtime_error naming each such group and
  // its count. Those of a group in `drop_groups` are deleted instead, with a
  // warning (nobody would ever acknowledge them).
  OutboxStore(store::Db db, std::vector<std::string> groups,
              const std::vector<std::string>& drop_groups = {});
  // Opens `path` for this process alone (store::Db::open_owned), and
  // checkpoints its log on a thread and connection of its own
  // (store::Checkpointer, with `checkpoints.sync` set to `sync`): with
  // `sync` normal an append never waits for an fsync. `drop_groups` as in
  // the constructor.
  static std::unique_ptr<OutboxStore> open(const std::filesystem::path& path, store::SyncMode sync,
                                           const std::string& owner,
                                           std::vector<std::string> groups,
                                           store::Checkpointer::Options checkpoints,
                                           const std::vector<std::string>& drop_groups = {});
  // A store in memory only (tests and benchmarks of the logic).
  static std::unique_ptr<OutboxStore> in_memory(std::vector<std::string> groups);

  // The dispatch thread's calls (they go first).
  // Appends `events` in one committed transaction (it survives a crash of
  // the process; with SyncMode::kFull, which fsyncs it, a power loss too),
  // pending for every group, and sets their seq.
  void append(std::vector<StoredEvent>& events);
  // Group g's pending events with seq > `after`, oldest first, at most
  // `limit`. Rows it could not decode are quarantined for g (see above),
  // neither returned nor read again; `quarantined` is set to their number.
  std::vector<StoredEvent> load(std::size_t g, int64_t after, std::size_t limit,
                                std::size_t& quarantined);
  // Pending events per group (same order as the groups).
  std::vector<uint64_t> pending_counts();
  // Every event on file, pending or done: the attempts that timed out.
  void for_each_attempt(const std::function<void(const TimedOutAttempt&)>& fn);

  // The ack thread's calls (they wait for a waiting dispatch thread).
  // Applies acknowledgements in one transaction: acks[i] is (group index,
  // event id); acked[i] is set when that group had it pending. Events no
  // group has pending any more are marked done at `wall_ms`.
  void ack(const std::vector<std::pair<std::size_t, std::string>>& acks, int64_t wall_ms,
           std::vector<bool>& acked);
  // Forgets at most `limit` done events older than `before_wall_ms`, in one
  // transaction; returns how many (fewer than `limit`: none are left).
  std::size_t prune(int64_t before_wall_ms, std::size_t limit);

  // Constant after construction.
  const std::vector<std::string>& groups() const { return groups_; }
  // The background checkpoints' counts; null for a store without them.
  const store::Checkpointer* checkpointer() const { return checkpointer_.get(); }

 private:
  class DispatchTurn;     // holds mu_, ahead of the ack thread
  class MaintenanceTurn;  // holds mu_ once no dispatch call waits

  Mutex mu_;
  std::atomic<int> dispatch_waiting_{0};  // dispatch calls waiting for mu_
  store::Db db_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<store::Checkpointer> checkpointer_;  // set at open; stopped before db_ closes
  const std::vector<std::string> groups_;
  store::Stmt insert_event_ ABSL_GUARDED_BY(mu_), insert_pending_ ABSL_GUARDED_BY(mu_),
      delete_pending_ ABSL_GUARDED_BY(mu_), find_seq_ ABSL_GUARDED_BY(mu_),
      any_pending_ ABSL_GUARDED_BY(mu_), mark_done_ ABSL_GUARDED_BY(mu_),
      load_ ABSL_GUARDED_BY(mu_), prune_ ABSL_GUARDED_BY(mu_), quarantine_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rmon::monitor
