#pragma once
// The sharded, lock-striped runner table.
//
// A runner id hashes to one of a power-of-two number of shards; each shard has
// its own mutex, hash map and deadline index, so ingest, the sweep and queries
// contend on one shard at a time. The table applies the protocol's state
// machine (seq ordering, lifecycles, suspect, timeout, retention) and turns
// expired runners into timeout events. It does no I/O and reads time only from
// its arguments: tests drive it with a fake clock.
//
// Thread-safe: every public method may be called from any thread.

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "deadline_index.hpp"
#include "id_list.hpp"
#include "rmon/clock.hpp"
#include "rmon/protocol/messages.hpp"
#include "runner.hpp"
#include "saved_runner.hpp"

namespace rmon::monitor {

using protocol::Heartbeat;
using protocol::RunnerView;
using protocol::TimeoutEvent;

struct TableOptions {
  uint32_t shards = 64;  // power of two
  uint64_t default_timeout_ms = 60'000;
  uint64_t min_timeout_ms = 100;
  uint64_t max_timeout_ms = 86'400'000;
  double suspect_ratio = 0.5;  // share of the timeout after which RUNNING shows SUSPECT
  // A RUNNING runner's suspect check is rounded up to this grid (deadlines
  // are exact), so a healthy fleet's checks come in batches, at most
  // 1000 / suspect_grid_ms a second, not one dispatcher wake-up per runner.
  // Kept small: a deadline falling while a batch is swept waits for it, and
  // at 1M runners with 20 s timeouts a 100 ms grid made batches of 10,000
  // checks (bench/detection_bench --suspect-grid-ms compares grids).
  uint64_t suspect_grid_ms = 10;
  uint64_t retention_ms = 600'000;       // how long COMPLETED and FAILED runners stay queryable
  std::string event_id_prefix = "rmon";  // event ids are "<prefix>-<counter>"

  // Empty when valid, else what is wrong (a start-up error).
  std::string validate() const;
};

// What applying one heartbeat did.
enum class Applied : uint8_t {
  kAdded,         // unknown runner, now tracked
  kUpdated,       // same lifecycle, newer seq
  kNewLifecycle,  // new task_id or higher attempt
  kDuplicate,     // seq not greater than the last accepted: ignored
  kLate,          // the attempt already ended (timed out or terminal): ignored
  kStaleAttempt,  // lower attempt than the current one: ignored
};
inline bool accepted(Applied a) {
  return a == Applied::kAdded || a == Applied::kUpdated || a == Applied::kNewLifecycle;
}

// A timeout produced by a sweep, with the deadline it missed (for lateness).
struct Expired {
  TimeoutEvent event;
  MonoTime deadline;
};

// Lifecycle notifications. Called once the change is made and the shard's
// lock released (so they may do I/O), on the thread that made the change:
// calls from different threads may interleave, and may reach the observer in
// a different order than the changes were made. Must be thread-safe.
class TableObserver {
 public:
  virtual ~TableObserver() = default;
  // A new runner, or a new lifecycle (task or attempt) of a known one.
  virtual void on_added(std::string_view runner_id, std::string_view task_id, uint64_t attempt,
                        RunnerState state) = 0;
  virtual void on_state_changed(std::string_view runner_id, std::string_view task_id,
                                uint64_t attempt, RunnerState from, RunnerState to) = 0;
  virtual void on_removed(std::string_view runner_id, bool expired) = 0;
};

// A snapshot of the table's counters (summed over shards when taken).
struct TableCounters {
  uint64_t accepted = 0;
  uint64_t duplicates = 0;
  uint64_t late = 0;
  uint64_t stale_attempts = 0;
  uint64_t timeouts = 0;
  uint64_t expired_removed = 0;       // forgotten after retention
  std::array<int64_t, 4> by_state{};  // indexed by RunnerState
};

struct RunnerFilter {
  std::optional<RunnerState> state;
  std::optional<std::string> pool;
};

enum class ControlError : uint8_t { kNone, kNotFound, kExists, kConflict, kBadRequest };

class RunnerTable {
 public:
  // Runners past their deadline while a guard holds are looked at again
  // this much later.
  static constexpr Millis kCheckGrid{100};

