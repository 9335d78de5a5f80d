#pragma once
// The task-queue's API and event handling over its store: decodes each
// request (MapReader), applies a whole batch of requests and timeout events
// in one transaction, and encodes the replies. It is the BatchHandler the
// service's loop runs; replies and acks leave only after the commit.
//
// apply(), tick() and on_probe_results() run on the loop thread; stats() is
// thread-safe (atomics, published after each batch).

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "rmon/logging.hpp"
#include "rmon/protocol/msgmap.hpp"
#include "rmon/service/batch_loop.hpp"
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
inline constexpr int kApiOpCount = 9;
std::string_view to_string(ApiOp op);

// Counters for /metrics and logs. Relaxed atomics: statistics only.
struct TaskQueueStats {
  std::array<std::atomic<uint64_t>, kApiOpCount> ok{};
  std::array<std::atomic<uint64_t>, kApiOpCount> errors{};
  std::atomic<uint64_t> bad_requests{0};                       // malformed, unknown op, bad keys
  std::array<std::atomic<uint64_t>, kTaskStateCount> tasks{};  // by state
  std::atomic<uint64_t> reassigned{0}, events_applied{0}, events_ignored{0};
  std::atomic<uint64_t> probes_seen{0}, probes_not_seen{0}, probes_unreachable{0};
  std::atomic<uint64_t> commits{0}, commit_failures{0}, pruned{0};
};

class TaskApi final : public BatchHandler {
 public:
  TaskApi(TaskStore& store, store::Db& db, MonitorProbe* probe, TaskQueueStats& stats,
          const Clock& clock);

  void apply(std::vector<Request>& requests, std::vector<ConsumedEvent>& events) override;
  void on_probe_results(std::vector<ProbeResult>& results) override;
  void tick() override;

  // One request, outside any batch (tests); the caller owns the transaction.
  std::string handle(std::string_view frame);

  // Called with each committed batch's size (requests + events).
  std::function<void(std::size_t)> on_commit;
  // Called after the commit for each task a timeout event took back, with
  // its reassignment lateness: commit time minus the runner's deadline
  // (last_heartbeat_ms + timeout_ms, the monitor's wall clock), in ms.
  std::function<void(const protocol::TimeoutEvent&, int64_t lateness_ms)> on_reassigned;

 private:
  std::string dispatch(ApiOp op, const protocol::MapReader& m);
  std::string bad_request(const protocol::Rejection& r, std::string detail = {});
  void publish();
  // True when the event took its task back.
  bool apply_event(ConsumedEvent& e);

  TaskStore& store_;
  store::Db& db_;
  MonitorProbe* probe_;  // may be null: no first-heartbeat checks
  TaskQueueStats& stats_;
  const Clock& clock_;
  std::vector<const ConsumedEvent*> reassigned_;  // in the batch being applied
  LogRateLimiter warn_limit_{5, std::chrono::seconds(10)};
  MonoTime last_prune_{};
};

}  // namespace rmon::tq
