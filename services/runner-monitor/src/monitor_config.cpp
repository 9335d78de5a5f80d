#include "monitor_config.hpp"

#include <unistd.h>

#include <cctype>
#include <climits>
#include <cstdio>
#include <random>
#include <set>

namespace rmon::monitor {

std::string MonitorConfig::default_instance() {
  char host[HOST_NAME_MAX + 1] = {};
  std::string out;
  if (gethostname(host, sizeof host - 1) == 0) {
    for (const char* c = host; *c != '\0' && out.size() < 32; ++c) {
      const unsigned char u = static_cast<unsigned char>(*c);
      if (std::isalnum(u) || u == '.' || u == '_' || u == '-') out.push_back(static_cast<char>(u));
    }
  }
  return out.empty() ? "rmon" : out;
}

std::vector<std::string> MonitorConfig::default_groups(SecurityMode mode) {
  return {"task-queue=" + default_bind(mode, kTaskQueueGroupPort),
          "pool-manager=" + default_bind(mode, kPoolManagerGroupPort)};
}

void MonitorConfig::resolve_defaults(const Settings& s) {
  const SecurityMode mode = security.mode();
  if (!s.given("heartbeat-endpoint")) heartbeat_endpoint = default_bind(mode, kHeartbeatPort);
  if (!s.given("group")) groups = default_groups(mode);
  if (!s.given("ack-endpoint")) ack_endpoint = default_bind(mode, kAckPort);
  if (!s.given("control-endpoint")) control_endpoint = default_bind(mode, kControlPort);
}

std::vector<ServiceEndpoint> MonitorConfig::service_endpoints() const {
  std::vector<ServiceEndpoint> out{{"heartbeat-endpoint", heartbeat_endpoint, ""}};
  for (const GroupEndpoint& g : group_endpoints()) out.push_back({"group", g.endpoint, g.name});
  out.push_back({"ack-endpoint", ack_endpoint, ""});
  out.push_back({"control-endpoint", control_endpoint, ""});
  if (!metrics_address.empty()) out.push_back({"metrics-address", metrics_address, "", true});
  return out;
}

void MonitorConfig::register_settings(Settings& s) {
  security.register_settings(s);
  s.add("heartbeat-endpoint", heartbeat_endpoint,
        "SUB socket for runner heartbeats (bind; prefix connect: to connect)");
  s.add("subscribe", subscribe, "Topic prefixes to subscribe to, comma separated")->delimiter(',');
  s.add("group", groups, "Consumer groups as name=endpoint, comma separated; one PUSH socket each")
      ->delimiter(',');
  s.add("drop-group", drop_groups,
        "A group no longer configured whose pending events are deleted at start (repeatable). "
        "Without it, pending events of a group not in --group refuse the start")
      ->delimiter(',');
  s.add("ack-endpoint", ack_endpoint, "PULL socket for acknowledgements");
  s.add("control-endpoint", control_endpoint, "ROUTER socket for control and queries");
  s.add("metrics-address", metrics_address, kMetricsAddressHelp);
  s.add("instance", instance, "Name of this monitor, the start of its event ids");
  s.add("shards", shards, "Number of table shards (a power of two)");
  s.add("io-threads", io_threads,
        "ZeroMQ I/O threads; with --security curve they decrypt, so on many cores more of them "
        "spread the runners' connections");
  s.add("default-timeout-ms", default_timeout_ms, "Timeout of a runner that sends none");
  s.add("min-timeout-ms", min_timeout_ms, "Lower bound a runner's timeout_ms is clamped to");
  s.add("max-timeout-ms", max_timeout_ms, "Upper bound a runner's timeout_ms is clamped to");
  s.add("suspect-ratio", suspect_ratio,
        "Share of its timeout after which a silent runner shows as suspect");
  s.add("retention-ms", retention_ms, "How long completed and failed runners stay queryable");
  s.add("redelivery-interval-ms", redelivery_interval_ms,
        "Resend an unacknowledged event to its group after this long");
  s.add("heartbeat-hwm", heartbeat_hwm, "Receive high-water mark of the heartbeat socket");
  s.add("event-hwm", event_hwm, "Send high-water mark of each group's socket");
  register_storage_settings(s);
  s.add("save-interval-ms", save_interval_ms,
        "Save the runners that changed this often (a crash loses at most this much)");
  s.add("restart-grace-ms", restart_grace_ms,
        "Grace after a restart before a restored runner can time out; 0: its own timeout");
  s.add("outbox-window", outbox_window,
        "Pending events per consumer group held in memory; the rest wait on disk");
  s.add("backlog-alert", backlog_alert,
        "Unacknowledged events of one group that log an ERROR, count in rmon_backlog_alerts_total "
        "and fire the RmonOutboxBacklog alert (exported as rmon_events_backlog_alert_threshold)");
  s.add("storm-share", storm_share,
        "Storm brake: hold timeouts while more than this share of live runners is suspect");
  s.add("storm-min-runners", storm_min_runners,
        "Storm brake: only with at least this many live runners");
  s.add("stall-threshold-ms", stall_threshold_ms,
        "A monitor loop late by more than this is a stall: everyone gets a grace");
  s.add("stall-max-hold-ms", stall_max_hold_ms,
        "A stall holds convictions at most this long; then runners past their deadline are "
        "convicted anyway (ERROR, rmon_stall_hold_expired_total)");
}

std::vector<GroupEndpoint> MonitorConfig::group_endpoints() const {
  std::vector<GroupEndpoint> out;
  for (const std::string& g : groups) {
    const auto eq = g.find('=');
    if (eq == std::string::npos) continue;  // validate() reports it
    out.push_back({g.substr(0, eq), g.substr(eq + 1)});
  }
  return out;
}

std::string MonitorConfig::validate() const {
  if (groups.empty()) return "at least one --group is needed";
  if (io_threads < 1 || io_threads > 64) return "--io-threads must be within 1..64";
  std::set<std::string> names;
  for (const std::string& g : groups) {
    const auto eq = g.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == g.size()) {
      return "--group '" + g + "' is not name=endpoint";
    }
    if (!names.insert(g.substr(0, eq)).second) return "group '" + g.substr(0, eq) + "' is repeated";
  }
  for (const std::string& d : drop_groups) {
    if (d.empty()) return "--drop-group needs a group name";
    if (names.contains(d)) return "--drop-group '" + d + "' names a configured --group";
  }
  if (std::string err = security.validate(service_endpoints()); !err.empty()) return err;
  if (instance.empty() || instance.size() > 32) return "--instance must be 1 to 32 bytes";
  if (subscribe.empty()) return "at least one --subscribe prefix is needed";
  if (redelivery_interval_ms == 0 || redelivery_interval_ms > 86'400'000) {
    return "--redelivery-interval-ms must be 1 ms to 24 h";
  }
  if (heartbeat_hwm < 0 || event_hwm < 0) return "high-water marks cannot be negative";
  // An empty data folder keeps everything in memory (tests and benchmarks).
  if (!store::parse_sync_mode(sync)) return "--sync must be full or normal, not '" + sync + "'";
  if (save_interval_ms < 10 || save_interval_ms > 60'000) {
    return "--save-interval-ms must be within 10..60000";
  }
  if (restart_grace_ms > 86'400'000) return "--restart-grace-ms must be at most 24 h";
  if (outbox_window < 1 || outbox_window > 1'000'000) {
    return "--outbox-window must be within 1..1000000";
  }
  if (backlog_alert < 1) return "--backlog-alert must be at least 1";
  if (!(storm_share > 0.0 && storm_share <= 1.0)) return "--storm-share must be in (0, 1]";
  if (stall_threshold_ms < 100 || stall_threshold_ms > 3'600'000) {
    return "--stall-threshold-ms must be within 100..3600000";
  }
  if (stall_max_hold_ms < stall_threshold_ms || stall_max_hold_ms > 86'400'000) {
    return "--stall-max-hold-ms must be at least --stall-threshold-ms and at most 24 h";
  }
  return table_options("x").validate();
}

