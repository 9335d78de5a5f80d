#include "pool_metrics.hpp"

namespace rmon::pool {

namespace {

using prometheus::MetricType;

double load(const std::atomic<uint64_t>& a) {
  return static_cast<double>(a.load(std::memory_order_relaxed));
}

}  // namespace

PoolMetrics::PoolMetrics(std::vector<PoolSpec> pools)
    : pools_(std::move(pools)), used_(new std::atomic<uint64_t>[pools_.size()]) {
  for (std::size_t i = 0; i < pools_.size(); ++i) used_[i] = 0;
}

void PoolMetrics::add_to(MetricsEndpoint& endpoint) {
  endpoint.add_collector([this] { return collect(); });
}

void PoolMetrics::publish(const PoolStore& store) {
  uint64_t in_range = 0;
  for (std::size_t i = 0; i < pools_.size(); ++i) {
    const uint64_t used = store.used_slots(pools_[i].name);
    in_range += used;
    used_[i].store(used, std::memory_order_relaxed);
  }
  for (std::size_t c = 0; c < kCounterCount; ++c) {
    counters_[c].store(store.counters()[c], std::memory_order_relaxed);
  }
  holdings_.store(store.holdings_total(), std::memory_order_relaxed);
  orphaned_.store(store.holdings_total() - in_range, std::memory_order_relaxed);
}

uint64_t PoolMetrics::counter(Counter c) const {
  return counters_[static_cast<std::size_t>(c)].load(std::memory_order_relaxed);
}

std::vector<prometheus::MetricFamily> PoolMetrics::collect() const {
  std::vector<prometheus::MetricFamily> out;
  auto slots =
      metrics::family("pm_slots", "Slots of each configured pool, by state", MetricType::Gauge);
  for (std::size_t i = 0; i < pools_.size(); ++i) {
    const uint64_t used = used_[i].load(std::memory_order_relaxed);
    metrics::add(slots, static_cast<double>(used), {{"pool", pools_[i].name}, {"state", "in_use"}});
    metrics::add(slots,
                 static_cast<double>(pools_[i].slots - std::min<uint64_t>(used, pools_[i].slots)),
                 {{"pool", pools_[i].name}, {"state", "free"}});
  }
  out.push_back(std::move(slots));

  auto orphaned = metrics::family(
      "pm_holdings_orphaned",
      "Holdings kept from an earlier configuration (pool removed or shrunk)", MetricType::Gauge);
  metrics::add(orphaned, load(orphaned_));
  out.push_back(std::move(orphaned));

  auto acquired =
      metrics::family("pm_acquired_total", "Slots handed out (persisted)", MetricType::Counter);
  metrics::add(acquired, load(counters_[static_cast<std::size_t>(Counter::kAcquired)]));
  out.push_back(std::move(acquired));

  auto releases = metrics::family("pm_releases_total", "Slots freed, by cause (persisted)",
                                  MetricType::Counter);
  const uint64_t by_timeout = counter(Counter::kReleasedByTimeout);
  const uint64_t by_verdict = counter(Counter::kReconciled);
  metrics::add(releases, static_cast<double>(counter(Counter::kReleased)), {{"cause", "request"}});
  metrics::add(releases, static_cast<double>(by_timeout - std::min(by_verdict, by_timeout)),
               {{"cause", "timeout_event"}});
  metrics::add(releases, static_cast<double>(by_verdict), {{"cause", "reconciliation"}});
  out.push_back(std::move(releases));

  auto events = metrics::family("pm_events_total", "Timeout events applied, by result (persisted)",
                                MetricType::Counter);
  metrics::add(events, static_cast<double>(counter(Counter::kEventsApplied)),
               {{"result", "applied"}});
  metrics::add(events, static_cast<double>(counter(Counter::kEventsIgnored)),
               {{"result", "ignored"}});
  out.push_back(std::move(events));
  return out;
}

}  // namespace rmon::pool
