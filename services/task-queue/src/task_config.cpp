#include "task_config.hpp"

namespace rmon::tq {

TaskQueueConfig::TaskQueueConfig() {
  set_api_port(5560);
  events_endpoints = {"tcp://127.0.0.1:5556"};
  metrics_address = default_metrics_address(9465);
}

void TaskQueueConfig::register_settings(Settings& s) {
  ConsumerServiceConfig::register_settings(s);
  s.add("backoff-base-ms", backoff_base_ms, "Requeue delay ceiling after a first lost attempt");
  s.add("backoff-factor", backoff_factor, "Growth of the delay ceiling per attempt");
  s.add("backoff-cap-ms", backoff_cap_ms, "Largest requeue delay ceiling");
  s.add("max-tasks", max_tasks,
        "Live (queued and leased) tasks at most; submit beyond: unavailable");
  s.add("retention-ms", retention_ms, "Completed, dead and cancelled tasks are deleted after this");
  s.add("event-retention-ms", event_retention_ms,
        "Applied timeout event ids are remembered this long (repeats are ignored)");
}

std::string TaskQueueConfig::validate() const {
  if (std::string e = ConsumerServiceConfig::validate(); !e.empty()) return e;
  if (backoff_cap_ms > 86'400'000) return "--backoff-cap-ms must be at most 86400000";
  if (backoff_base_ms > backoff_cap_ms) return "--backoff-base-ms must not exceed --backoff-cap-ms";
  if (!(backoff_factor >= 1.0 && backoff_factor <= 100.0)) {
    return "--backoff-factor must be within 1..100";
  }
  if (max_tasks < 1) return "--max-tasks must be at least 1";
  if (retention_ms < 1000 || retention_ms > 3650ull * 86'400'000) {
    return "--retention-ms must be within 1000..315360000000";
  }
  if (event_retention_ms < 1000 || event_retention_ms > 3650ull * 86'400'000) {
    return "--event-retention-ms must be within 1000..315360000000";
  }
  return {};
}

StoreOptions TaskQueueConfig::store_options() const {
  StoreOptions o;
  o.backoff = {backoff_base_ms, backoff_factor, backoff_cap_ms};
  o.first_heartbeat_grace_ms = first_heartbeat_grace_ms;
  o.max_live_tasks = max_tasks;
  o.retention_ms = retention_ms;
  o.event_retention_ms = event_retention_ms;
  return o;
}

}  // namespace rmon::tq
