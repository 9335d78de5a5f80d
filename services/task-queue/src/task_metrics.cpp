#include "task_metrics.hpp"

namespace rmon::tq {

using prometheus::MetricType;

namespace {
double val(const std::atomic<uint64_t>& a) {
  return static_cast<double>(a.load(std::memory_order_relaxed));
}
}  // namespace

TaskMetrics::TaskMetrics(const TaskQueueStats& stats, const EventConsumer& events) {
  batch_ =
      &prometheus::BuildHistogram()
           .Name("tq_commit_batch_size")
           .Help("Requests and events applied per commit (group commit)")
           .Register(endpoint_.registry())
           .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256, 512});
  lateness_ = &prometheus::BuildHistogram()
                   .Name("tq_reassign_lateness_seconds")
                   .Help(
                       "From a lost runner's deadline (last heartbeat + timeout) to its task "
                       "being queued again (commit)")
                   .Register(endpoint_.registry())
                   .Add({}, prometheus::Histogram::BucketBoundaries{
                                0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10});
  endpoint_.add_collector([&stats, &events] {
    std::vector<prometheus::MetricFamily> out;
    auto tasks = metrics::family("tq_tasks", "Tasks by state", MetricType::Gauge);
    for (int s = 0; s < kTaskStateCount; ++s) {
      metrics::add(tasks, val(stats.tasks[s]),
                   {{"state", std::string(to_string(static_cast<TaskState>(s)))}});
    }
    out.push_back(std::move(tasks));

    auto req =
        metrics::family("tq_requests_total", "API requests by op and outcome", MetricType::Counter);
    for (int op = 0; op < kApiOpCount; ++op) {
      const std::string name(to_string(static_cast<ApiOp>(op)));
      metrics::add(req, val(stats.ok[op]), {{"op", name}, {"outcome", "ok"}});
      metrics::add(req, val(stats.errors[op]), {{"op", name}, {"outcome", "error"}});
    }
    out.push_back(std::move(req));

    auto bad = metrics::family("tq_bad_requests_total",
                               "Requests rejected as malformed, unknown op or bad keys",
                               MetricType::Counter);
    metrics::add(bad, val(stats.bad_requests));
    out.push_back(std::move(bad));

    auto ev = metrics::family("tq_events_total", "Timeout events received, by result",
                              MetricType::Counter);
    metrics::add(ev, val(stats.events_applied), {{"result", "applied"}});
    metrics::add(ev, val(stats.events_ignored), {{"result", "ignored"}});
    metrics::add(ev, static_cast<double>(events.rejected()), {{"result", "rejected"}});
    out.push_back(std::move(ev));

    auto acks = metrics::family("tq_acks_sent_total", "Acknowledgements sent to the monitor",
                                MetricType::Counter);
    metrics::add(acks, static_cast<double>(events.acks_sent()));
    out.push_back(std::move(acks));

    auto re = metrics::family("tq_reassigned_total",
                              "Tasks requeued because their runner was lost (timeout or grace)",
                              MetricType::Counter);
    metrics::add(re, val(stats.reassigned));
    out.push_back(std::move(re));

    auto probes = metrics::family("tq_first_heartbeat_checks_total",
                                  "Monitor checks of leases past the first-heartbeat grace",
                                  MetricType::Counter);
    metrics::add(probes, val(stats.probes_seen), {{"verdict", "seen"}});
    metrics::add(probes, val(stats.probes_not_seen), {{"verdict", "not_seen"}});
    metrics::add(probes, val(stats.probes_unreachable), {{"verdict", "unreachable"}});
    out.push_back(std::move(probes));

    auto commits =
        metrics::family("tq_commits_total", "Batches committed, by outcome", MetricType::Counter);
    metrics::add(commits, val(stats.commits), {{"outcome", "ok"}});
    metrics::add(commits, val(stats.commit_failures), {{"outcome", "rolled_back"}});
    out.push_back(std::move(commits));

    auto pruned =
        metrics::family("tq_pruned_rows_total",
                        "Ended tasks and old event ids deleted by retention", MetricType::Counter);
    metrics::add(pruned, val(stats.pruned));
    out.push_back(std::move(pruned));
    return out;
  });
}

}  // namespace rmon::tq