  explicit RunnerTable(TableOptions opts, TableObserver* observer = nullptr);
  ~RunnerTable();
  RunnerTable(const RunnerTable&) = delete;
  RunnerTable& operator=(const RunnerTable&) = delete;

  // Ingest: applies one decoded heartbeat received at `now` / `wall_ms`.
  Applied apply(const Heartbeat& hb, MonoTime now, int64_t wall_ms);

  // Processes everything due at `now` in every shard: suspect marks, timeouts
  // (appended to `out`) and retention expiry. Cost is proportional to what is
  // due, plus one atomic load per shard. With `hold_timeouts` (the storm
  // brake) nobody is convicted: runners past their deadline stay SUSPECT and
  // are looked at again a check later; returns how many were held.
  std::size_t sweep(MonoTime now, int64_t wall_ms, std::vector<Expired>& out,
                    bool hold_timeouts = false);

  // The earliest instant anything is due, if anything is armed.
  std::optional<MonoTime> next_due() const;

  // Waking the dispatcher. `waker` is called (from any thread, under a shard
  // lock: it must be cheap and thread-safe) when something is armed earlier
  // than the instant last given to plan_wake. Set it before other threads use
  // the table. plan_wake(nullopt) means "awake": no calls until the next plan.
  void set_waker(std::function<void()> waker) { waker_ = std::move(waker); }
  void plan_wake(std::optional<MonoTime> at);

  // Queries. `silence_ms` is computed against `now`.
  std::optional<RunnerView> get(const std::string& runner_id, MonoTime now) const;
  // Sorted by runner id: the first `limit` matching runners whose ids sort
  // after `after` (when set), cut short before their encoded size
  // (protocol::encoded_size_bound) would pass `max_bytes`; at least one.
  struct ListPage {
    std::vector<RunnerView> runners;
    bool more = false;  // further runners match: page on from the last id
  };
  ListPage list(const RunnerFilter& f, std::size_t limit, MonoTime now,
                const std::optional<std::string>& after = std::nullopt,
                std::size_t max_bytes = std::numeric_limits<std::size_t>::max()) const;
  std::size_t count(const RunnerFilter& f) const;
  // Reconciliation's `lookup`: for each of `ids`, in order (a repeated id is
  // answered each time), the runner's short state at `now`, or nullopt when
  // unknown. The ids are grouped by shard: each shard's lock is taken at most
  // once per call. `timed_out` is set for a FAILED runner whose attempt timed
  // out. `state_for_ms` is derived from what a runner keeps (no field of its
  // own; clamped at 0, whole milliseconds):
  // - running: since its last accepted message;
  // - suspect: since its last message plus the suspect share of its timeout
  //   (the instant it became suspect, up to a check grid before the sweep
  //   showed it);
  // - completed, failed: since its last accepted message, the terminal one
  //   (for an end set by the control `set_state`, the last message before);
  // - failed by timeout: since its deadline (last message plus timeout).
  std::vector<std::optional<protocol::LookupEntry>> lookup(const std::vector<std::string>& ids,
                                                           MonoTime now) const;
  // Live runners silent past their deadline (held by a guard, or about to be
  // convicted). Scans every runner: for a gauge refreshed now and then.
  std::size_t count_overdue(MonoTime now) const;
  std::size_t size() const;

  // Control. `add` starts a new lifecycle from `spec` (its seq is ignored) and
  // fails with kExists while the runner is live (RUNNING or SUSPECT).
  ControlError add(const Heartbeat& spec, MonoTime now, int64_t wall_ms);
  bool remove(const std::string& runner_id);
  // RUNNING re-arms (refused with kConflict for an attempt that timed out);
  // COMPLETED and FAILED end the attempt without an event; SUSPECT is refused.
  ControlError set_state(const std::string& runner_id, RunnerState state, MonoTime now,
                         int64_t wall_ms);

