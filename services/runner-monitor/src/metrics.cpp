#include "metrics.hpp"

#include <prometheus/text_serializer.h>

namespace rmon::monitor {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

namespace {

MetricFamily family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void add(MetricFamily& f, double value, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  if (f.type == MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
}

template <class A>
double val(const std::atomic<A>& a) {
  return static_cast<double>(a.load(std::memory_order_relaxed));
}
template <class N>
double val(N n) {
  return static_cast<double>(n);
}

}  // namespace

class Metrics::Collector : public prometheus::Collectable {
 public:
  Collector(const RunnerTable& table, const MonitorStats& stats) : table_(table), stats_(stats) {}

  std::vector<MetricFamily> Collect() const override {
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

    auto ign =
        family("rmon_heartbeats_ignored_total",
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

    auto to = family("rmon_timeouts_total", "Runners that timed out (one event each)",
                     MetricType::Counter);
    add(to, val(t.timeouts));
    out.push_back(std::move(to));

    auto pending = family("rmon_events_pending", "Timeout events not yet acknowledged, by group",
                          MetricType::Gauge);
    auto sent =
        family("rmon_events_sent_total", "Timeout event sends, by group", MetricType::Counter);
    auto redel = family("rmon_redeliveries_total", "Timeout events sent again, by group",
                        MetricType::Counter);
    auto acks =
        family("rmon_acks_total", "Acknowledgements accepted, by group", MetricType::Counter);
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

 private:
  const RunnerTable& table_;
  const MonitorStats& stats_;
};

Metrics::Metrics(const RunnerTable& table, const MonitorStats& stats)
    : registry_(std::make_shared<prometheus::Registry>()),
      collector_(std::make_shared<Collector>(table, stats)) {
  // Buckets from 0.5 ms to 10 s: the target is p99 under 5 ms.
  lateness_ = &prometheus::BuildHistogram()
                   .Name("rmon_detection_lateness_seconds")
                   .Help("Time from a runner's deadline to its timeout event's first send")
                   .Register(*registry_)
                   .Add({}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.002, 0.005,
                                                                    0.01, 0.025, 0.05, 0.1, 0.25,
                                                                    0.5, 1, 2.5, 10});
}

int Metrics::serve(const std::string& bind) {
  exposer_ = std::make_unique<prometheus::Exposer>(bind);
  exposer_->RegisterCollectable(registry_);
  exposer_->RegisterCollectable(collector_);
  auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

std::string Metrics::render() const {
  auto families = collector_->Collect();
  auto more = registry_->Collect();
  families.insert(families.end(), more.begin(), more.end());
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace rmon::monitor
