#pragma once
// What a consumer service (task-queue, pool-manager) supplies to the shared
// skeleton (ConsumerService): its operations, how a timeout event and a
// reconciliation verdict apply, its reconciliation candidates, its
// maintenance and its own metrics. Everything else (sockets, the monitor
// client, the loop thread, transactions, replies, acks, log lines after the
// commit, storage-error recovery, /metrics) is the skeleton's.
//
// Every call runs on the service's loop thread. Writing calls run inside the
// skeleton's transaction, each under its own savepoint: they write through
// to the store and throw on a storage error (the skeleton rolls the item
// back, answers it `unavailable` or leaves it unacknowledged, and calls
// reload()). Log lines meant for after the commit go to `notes`.

#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rmon/protocol/messages.hpp"
#include "rmon/protocol/msgmap.hpp"
#include "rmon/service/reconciler.hpp"
#include "rmon/store/sqlite.hpp"

namespace rmon {

class MetricsEndpoint;

// Log lines held back until the batch that caused them is committed; a
// rolled-back batch drops them.
class Notes {
 public:
  bool enabled(spdlog::level::level_enum level) const { return spdlog::should_log(level); }
  void add(spdlog::level::level_enum level, std::string text) {
    if (enabled(level)) lines_.push_back({level, std::move(text)});
  }
  void flush();
  void clear() { lines_.clear(); }

 private:
  struct Line {
    spdlog::level::level_enum level;
    std::string text;
  };
  std::vector<Line> lines_;
};

// Whom a request acts for, for --security curve's per-request check of a
// runner principal's prefix (security::authorize()).
struct RequestScope {
  std::optional<std::string> runner_id;  // the runner it acts for
  bool unowned = false;                  // it acts on nothing a runner owns now (no runner_id)
};

// The scope of a request that names its runner in `runner_id` (lease,
// acquire, release); empty when the field is missing or malformed.
RequestScope runner_id_scope(const protocol::MapReader& m);

// One reply: its frame, and its error code (empty when ok), for the
// requests counter.
struct Reply {
  std::string frame;
  std::string_view error;
};
inline Reply ok(const protocol::MapBuilder& b) { return {b.finish(), {}}; }
Reply error(std::string_view code, std::string_view detail);

// The outcome labels of `<prefix>_requests_total`: "ok", then error codes;
// outcome_index("") and outcome_index("ok") are 0, an unknown code "other".
inline constexpr std::array<std::string_view, 11> kOutcomes = {
    "ok",        "bad_request", "unknown_op", "not_found", "stale_attempt", "conflict",
    "pool_full", "unavailable", "internal",   "forbidden", "other"};
std::size_t outcome_index(std::string_view error);

// Counters the skeleton keeps for every service: its `stats` and /metrics
// read them. Relaxed atomics (statistics only); thread-safe.
struct ServiceStats {
  static constexpr std::size_t kMaxOps = 15;  // the last row is for unknown ops
  std::array<std::array<std::atomic<uint64_t>, kOutcomes.size()>, kMaxOps + 1> requests{};
  std::atomic<uint64_t> events_received{0}, events_rejected{0}, acks_sent{0};
  // Events that changed nothing because an earlier event (another monitor's
  // copy, or a redelivery) had already taken the same lost attempt back.
  std::atomic<uint64_t> events_duplicate{0};
  std::atomic<uint64_t> commits{0}, commit_failures{0}, storage_errors{0};
  // Committed batches whose flush failed (PostgreSQL): answered unavailable.
  std::atomic<uint64_t> commits_lost{0};
  std::array<std::atomic<uint64_t>, kVerdictCount> verdicts{};
  std::atomic<uint64_t> reconcile_rounds{0}, lookups{0}, lookups_unanswered{0};

  uint64_t rejected_requests() const;  // bad_request and unknown_op, every op
  uint64_t undecided() const {
    return verdicts[static_cast<std::size_t>(Verdict::kUndecided)].load(std::memory_order_relaxed);
  }
};

class ServiceDomain {
 public:
  virtual ~ServiceDomain() = default;

  // Names and prefixes: "task-queue", metric prefix "tq", loop thread "tq-loop".
  virtual std::string_view name() const = 0;
  virtual std::string_view metric_prefix() const = 0;
  // The op names; a request's op is its index here (at most kMaxOps).
  virtual std::span<const std::string_view> ops() const = 0;
  // A request frame, at most (bigger ones get bad_request).
  virtual std::size_t max_request_frame() const { return protocol::kMaxFrame; }
  // The database the skeleton wraps each batch in a transaction of.
  virtual store::Backend& db() = 0;

  // With --security curve, before handle(): the runner a request acts for
  // (lease, acquire, release: its runner_id; complete, fail: the runner the
  // task is leased to). A missing or malformed field gives an empty scope:
  // a runner is then refused (forbidden, no_subject), other roles are
  // checked by op alone. A read only.
  virtual RequestScope request_scope(std::size_t op, const protocol::MapReader& m) {
    (void)op;
    (void)m;
    return {};
  }
  // One request whose version and op the skeleton has read.
  virtual Reply handle(std::size_t op, const protocol::MapReader& m, Notes& notes) = 0;
  // One timeout event. True when it took a lease or holding back.
  virtual bool apply_event(const protocol::TimeoutEvent& ev, Notes& notes) = 0;
  // One verdict that takes back (ended, timed out, gone), fenced by the
  // whole key. True when it took something back.
  virtual bool apply_verdict(const Judged& j, Notes& notes) = 0;
  // Leases or holdings older than the first-heartbeat grace, after `from`,
  // at most `max`. A read; no transaction needed.
  virtual CandidatePage reconcile_candidates(const ReconcileCursor& from, std::size_t max) = 0;

  // Retention and other periodic work, in its own bounded transactions.
  virtual void maintain(Notes& notes) = 0;
  // Re-reads the in-memory state from the database (after a rollback).
  virtual void reload() = 0;
  // After each batch: copies counters for thread-safe readers.
  virtual void publish() = 0;
  // The service's own metric families, on the skeleton's endpoint.
  virtual void add_metrics(MetricsEndpoint& endpoint) = 0;
  // Once the commit is durable, for each event that took something back
  // (benchmarks' lateness); `now_wall_ms` is the wall clock then.
  virtual void on_event_committed(const protocol::TimeoutEvent& ev, int64_t now_wall_ms) {
    (void)ev;
    (void)now_wall_ms;
  }
  // A line for the start-up log: the state it starts from.
  virtual std::string describe() const = 0;
};

}  // namespace rmon
