#pragma once
// The task-queue's domain on the consumer-service skeleton: its operations
// (decoded with MapReader, encoded with MapBuilder), how a timeout event and
// a reconciliation verdict apply to the TaskStore, its reconciliation
// candidates, retention, and its own metrics. Transactions, replies, acks
// and storage-error recovery are the skeleton's (rmon/service/batch_policy.hpp).
//
// Runs on the service's loop thread; stats() is thread-safe (atomics,
// published after each batch).

#include <prometheus/histogram.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "rmon/protocol/msgmap.hpp"
#include "rmon/service/domain.hpp"
#include "rmon/store/backend.hpp"
#include "task_store.hpp"

namespace rmon::tq {

// A submit's payload and a complete's result, encoded, at most.
inline constexpr std::size_t kMaxPayloadBytes = 64 * 1024;
// A request frame, at most: a full payload and the other keys.
inline constexpr std::size_t kMaxRequestFrame = kMaxPayloadBytes + 16 * 1024;
inline constexpr std::size_t kMaxErrorBytes = 4096;
inline constexpr uint64_t kDefaultListLimit = 100;
inline constexpr uint64_t kMaxListLimit = 1000;
inline constexpr uint64_t kMaxAttemptsLimit = 1000;

// The ops, in the order of TaskApi::ops() (the skeleton hands back the index).
enum class ApiOp : uint8_t {
  kSubmit,
  kLease,
  kComplete,
  kFail,
  kCancel,
  kGet,
  kList,
  kStats,
  kPing
};

// The domain's published state, for /metrics (the skeleton's ServiceStats
// has requests, events, commits and verdicts). Relaxed atomics.
struct TaskQueueStats {
  std::array<std::atomic<uint64_t>, kTaskStateCount> tasks{};  // by state
  std::atomic<uint64_t> reassigned{0}, reconciled{0}, events_applied{0}, events_ignored{0};
  std::atomic<uint64_t> pruned{0};
};

class TaskApi final : public ServiceDomain {
 public:
  // `service` is the skeleton's counters (for `stats`); all references
  // outlive this object.
  TaskApi(TaskStore& store, const ServiceStats& service, const Clock& clock);

  std::string_view name() const override { return "task-queue"; }
  std::string_view metric_prefix() const override { return "tq"; }
  std::span<const std::string_view> ops() const override;
  std::size_t max_request_frame() const override { return kMaxRequestFrame; }
  store::Backend& db() override { return store_.backend(); }

  RequestScope request_scope(std::size_t op, const protocol::MapReader& m) override;
  Reply handle(std::size_t op, const protocol::MapReader& m, Notes& notes) override;
  bool apply_event(const protocol::TimeoutEvent& ev, Notes& notes) override;
  bool apply_verdict(const Judged& j, Notes& notes) override;
  CandidatePage reconcile_candidates(const ReconcileCursor& from, std::size_t max) override;
  void maintain(Notes& notes) override;
  void reload() override { store_.reload(); }
  void publish() override;
  void add_metrics(MetricsEndpoint& endpoint) override;
  void on_event_committed(const protocol::TimeoutEvent& ev, int64_t now_wall_ms) override;
  std::string describe() const override;

  const TaskQueueStats& stats() const { return stats_; }
  // Benchmarks: called after the commit for each task a timeout event took
  // back, with its reassignment lateness: commit time minus the runner's
  // deadline (last_heartbeat_ms + timeout_ms, the monitor's wall clock), in
  // ms. Set before the service starts.
  std::function<void(const protocol::TimeoutEvent&, int64_t lateness_ms)> on_reassigned;

 private:
  TaskStore& store_;
  const ServiceStats& service_;
  const Clock& clock_;
  TaskQueueStats stats_;
  prometheus::Histogram* lateness_ = nullptr;
  MonoTime last_prune_{};
  // Replicas: the other replicas' changes reach this one's counts, read
  // again when older than `max_age` (nothing to do alone on SQLite).
  void refresh_counts(std::chrono::steady_clock::duration max_age);
  store::RefreshDue refresh_due_;
};

}  // namespace rmon::tq
