#pragma once
// pool-manager's domain on the consumer-service skeleton: its ops (decoded
// with MapReader), how a timeout event and a reconciliation verdict free a
// slot, its reconciliation candidates (holdings), pruning of old event ids,
// and its own metrics. Transactions, replies, acks and storage-error recovery
// are the skeleton's (rmon/service/batch_policy.hpp).
//
// Ops (docs/PROTOCOL.md, "Pools"): acquire, release, status, stats, ping. A
// request with a missing, mistyped or oversized key gets bad_request with
// the rejection as detail and changes nothing.
//
// Not thread-safe: runs on the service's loop thread.

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "pool_metrics.hpp"
#include "pool_store.hpp"
#include "rmon/clock.hpp"
#include "rmon/protocol/limits.hpp"
#include "rmon/protocol/msgmap.hpp"
#include "rmon/service/domain.hpp"
#include "rmon/store/backend.hpp"

namespace rmon::pool {

// The ops, in the order of PoolApi::ops() (the skeleton hands back the index).
enum class ApiOp : uint8_t { kAcquire, kRelease, kStatus, kStats, kPing };

struct ApiOptions {
  // A status reply stops adding holders before this many bytes and says
  // `truncated: true`.
  std::size_t max_reply_bytes = protocol::kMaxListReplyBytes;
  Millis prune_interval{60'000};  // how often old event ids are forgotten
};

class PoolApi final : public ServiceDomain {
 public:
  // `service` is the skeleton's counters (for `stats`). All references
  // outlive this object.
  PoolApi(PoolStore& store, const ServiceStats& service, const Clock& clock,
          ApiOptions options = {});

  std::string_view name() const override { return "pool-manager"; }
  std::string_view metric_prefix() const override { return "pm"; }
  std::span<const std::string_view> ops() const override;
  store::Backend& db() override { return store_.db(); }

  RequestScope request_scope(std::size_t op, const protocol::MapReader& m) override;
  Reply handle(std::size_t op, const protocol::MapReader& m, Notes& notes) override;
  bool apply_event(const protocol::TimeoutEvent& ev, Notes& notes) override;
  bool apply_verdict(const Judged& j, Notes& notes) override;
  CandidatePage reconcile_candidates(const ReconcileCursor& from, std::size_t max) override;
  void maintain(Notes& notes) override;
  void reload() override { store_.resync(); }
  void publish() override { metrics_.publish(store_); }
  void add_metrics(MetricsEndpoint& endpoint) override { metrics_.add_to(endpoint); }
  void on_event_committed(const protocol::TimeoutEvent& ev, int64_t now_wall_ms) override;
  std::string describe() const override;

  const PoolMetrics& metrics() const { return metrics_; }

  // Called after the commit for each timeout event that freed a slot, with
  // its release lateness: commit time minus the runner's deadline
  // (last_heartbeat_ms + timeout_ms, the monitor's wall clock), in ms.
  std::function<void(const protocol::TimeoutEvent&, int64_t lateness_ms)> on_released;

 private:
  Reply acquire(const protocol::MapReader& m, Notes& notes);
  Reply release(const protocol::MapReader& m, Notes& notes);
  Reply status(const protocol::MapReader& m);
  Reply stats();

  PoolStore& store_;
  const ServiceStats& service_;
  const Clock& clock_;
  const ApiOptions options_;
  PoolMetrics metrics_;
  MonoTime next_prune_{};
  // Replicas: the other replicas' changes reach this one's counts, read
  // again when older than `max_age` (nothing to do alone on SQLite).
  void refresh_counts(std::chrono::steady_clock::duration max_age);
  store::RefreshDue refresh_due_;
};

}  // namespace rmon::pool