  // Persistence (runner_table_persist.cpp). `save` copies one runner as it
  // is now (nullopt when unknown); `for_each_saved` every runner, a shard at a
  // time. `restore` puts a saved runner back into an empty slot (a live one
  // comes back RUNNING, its silence counted from its saved last heartbeat;
  // fences and retention restart from `now`) and is for start-up, before
  // other threads use the table. `mark_timed_out` ends a restored attempt
  // the outbox says timed out (no event: it has one); true if it changed.
  // The second `save` fills `out` in place (its strings keep their buffers:
  // no allocation per runner in a save's loop) and is false when unknown.
  // `append_ids` adds the id of every runner in `range` to `ids` (a shard
  // at a time; a whole-table save sorts them first). `split_ids` gives up to
  // `parts - 1` sorted ids that cut the table into about equal ranges, from
  // a sample (ids are hashed to shards, so a few shards' ids are a fair
  // sample): a whole-table save then holds one range's ids at a time.
  std::optional<SavedRunner> save(std::string_view runner_id) const;
  bool save(std::string_view runner_id, SavedRunner& out) const;
  void for_each_saved(const std::function<void(const SavedRunner&)>& fn) const;
  struct IdRange {
    std::string_view from;               // ids >= from
    std::optional<std::string_view> to;  // and < to; none: no upper bound
    double share = 1.0;                  // about what share of the table (to reserve room)
    // Range k of the splits.size() + 1 that `splits` (from split_ids) cut.
    static IdRange nth(const std::vector<std::string>& splits, std::size_t k) {
      IdRange r;
      if (k > 0) r.from = splits[k - 1];
      if (k < splits.size()) r.to = splits[k];
      r.share = 1.0 / static_cast<double>(splits.size() + 1);
      return r;
    }
  };
  void append_ids(IdList& ids, const IdRange& range) const;
  std::vector<std::string> split_ids(std::size_t parts) const;
  bool restore(const SavedRunner& saved, MonoTime now, int64_t wall_ms);
  bool mark_timed_out(std::string_view runner_id, std::string_view task_id, uint64_t attempt,
                      MonoTime now);

  // Grace: no runner silent since before `from` is convicted before `from`
  // plus its own timeout (or plus `grace` when set); it is re-armed for then.
  // After a restart, a stall of the monitor itself and a storm brake's
  // release. A grace never shortens another: a runner several cover is left
  // alone until the latest of their ends. (Kept as two: the latest grace of
  // own timeouts, and one fixed grace, the span of every fixed grace given:
  // from the latest start to the latest end. Only a restart gives a fixed
  // one.) Thread-safe.
  void grant_grace(MonoTime from, std::optional<Millis> grace = std::nullopt);

  TableCounters counters() const;
  const TableOptions& options() const { return opts_; }
  uint64_t clamp_timeout_ms(std::optional<uint64_t> requested) const;

 private:
  struct Shard;  // shard.hpp; its state machine is in shard.cpp
  Shard& shard_for(std::size_t id_hash) const;
  int64_t running_due(const Runner& r) const;
  int64_t retention_ns() const { return static_cast<int64_t>(opts_.retention_ms) * 1'000'000; }
  void move_state_counter(RunnerState from, RunnerState to);
  // Lowers the planned wake-up to `due_ns` if earlier, and then wakes the
  // dispatcher (once: whoever lowers it signals).
  void wake_if_earlier(int64_t due_ns);

  const TableOptions opts_;  // constant after construction
  TableObserver* const observer_;
  const uint32_t shard_mask_;
  std::unique_ptr<Shard[]> shards_;
  std::atomic<uint64_t> next_event_{1};
  // Rare events are counted here; per-heartbeat ones in each shard, so two
  // ingest threads never share a counter's cache line.
  std::function<void()> waker_;  // constant once threads run
  std::atomic<int64_t> planned_wake_ns_{std::numeric_limits<int64_t>::min()};
  // Graces (grant_grace); each only ever grows. A runner silent since before
  // grace_from_ns_ is left alone until then plus its own timeout; one silent
  // since before fixed_grace_from_ns_, until fixed_grace_until_ns_.
  std::atomic<int64_t> grace_from_ns_{std::numeric_limits<int64_t>::min()};
  std::atomic<int64_t> fixed_grace_from_ns_{std::numeric_limits<int64_t>::min()};
  std::atomic<int64_t> fixed_grace_until_ns_{std::numeric_limits<int64_t>::min()};
  std::atomic<uint64_t> timeouts_{0};
  std::atomic<uint64_t> expired_removed_{0};
  std::array<std::atomic<int64_t>, 4> by_state_{};
};

}  // namespace rmon::monitor
