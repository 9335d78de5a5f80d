#pragma once
// pool-manager's own Prometheus metrics (prefix pm_). Persisted counters and slot usage are
// published by the loop thread after each commit; scrapes read atomics. Thread-safe.

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "pool_spec.hpp"
#include "pool_store.hpp"
#include "rmon/service/metrics_endpoint.hpp"

namespace rmon::pool {

// The pools' published state for scrapes: the store's persisted counters
// and slot usage, copied by the loop thread after each batch. The skeleton
// adds the shared families (requests, events, commits, reconciliation).
class PoolMetrics {
 public:
  explicit PoolMetrics(std::vector<PoolSpec> pools);

  // Registers its collector on `endpoint`; this object outlives its scrapes.
  void add_to(MetricsEndpoint& endpoint);
  // Loop thread: copies the store's counters and slot usage for scrapes.
  void publish(const PoolStore& store);

  uint64_t counter(Counter c) const;  // as last published
  uint64_t holdings() const { return holdings_.load(std::memory_order_relaxed); }

 private:
  std::vector<prometheus::MetricFamily> collect() const;

  const std::vector<PoolSpec> pools_;              // constant after construction
  std::unique_ptr<std::atomic<uint64_t>[]> used_;  // per pool, same order
  std::array<std::atomic<uint64_t>, kCounterCount> counters_{};
  std::atomic<uint64_t> holdings_{0}, orphaned_{0};
};

}  // namespace rmon::pool