TableOptions MonitorConfig::table_options(const std::string& event_id_prefix) const {
  TableOptions t;
  t.shards = shards;
  t.default_timeout_ms = default_timeout_ms;
  t.min_timeout_ms = min_timeout_ms;
  t.max_timeout_ms = max_timeout_ms;
  t.suspect_ratio = suspect_ratio;
  t.suspect_grid_ms = suspect_grid_ms;
  t.retention_ms = retention_ms;
  t.event_id_prefix = event_id_prefix;
  return t;
}

OutboxOptions MonitorConfig::outbox_options() const {
  OutboxOptions o;
  o.groups.clear();
  for (const auto& g : group_endpoints()) o.groups.push_back(g.name);
  o.redelivery_interval = Millis(redelivery_interval_ms);
  o.window = outbox_window;
  return o;
}

DispatchOptions MonitorConfig::dispatch_options() const {
  DispatchOptions d;
  d.guards.storm_share = storm_share;
  d.guards.storm_min_runners = storm_min_runners;
  d.guards.stall_threshold = Millis(stall_threshold_ms);
  d.guards.stall_max_hold = Millis(stall_max_hold_ms);
  d.backlog_alert = backlog_alert;
  return d;
}

AckWriterOptions MonitorConfig::ack_writer_options() const {
  AckWriterOptions a;
  // Tombstones outlive the runners they fence (retention), with room to spare.
  a.tombstone_retention = Millis(2 * retention_ms + 60'000);
  return a;
}

std::string make_event_id_prefix(const std::string& instance, int64_t wall_ms) {
  std::random_device rd;
  char buf[64];
  std::snprintf(buf, sizeof buf, "-%llx-%08x", static_cast<unsigned long long>(wall_ms),
                static_cast<unsigned>(rd()));
  return instance + buf;
}

}  // namespace rmon::monitor
