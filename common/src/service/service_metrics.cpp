// The metric families every consumer service shares, named
// `<prefix>_...` after its domain (tq_, pm_), read from ServiceStats.

#include <prometheus/histogram.h>

#include "rmon/service/consumer_service.hpp"

namespace rmon {

namespace {
double val(const std::atomic<uint64_t>& a) {
  return static_cast<double>(a.load(std::memory_order_relaxed));
}
}  // namespace

void ConsumerService::add_metrics() {
  using prometheus::MetricType;
  const std::string p(domain_.metric_prefix());
  std::vector<std::string> ops;
  for (std::string_view op : domain_.ops()) ops.emplace_back(op);
  ops.emplace_back("invalid");
  metrics_.add_collector([this, p, ops] {
    const ServiceStats& s = stats_;
    std::vector<prometheus::MetricFamily> out;
    auto req = metrics::family(p + "_requests_total",
                               "API requests by op and outcome (ok or the error code)",
                               MetricType::Counter);
    for (std::size_t op = 0; op < ops.size(); ++op) {
      const std::size_t row = op + 1 == ops.size() ? ServiceStats::kMaxOps : op;
      for (std::size_t o = 0; o < kOutcomes.size(); ++o) {
        const double v = val(s.requests[row][o]);
        // Outcomes an op never had are left out; ok is always shown.
        if (v > 0 || o == 0) {
          metrics::add(req, v, {{"op", ops[op]}, {"outcome", std::string(kOutcomes[o])}});
        }
      }
    }
    out.push_back(std::move(req));

    auto ev = metrics::family(p + "_events_received_total",
                              "Timeout event frames received, by result of decoding",
                              MetricType::Counter);
    metrics::add(ev, val(s.events_received) - val(s.events_rejected), {{"result", "decoded"}});
    metrics::add(ev, val(s.events_rejected), {{"result", "rejected"}});
    out.push_back(std::move(ev));

    auto dup = metrics::family(p + "_events_duplicate_total",
                               "Timeout events that changed nothing because another monitor's "
                               "copy (or a redelivery) had already taken the attempt back",
                               MetricType::Counter);
    metrics::add(dup, val(s.events_duplicate));
    out.push_back(std::move(dup));

    auto acks = metrics::family(p + "_acks_sent_total", "Acknowledgements sent to the monitor",
                                MetricType::Counter);
    metrics::add(acks, val(s.acks_sent));
    out.push_back(std::move(acks));

    auto commits =
        metrics::family(p + "_commits_total", "Batches committed, by outcome", MetricType::Counter);
    metrics::add(commits, val(s.commits), {{"outcome", "ok"}});
    metrics::add(commits, val(s.commit_failures), {{"outcome", "rolled_back"}});
    // PostgreSQL: committed, but the flush that was to cover it failed.
    metrics::add(commits, val(s.commits_lost), {{"outcome", "lost"}});
    out.push_back(std::move(commits));

    if (syncer_) {
      const store::CommitSyncer::Stats& w = syncer_->stats();
      auto syncs = metrics::family(p + "_log_syncs_total",
                                   "Flushes of the database log, each covering every commit "
                                   "before it (SQLite --sync full: an fsync; PostgreSQL: a "
                                   "synchronous commit on a second connection)",
                                   MetricType::Counter);
      metrics::add(syncs, val(w.syncs));
      out.push_back(std::move(syncs));
      auto in_flight = metrics::family(
          p + "_commits_in_flight",
          "Batches committed whose fsync is pending (their replies and acks held back)",
          MetricType::Gauge);
      metrics::add(in_flight, val(in_flight_count_));
      out.push_back(std::move(in_flight));
    }

    auto storage = metrics::family(p + "_storage_errors_total",
                                   "Storage errors (items or batches rolled back, reloads)",
                                   MetricType::Counter);
    metrics::add(storage, val(s.storage_errors));
    out.push_back(std::move(storage));

    auto verdicts = metrics::family(p + "_reconcile_verdicts_total",
                                    "Reconciliation verdicts on leases or holdings, by verdict",
                                    MetricType::Counter);
    for (std::size_t v = 0; v < kVerdictCount; ++v) {
      metrics::add(verdicts, val(s.verdicts[v]),
                   {{"verdict", std::string(to_string(static_cast<Verdict>(v)))}});
    }
    out.push_back(std::move(verdicts));

    auto rounds = metrics::family(p + "_reconcile_rounds_total", "Reconciliation rounds started",
                                  MetricType::Counter);
    metrics::add(rounds, val(s.reconcile_rounds));
    out.push_back(std::move(rounds));

    auto lookups =
        metrics::family(p + "_monitor_lookups_total",
                        "Lookup requests sent to monitors, by outcome", MetricType::Counter);
    metrics::add(lookups, val(s.lookups) - val(s.lookups_unanswered), {{"outcome", "answered"}});
    metrics::add(lookups, val(s.lookups_unanswered), {{"outcome", "unanswered"}});
    out.push_back(std::move(lookups));
    return out;
  });
  batch_size_ = &prometheus::BuildHistogram()
                     .Name(p + "_commit_batch_size")
                     .Help("Events, verdicts and requests applied per commit (group commit)")
                     .Register(metrics_.registry())
                     .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128,
                                                                      256, 512, 1024});
}

}  // namespace rmon
