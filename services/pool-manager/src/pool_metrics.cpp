#include "pool_metrics.hpp"

#include <prometheus/histogram.h>

namespace rmon::pool {

namespace {

using prometheus::MetricType;

constexpr std::array<std::string_view, kApiOpCount> kOps = {"acquire", "release", "status",
                                                            "stats",   "ping",    "invalid"};
constexpr std::array<std::string_view, kOutcomeCount> kOutcomes = {
    "ok",       "bad_request", "unknown_op", "not_found", "stale_attempt",
    "conflict", "pool_full",   "unavailable"};
constexpr std::array<std::string_view, 3> kVerdicts = {"seen", "not_seen", "unreachable"};

double load(const std::atomic<uint64_t>& a) {
  return static_cast<double>(a.load(std::memory_order_relaxed));
}

}  // namespace

std::string_view op_name(ApiOp op) { return kOps[static_cast<std::size_t>(op)]; }
std::string_view outcome_name(Outcome o) { return kOutcomes[static_cast<std::size_t>(o)]; }

PoolMetrics::PoolMetrics(std::vector<PoolSpec> pools, MetricsEndpoint& endpoint)
    : pools_(std::move(pools)), used_(new std::atomic<uint64_t>[pools_.size()]) {
  for (std::size_t i = 0; i < pools_.size(); ++i) used_[i] = 0;
  auto& family = prometheus::BuildHistogram()
                     .Name("pm_commit_batch_size")
                     .Help("Requests and timeout events applied per commit")
                     .Register(endpoint.registry());
  batch_size_ = &family.Add(
      {}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024});
  endpoint.add_collector([this] { return collect(); });
}

void PoolMetrics::count_request(ApiOp op, Outcome outcome) {
  requests_[static_cast<std::size_t>(op) * kOutcomeCount + static_cast<std::size_t>(outcome)]
      .fetch_add(1, std::memory_order_relaxed);
}

void PoolMetrics::count_probe(ProbeVerdict verdict) {
  probes_[static_cast<std::size_t>(verdict)].fetch_add(1, std::memory_order_relaxed);
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

void PoolMetrics::set_events_rejected(std::function<uint64_t()> fn) {
  std::lock_guard lock(events_mu_);
  events_rejected_ = std::move(fn);
}

uint64_t PoolMetrics::events_rejected() const {
  std::lock_guard lock(events_mu_);
  return events_rejected_ ? events_rejected_() : 0;
}

uint64_t PoolMetrics::requests(ApiOp op, Outcome outcome) const {
  return requests_[static_cast<std::size_t>(op) * kOutcomeCount + static_cast<std::size_t>(outcome)]
      .load(std::memory_order_relaxed);
}

uint64_t PoolMetrics::rejected_requests() const {
  uint64_t n = 0;
  for (std::size_t op = 0; op < kApiOpCount; ++op) {
    n += requests(static_cast<ApiOp>(op), Outcome::kBadRequest) +
         requests(static_cast<ApiOp>(op), Outcome::kUnknownOp);
  }
  return n;
}

uint64_t PoolMetrics::probes(ProbeVerdict verdict) const {
  return probes_[static_cast<std::size_t>(verdict)].load(std::memory_order_relaxed);
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
  const uint64_t by_grace = counter(Counter::kReleasedByGrace);
  metrics::add(releases, static_cast<double>(counter(Counter::kReleased)), {{"cause", "request"}});
  metrics::add(releases, static_cast<double>(by_timeout - std::min(by_grace, by_timeout)),
               {{"cause", "timeout"}});
  metrics::add(releases, static_cast<double>(by_grace), {{"cause", "grace"}});
  out.push_back(std::move(releases));

  auto events = metrics::family(
      "pm_events_total",
      "Timeout events, by result (applied and ignored persisted, rejected since start)",
      MetricType::Counter);
  metrics::add(events, static_cast<double>(counter(Counter::kEventsApplied)),
               {{"result", "applied"}});
  metrics::add(events, static_cast<double>(counter(Counter::kEventsIgnored)),
               {{"result", "ignored"}});
  metrics::add(events, static_cast<double>(events_rejected()), {{"result", "rejected"}});
  out.push_back(std::move(events));

  auto requests =
      metrics::family("pm_requests_total", "API requests, by op and outcome", MetricType::Counter);
  for (std::size_t op = 0; op < kApiOpCount; ++op) {
    for (std::size_t o = 0; o < kOutcomeCount; ++o) {
      const uint64_t n = requests_[op * kOutcomeCount + o].load(std::memory_order_relaxed);
      // Every op's ok series always; the others once they happen.
      if (n == 0 && !(o == 0 && op != static_cast<std::size_t>(ApiOp::kInvalid))) continue;
      metrics::add(requests, static_cast<double>(n),
                   {{"op", std::string(kOps[op])}, {"outcome", std::string(kOutcomes[o])}});
    }
  }
  out.push_back(std::move(requests));

  auto checks = metrics::family("pm_first_heartbeat_checks_total",
                                "First-heartbeat checks answered, by verdict", MetricType::Counter);
  for (std::size_t v = 0; v < kVerdicts.size(); ++v) {
    metrics::add(checks, load(probes_[v]), {{"verdict", std::string(kVerdicts[v])}});
  }
  out.push_back(std::move(checks));

  auto failures =
      metrics::family("pm_commit_failures_total",
                      "Batches whose commit failed (answered unavailable)", MetricType::Counter);
  metrics::add(failures, load(commit_failures_));
  out.push_back(std::move(failures));
  return out;
}

}  // namespace rmon::pool
