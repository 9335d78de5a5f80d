// task-queue's own metric families (prefix tq_); the skeleton adds the
// shared ones (requests, events, commits, reconciliation).

#include <prometheus/histogram.h>

#include "rmon/service/metrics_endpoint.hpp"
#include "task_api.hpp"

namespace rmon::tq {

using prometheus::MetricType;

namespace {
double val(const std::atomic<uint64_t>& a) {
  return static_cast<double>(a.load(std::memory_order_relaxed));
}
}  // namespace

void TaskApi::add_metrics(MetricsEndpoint& endpoint) {
  lateness_ = &prometheus::BuildHistogram()
                   .Name("tq_reassign_lateness_seconds")
                   .Help(
                       "From a lost runner's deadline (last heartbeat + timeout) to its task "
                       "being queued again (commit)")
                   .Register(endpoint.registry())
                   .Add({}, prometheus::Histogram::BucketBoundaries{
                                0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10});
  endpoint.add_collector([&stats = stats_] {
    std::vector<prometheus::MetricFamily> out;
    auto tasks = metrics::family("tq_tasks", "Tasks by state", MetricType::Gauge);
    for (int s = 0; s < kTaskStateCount; ++s) {
      metrics::add(tasks, val(stats.tasks[s]),
                   {{"state", std::string(to_string(static_cast<TaskState>(s)))}});
    }
    out.push_back(std::move(tasks));

    auto ev = metrics::family("tq_events_total", "Timeout events applied, by result (persisted)",
                              MetricType::Counter);
    metrics::add(ev, val(stats.events_applied), {{"result", "applied"}});
    metrics::add(ev, val(stats.events_ignored), {{"result", "ignored"}});
    out.push_back(std::move(ev));

    auto re = metrics::family("tq_reassigned_total",
                              "Tasks requeued because their runner was lost, by cause (persisted)",
                              MetricType::Counter);
    metrics::add(re, val(stats.reassigned) - val(stats.reconciled), {{"cause", "timeout_event"}});
    metrics::add(re, val(stats.reconciled), {{"cause", "reconciliation"}});
    out.push_back(std::move(re));

    auto pruned =
        metrics::family("tq_pruned_rows_total",
                        "Ended tasks and old event ids deleted by retention", MetricType::Counter);
    metrics::add(pruned, val(stats.pruned));
    out.push_back(std::move(pruned));
    return out;
  });
}

}  // namespace rmon::tq
