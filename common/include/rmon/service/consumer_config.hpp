#pragma once
// Settings shared by the services that consume the monitor's timeout events
// (task-queue, pool-manager): data folder, durability, their API endpoint,
// the monitor's endpoints, /metrics, the first-heartbeat grace,
// reconciliation and --security. Each
// service sets its own defaults (API port, event group endpoint, metrics
// port) before registering; `--help` shows them.

#include <cstdint>
#include <string>
#include <vector>

#include "rmon/config.hpp"
#include "rmon/service/security_settings.hpp"
#include "rmon/service/storage_config.hpp"
#include "rmon/store/wal_syncer.hpp"

namespace rmon {

// Monitors one consumer service may list, at most.
inline constexpr std::size_t kMaxMonitors = 16;

struct ConsumerServiceConfig : StorageSettings {
  SecuritySettings security;
  // Where the state lives: empty for SQLite in the data folder (one process
  // per folder), or a postgresql:// URL shared by any number of replicas.
  std::string store;
  std::string api_endpoint;  // ROUTER, bind ("connect:..." connects)
  // The monitors this service listens to (a pair, partitions, or one), the
  // i-th entry of each list for the i-th monitor; all connected. Each
  // monitor's events come in on its own PULL and are acknowledged on its own
  // ack PUSH; reconciliation asks every control socket.
  std::vector<std::string> events_endpoints;                              // its PUSH for this group
  std::vector<std::string> ack_endpoints = {"tcp://127.0.0.1:5558"};      // its ack PULL
  std::vector<std::string> monitor_endpoints = {"tcp://127.0.0.1:5559"};  // its control
  // --security curve: this service's own key as a client of the monitors
  // (role consumer of its group) and the monitors' public key (the monitors
  // of one deployment share the runner-monitor key pair).
  std::string monitor_curve_secret_file;
  std::string monitor_public_key_file;
  std::string metrics_address;  // empty disables /metrics
  uint64_t first_heartbeat_grace_ms = 30'000;
  uint64_t reconcile_interval_ms = 10'000;  // every lease/holding looked up this often
  uint64_t end_settle_ms = 10'000;  // a runner ended this long ago without telling us: take back
  uint64_t monitor_timeout_ms = 2'000;  // a lookup unanswered this long: monitor unreachable
  uint64_t max_batch = 512;             // requests and events per commit
  // --sync full: batches committed whose fsync is pending (their replies and
  // acks held back) while the next ones are applied; 0: none (each batch
  // waits for its own fsync, no pipelining).
  uint64_t max_in_flight = 64;
  // PostgreSQL: pipeline the commits' WAL flush (store::PgSyncer), up to
  // max_in_flight batches. Off by default: on the 2-core machine it was
  // measured on it gained nothing (see the README).
  bool pg_pipelined_commits = false;
  // Not a flag: how often maintenance (retention) runs; tests shorten it.
  uint64_t tick_interval_ms = 1'000;
  // Not a flag: tests replace the log's fsync (--sync full) with a gate.
  store::WalSyncer::SyncFn log_sync_for_tests;

  void register_settings(Settings& s);
  // After parsing: an API endpoint `s` did not set takes --security's default.
  void resolve_defaults(const Settings& s);
  std::string validate() const;  // empty when consistent
  std::size_t monitor_count() const { return monitor_endpoints.size(); }
  bool postgres() const { return !store.empty(); }
  // The endpoints this service binds or connects through attach(): the API.
  std::vector<ServiceEndpoint> service_endpoints() const;

 protected:
  // The service's API port: its default endpoint (see default_bind()).
  void set_api_port(uint16_t port);

 private:
  uint16_t api_port_ = 0;  // 0: no default
};

}  // namespace rmon
