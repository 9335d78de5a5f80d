#pragma once
// pool-manager's Prometheus metrics (prefix pm_) and the in-memory counters
// behind them. Persisted counters and slot usage are published by the loop
// thread after each commit; scrapes read atomics. The commit batch size is a
// prometheus-cpp histogram. Thread-safe.

#include <prometheus/histogram.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "pool_spec.hpp"
#include "pool_store.hpp"
#include "rmon/service/metrics_endpoint.hpp"
#include "rmon/service/monitor_probe.hpp"

namespace rmon::pool {

// The op label of a request; kInvalid when no known op could be read.
enum class ApiOp : uint8_t { kAcquire, kRelease, kStatus, kStats, kPing, kInvalid };
inline constexpr std::size_t kApiOpCount = 6;
std::string_view op_name(ApiOp op);

// A reply's outcome: ok or its error code.
enum class Outcome : uint8_t {
  kOk,
  kBadRequest,
  kUnknownOp,
  kNotFound,
  kStaleAttempt,
  kConflict,
  kPoolFull,
  kUnavailable
};
inline constexpr std::size_t kOutcomeCount = 8;
std::string_view outcome_name(Outcome o);  // "ok" or the error code

class PoolMetrics {
 public:
  // Registers its collector and histogram on `endpoint`, which must outlive
  // this object's scrapes.
  PoolMetrics(std::vector<PoolSpec> pools, MetricsEndpoint& endpoint);

  void count_request(ApiOp op, Outcome outcome);
  void count_probe(ProbeVerdict verdict);
  void count_commit_failure() { commit_failures_.fetch_add(1, std::memory_order_relaxed); }
  void observe_batch(std::size_t size) { batch_size_->Observe(static_cast<double>(size)); }
  // Loop thread: copies the store's counters and slot usage for scrapes.
  void publish(const PoolStore& store);
  // Where malformed timeout events are counted (the EventConsumer's count);
  // an empty function reads 0. Set before the consumer goes away.
  void set_events_rejected(std::function<uint64_t()> fn);

  uint64_t requests(ApiOp op, Outcome outcome) const;
  uint64_t rejected_requests() const;  // bad_request + unknown_op, all ops
  uint64_t probes(ProbeVerdict verdict) const;
  uint64_t commit_failures() const { return commit_failures_.load(std::memory_order_relaxed); }
  uint64_t counter(Counter c) const;  // as last published
  uint64_t holdings() const { return holdings_.load(std::memory_order_relaxed); }

 private:
  std::vector<prometheus::MetricFamily> collect() const;
  uint64_t events_rejected() const;

  const std::vector<PoolSpec> pools_;              // constant after construction
  std::unique_ptr<std::atomic<uint64_t>[]> used_;  // per pool, same order
  std::array<std::atomic<uint64_t>, kCounterCount> counters_{};
  std::atomic<uint64_t> holdings_{0}, orphaned_{0};
  std::array<std::atomic<uint64_t>, kApiOpCount * kOutcomeCount> requests_{};
  std::array<std::atomic<uint64_t>, 3> probes_{};
  std::atomic<uint64_t> commit_failures_{0};
  mutable std::mutex events_mu_;
  std::function<uint64_t()> events_rejected_;  // guarded by events_mu_
  prometheus::Histogram* batch_size_ = nullptr;
};

}  // namespace rmon::pool
