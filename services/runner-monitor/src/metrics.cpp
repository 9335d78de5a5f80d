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
// The guards, the outbox's disk side and the table's saves.
void collect_durability(const MonitorStats& st, StorageStats storage,
                        std::vector<MetricFamily>& out) {
  auto gauge = [&](const char* name, const char* help, double v) {
    auto f = family(name, help, MetricType::Gauge);
    add(f, v);
    out.push_back(std::move(f));
  };
  auto counter = [&](const char* name, const char* help, double v) {
    auto f = family(name, help, MetricType::Counter);
    add(f, v);
    out.push_back(std::move(f));
  };
  gauge("rmon_storm_brake_engaged", "1 while the storm brake holds timeouts",
        st.brake_engaged.load(std::memory_order_relaxed) ? 1 : 0);
  gauge("rmon_storm_brake_held_runners",
        "Runners past their deadline held by the storm brake or the stall guard",
        val(st.brake_held));
  counter("rmon_storm_brake_engagements_total", "Times the storm brake engaged",
          val(st.brake_engagements));
  counter("rmon_storm_brake_operator_releases_total", "Storm brake releases by an operator",
          val(st.brake_operator_releases));
  gauge("rmon_stalled", "1 while a stall of the monitor's own loops holds convictions",
        st.stalled.load(std::memory_order_relaxed) ? 1 : 0);
  counter("rmon_stalls_total", "Stalls of the monitor's own loops detected", val(st.stalls));
  counter("rmon_stall_hold_expired_total",
          "Stalls that held convictions for --stall-max-hold-ms without ingest catching up; "
          "runners past their deadline were convicted anyway",
          val(st.stall_hold_expired));
  gauge("rmon_last_stall_seconds", "How late a loop was when the last stall was seen",
        val(st.last_stall_ms) / 1000.0);
  counter("rmon_backlog_alerts_total",
          "Times a consumer group's unacknowledged events crossed the backlog threshold",
          val(st.backlog_alerts));
  counter("rmon_outbox_pruned_total", "Done events forgotten after their retention",
          val(st.outbox_pruned));
  if (const auto* ck = storage.outbox_checkpoints) {
    counter("rmon_outbox_checkpoints_total",
            "Checkpoints of the outbox's log into its database (on a thread of their own)",
            val(ck->done));
    counter("rmon_outbox_checkpoint_failures_total",
            "Outbox checkpoints that failed (retried; the log grows meanwhile)", val(ck->failed));
    gauge("rmon_outbox_last_checkpoint_seconds", "Duration of the last outbox checkpoint",
          val(ck->last_us) / 1e6);
  }
  const PersisterStats* saves = storage.saves;
  if (saves == nullptr) return;
  counter("rmon_table_saves_total", "Saves of changed runners to disk", val(saves->saves));
  counter("rmon_table_rows_saved_total", "Runner rows written or deleted on disk",
          val(saves->rows_written));
  counter("rmon_table_rewrites_total", "Whole-table rewrites (too many changes between saves)",
          val(saves->rewrites));
  counter("rmon_table_save_failures_total", "Saves the disk refused (retried)",
          val(saves->failures));
  gauge("rmon_table_last_save_seconds", "Duration of the last save",
        val(saves->last_save_us) / 1e6);
}

std::vector<MetricFamily> collect(const RunnerTable& table_, const MonitorStats& stats_,
                                  StorageStats storage) {
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

  auto pending =
      family("rmon_events_pending", "Timeout events not yet acknowledged (on disk), by group",
             MetricType::Gauge);
  auto in_mem = family("rmon_events_in_memory",
                       "Of the pending events, those held in memory, by group", MetricType::Gauge);
  auto sent =
      family("rmon_events_sent_total", "Timeout event sends, by group", MetricType::Counter);
  auto redel =
      family("rmon_redeliveries_total", "Timeout events sent again, by group", MetricType::Counter);
  auto acks = family("rmon_acks_total", "Acknowledgements accepted, by group", MetricType::Counter);
  auto unreadable = family("rmon_outbox_unreadable_total",
                           "Stored events found unreadable (damaged on disk) and quarantined, "
                           "never sent again, by group",
                           MetricType::Counter);
  for (std::size_t g = 0; g < stats_.groups.size(); ++g) {
    const GroupStats& gs = stats_.per_group[g];
    const std::vector<ClientMetric::Label> label = {{"group", stats_.groups[g]}};
    add(pending, val(gs.pending), label);
    add(in_mem, val(gs.in_memory), label);
    add(sent, val(gs.sent), label);
    add(redel, val(gs.redeliveries), label);
    add(acks, val(gs.acks), label);
    add(unreadable, val(gs.unreadable), label);
  }
  out.push_back(std::move(pending));
  out.push_back(std::move(in_mem));
  out.push_back(std::move(sent));
  out.push_back(std::move(redel));
  out.push_back(std::move(acks));
  out.push_back(std::move(unreadable));

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
  auto lookups =
      family("rmon_control_lookups_total", "Reconciliation lookups answered", MetricType::Counter);
  add(lookups, val(stats_.lookups));
  out.push_back(std::move(lookups));
  auto lookup_ids = family("rmon_control_lookup_ids_total",
                           "Runner ids asked about by the lookups answered", MetricType::Counter);
  add(lookup_ids, val(stats_.lookup_ids));
  out.push_back(std::move(lookup_ids));
  collect_durability(stats_, storage, out);
  return out;
}

}  // namespace

Metrics::Metrics(const RunnerTable& table, const MonitorStats& stats, StorageStats storage) {
  endpoint_.add_collector([&table, &stats, storage] { return collect(table, stats, storage); });
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
