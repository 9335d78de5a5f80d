#include "metrics.hpp"

namespace rmon::monitor {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

namespace {

template <class A>
double val(const std::atomic<A>& a) {
  return static_cast<double>(a.load(std::memory_order_relaxed));
}
template <class N>
double val(N n) {
  return static_cast<double>(n);
}

using metrics::add;
using metrics::family;

// Every family but the histogram, built at scrape time from the table's and
// the service's counters.
std::vector<MetricFamily> collect(const RunnerTable& table_, const MonitorStats& stats_) {
  const TableCounters t = table_.counters();
  std::vector<MetricFamily> out;

  auto hb = family("rmon_heartbeats_total", "Heartbeats accepted", MetricType::Counter);
  add(hb, val(t.accepted));
  out.push_back(std::move(hb));

  auto rej = family("rmon_heartbeats_rejected_total", "Heartbeat messages rejected, by reason",
                    MetricType::Counter);
  for (int i = 0; i < protocol::kReasonCount; ++i) {
    add(rej, val(stats_.rejected[i]),
        {{"reason", std::string(protocol::reason_name(static_cast<protocol::Reason>(i)))}});
  }
  out.push_back(std::move(rej));

  auto ign = family("rmon_heartbeats_ignored_total",
                    "Valid heartbeats ignored by the state machine, by kind", MetricType::Counter);
  add(ign, val(t.duplicates), {{"kind", "duplicate"}});
  add(ign, val(t.late), {{"kind", "late"}});
  add(ign, val(t.stale_attempts), {{"kind", "stale_attempt"}});
  out.push_back(std::move(ign));

  auto runners = family("rmon_runners", "Tracked runners, by state", MetricType::Gauge);
  for (int s = 0; s < 4; ++s) {
    add(runners, val(t.by_state[s]),
        {{"state", std::string(protocol::to_string(static_cast<RunnerState>(s)))}});
  }
  out.push_back(std::move(runners));

  auto to =
      family("rmon_timeouts_total", "Runners that timed out (one event each)", MetricType::Counter);
  add(to, val(t.timeouts));
  out.push_back(std::move(to));

  auto pending = family("rmon_events_pending", "Timeout events not yet acknowledged, by group",
                        MetricType::Gauge);
  auto sent =
      family("rmon_events_sent_total", "Timeout event sends, by group", MetricType::Counter);
  auto redel =
      family("rmon_redeliveries_total", "Timeout events sent again, by group", MetricType::Counter);
  auto acks = family("rmon_acks_total", "Acknowledgements accepted, by group", MetricType::Counter);
  for (std::size_t g = 0; g < stats_.groups.size(); ++g) {
    const GroupStats& gs = stats_.per_group[g];
    const std::vector<ClientMetric::Label> label = {{"group", stats_.groups[g]}};
    add(pending, val(gs.pending), label);
    add(sent, val(gs.sent), label);
    add(redel, val(gs.redeliveries), label);
    add(acks, val(gs.acks), label);
  }
  out.push_back(std::move(pending));
  out.push_back(std::move(sent));
  out.push_back(std::move(redel));
  out.push_back(std::move(acks));

  auto ack_bad = family("rmon_acks_rejected_total", "Acknowledgements dropped, by reason",
                        MetricType::Counter);
  add(ack_bad, val(stats_.ack_frames_rejected), {{"reason", "malformed"}});
  add(ack_bad, val(stats_.acks_unknown), {{"reason", "unknown_event"}});
  out.push_back(std::move(ack_bad));

  auto ctl =
      family("rmon_control_requests_total", "Control requests, by outcome", MetricType::Counter);
  add(ctl, val(stats_.control_requests) - val(stats_.control_errors), {{"outcome", "ok"}});
  add(ctl, val(stats_.control_errors), {{"outcome", "error"}});
  out.push_back(std::move(ctl));
  return out;
}

}  // namespace

Metrics::Metrics(const RunnerTable& table, const MonitorStats& stats) {
  endpoint_.add_collector([&table, &stats] { return collect(table, stats); });
  // Buckets from 0.5 ms to 10 s: the target is p99 under 5 ms.
  lateness_ = &prometheus::BuildHistogram()
                   .Name("rmon_detection_lateness_seconds")
                   .Help("Time from a runner's deadline to its timeout event's first send")
                   .Register(endpoint_.registry())
                   .Add({}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.002, 0.005,
                                                                    0.01, 0.025, 0.05, 0.1, 0.25,
                                                                    0.5, 1, 2.5, 10});
}

}  // namespace rmon::monitor
