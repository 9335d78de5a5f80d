#include "monitor_config.hpp"

#include <cstdio>
#include <random>
#include <set>

namespace rmon::monitor {

void MonitorConfig::register_settings(Settings& s) {
  s.add("heartbeat-endpoint", heartbeat_endpoint,
        "SUB socket for runner heartbeats (bind; prefix connect: to connect)");
  s.add("subscribe", subscribe, "Topic prefixes to subscribe to, comma separated")->delimiter(',');
  s.add("group", groups, "Consumer groups as name=endpoint, comma separated; one PUSH socket each")
      ->delimiter(',');
  s.add("ack-endpoint", ack_endpoint, "PULL socket for acknowledgements");
  s.add("control-endpoint", control_endpoint, "ROUTER socket for control and queries");
  s.add("metrics-address", metrics_address, "host:port for Prometheus /metrics; empty disables it");
  s.add("instance", instance, "Name of this monitor, the start of its event ids");
  s.add("shards", shards, "Number of table shards (a power of two)");
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
  std::set<std::string> names;
  for (const std::string& g : groups) {
    const auto eq = g.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == g.size()) {
      return "--group '" + g + "' is not name=endpoint";
    }
    if (!names.insert(g.substr(0, eq)).second) return "group '" + g.substr(0, eq) + "' is repeated";
  }
  if (instance.empty() || instance.size() > 32) return "--instance must be 1 to 32 bytes";
  if (subscribe.empty()) return "at least one --subscribe prefix is needed";
  if (redelivery_interval_ms == 0 || redelivery_interval_ms > 86'400'000) {
    return "--redelivery-interval-ms must be 1 ms to 24 h";
  }
  if (heartbeat_hwm < 0 || event_hwm < 0) return "high-water marks cannot be negative";
  return table_options("x").validate();
}

TableOptions MonitorConfig::table_options(const std::string& event_id_prefix) const {
  TableOptions t;
  t.shards = shards;
  t.default_timeout_ms = default_timeout_ms;
  t.min_timeout_ms = min_timeout_ms;
  t.max_timeout_ms = max_timeout_ms;
  t.suspect_ratio = suspect_ratio;
  t.retention_ms = retention_ms;
  t.event_id_prefix = event_id_prefix;
  return t;
}

OutboxOptions MonitorConfig::outbox_options() const {
  OutboxOptions o;
  o.groups.clear();
  for (const auto& g : group_endpoints()) o.groups.push_back(g.name);
  o.redelivery_interval = Millis(redelivery_interval_ms);
  return o;
}

std::string make_event_id_prefix(const std::string& instance, int64_t wall_ms) {
  std::random_device rd;
  char buf[64];
  std::snprintf(buf, sizeof buf, "-%llx-%08x", static_cast<unsigned long long>(wall_ms),
                static_cast<unsigned>(rd()));
  return instance + buf;
}

}  // namespace rmon::monitor
