#include "rmon/service/consumer_config.hpp"

#include "rmon/store/postgres.hpp"
#include "rmon/zmq_util.hpp"

namespace rmon {

void StorageSettings::register_storage_settings(Settings& s) {
  s.add("data-dir", data_dir,
        "Folder for this service's files, named after it (shared with the other services)");
  s.add("sync", sync,
        "SQLite synchronous mode: full (survives power loss) or normal (survives a crash)");
}

std::string StorageSettings::validate_storage() const {
  if (data_dir.empty()) return "--data-dir must not be empty";
  if (!store::parse_sync_mode(sync)) return "--sync must be full or normal, not '" + sync + "'";
  return {};
}

store::SyncMode StorageSettings::sync_mode() const {
  return store::parse_sync_mode(sync).value_or(store::SyncMode::kFull);
}

void ConsumerServiceConfig::set_api_port(uint16_t port) {
  api_port_ = port;
  api_endpoint = default_bind(SecurityMode::kOff, port);
}

void ConsumerServiceConfig::resolve_defaults(const Settings& s) {
  if (api_port_ != 0 && !s.given("api-endpoint")) {
    api_endpoint = default_bind(security.mode(), api_port_);
  }
}

std::vector<ServiceEndpoint> ConsumerServiceConfig::service_endpoints() const {
  std::vector<ServiceEndpoint> out{{"api-endpoint", api_endpoint, ""}};
  if (!metrics_address.empty()) out.push_back({"metrics-address", metrics_address, "", true});
  return out;
}

void ConsumerServiceConfig::register_settings(Settings& s) {
  security.register_settings(s);
  register_storage_settings(s);
  s.add("store", store,
        "Where the state lives: empty for SQLite in --data-dir (one process per folder), or a "
        "postgresql://user:password@host:port/db URL that any number of replicas share");
  s.add("api-endpoint", api_endpoint, "ROUTER socket for the API (binds; 'connect:' to connect)");
  // Several monitors (a pair, or partitions): comma-separated lists, the
  // i-th entry of each for the i-th monitor.
  s.add("events-endpoint", events_endpoints,
        "Each monitor's timeout events for this group (PULL, connects); comma separated, one "
        "per monitor")
      ->delimiter(',');
  s.add("ack-endpoint", ack_endpoints,
        "Each monitor's acknowledgement socket (PUSH, connects), in the same order")
      ->delimiter(',');
  s.add("monitor-endpoint", monitor_endpoints,
        "Each monitor's control socket, for reconciliation lookups, in the same order")
      ->delimiter(',');
  s.add("monitor-curve-secret-file", monitor_curve_secret_file,
        "--security curve: this service's own key to the monitors (a consumer of its group)");
  s.add("monitor-public-key-file", monitor_public_key_file,
        "--security curve: the monitors' public key (runner-monitor.key)");
  s.add("metrics-address", metrics_address, kMetricsAddressHelp);
  s.add("first-heartbeat-grace-ms", first_heartbeat_grace_ms,
        "A lease/slot is reconciled once this old; a monitor up for less cannot call it gone");
  s.add("reconcile-interval-ms", reconcile_interval_ms,
        "How often every lease/slot is looked up at the monitor");
  s.add("end-settle-ms", end_settle_ms,
        "Take back a lease/slot whose runner ended (completed/failed) this long ago");
  s.add("monitor-timeout-ms", monitor_timeout_ms,
        "A monitor query unanswered this long counts as unreachable");
  s.add("max-batch", max_batch, "Requests and events applied in one commit, at most");
  s.add("max-in-flight", max_in_flight,
        "With --sync full (or --pg-pipelined-commits): batches committed and waiting for their "
        "flush while the next are applied, at most (0: each batch waits for its own)");
  s.add_flag("pg-pipelined-commits", pg_pipelined_commits,
             "PostgreSQL: commit without waiting for the WAL flush and release replies once a "
             "second connection's synchronous commit has flushed it (off: each commit waits)");
}

std::string ConsumerServiceConfig::validate() const {
  if (std::string err = validate_storage(); !err.empty()) return err;
  if (!store.empty() && !store::is_postgres_url(store)) {
    return "--store must be empty (SQLite in --data-dir) or a postgresql:// URL, not '" +
           store::redact_url(store) + "'";
  }
  if (api_endpoint.empty()) return "--api-endpoint must not be empty";
  if (monitor_endpoints.empty() || monitor_endpoints.size() > kMaxMonitors) {
    return "--monitor-endpoint must list 1 to " + std::to_string(kMaxMonitors) + " monitors";
  }
  if (events_endpoints.size() != monitor_endpoints.size() ||
      ack_endpoints.size() != monitor_endpoints.size()) {
    return "--events-endpoint, --ack-endpoint and --monitor-endpoint must list the same "
           "monitors (" +
           std::to_string(events_endpoints.size()) + ", " + std::to_string(ack_endpoints.size()) +
           " and " + std::to_string(monitor_endpoints.size()) + " endpoints given)";
  }
  for (const auto* list : {&events_endpoints, &ack_endpoints, &monitor_endpoints}) {
    for (const std::string& e : *list) {
      if (std::string why = endpoint_problem(e); !why.empty()) return why;
    }
  }
  for (std::size_t i = 0; i < monitor_endpoints.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      // A shared ack endpoint would send one monitor's acks to the other:
      // the first would redeliver for ever.
      if (events_endpoints[i] == events_endpoints[j] || ack_endpoints[i] == ack_endpoints[j] ||
          monitor_endpoints[i] == monitor_endpoints[j]) {
        return "monitor " + std::to_string(i + 1) + " repeats monitor " + std::to_string(j + 1) +
               "'s endpoints: each monitor is listed once";
      }
    }
  }
  if (std::string err = security.validate(service_endpoints()); !err.empty()) return err;
  if (security.curve() && (monitor_curve_secret_file.empty() || monitor_public_key_file.empty())) {
    return "--security curve needs --monitor-curve-secret-file (this service's key to the "
           "monitor) and --monitor-public-key-file (the monitor's)";
  }
  if (first_heartbeat_grace_ms < 100 || first_heartbeat_grace_ms > 86'400'000) {
    return "--first-heartbeat-grace-ms must be within 100..86400000";
  }
  if (monitor_timeout_ms < 10 || monitor_timeout_ms > 600'000) {
    return "--monitor-timeout-ms must be within 10..600000";
  }
  if (max_batch < 1 || max_batch > 100'000) return "--max-batch must be within 1..100000";
  if (max_in_flight > 1'024) return "--max-in-flight must be within 0..1024";
  if (reconcile_interval_ms < 10 || reconcile_interval_ms > 86'400'000) {
    return "--reconcile-interval-ms must be within 10..86400000";
  }
  if (tick_interval_ms < 1 || tick_interval_ms > 60'000) return "tick interval must be 1..60000 ms";
  if (end_settle_ms > 86'400'000) return "--end-settle-ms must be within 0..86400000";
  return {};
}

}  // namespace rmon
