#pragma once
// runner-monitor settings: defaults are the protocol's default endpoints (on
// loopback unless --security curve) and timing. Each is a flag, an RMON_* environment variable and
// a config-file key (see rmon/config.hpp); `runner-monitor --help` lists them.

#include <cstdint>
#include <string>
#include <vector>

#include "ack_writer.hpp"
#include "dispatcher.hpp"
#include "outbox.hpp"
#include "persister.hpp"
#include "rmon/config.hpp"
#include "rmon/service/security_settings.hpp"
#include "rmon/service/storage_config.hpp"
#include "runner_table.hpp"

namespace rmon::monitor {

struct GroupEndpoint {
  std::string name;
  std::string endpoint;
};

struct MonitorConfig : StorageSettings {
  // The outbox commits once per sweep; fsyncing it (`full`) puts the disk's
  // fsync latency in front of every timeout event (README, Reliability), so
  // the monitor defaults to `normal`: it survives kill -9, not power loss.
  MonitorConfig() { sync = "normal"; }

  // The protocol's ports. Endpoints left at their default bind loopback with
  // --security off and every address with curve (resolve_defaults()).
  static constexpr uint16_t kHeartbeatPort = 5555, kTaskQueueGroupPort = 5556,
                            kPoolManagerGroupPort = 5557, kAckPort = 5558, kControlPort = 5559;
  // The host name, cut to the characters an id may use and to 32 bytes;
  // "rmon" when it has none.
  static std::string default_instance();
  static std::vector<std::string> default_groups(SecurityMode mode);

  SecuritySettings security;
  // Endpoints bind unless written "connect:<endpoint>".
  std::string heartbeat_endpoint = default_bind(SecurityMode::kOff, kHeartbeatPort);
  std::vector<std::string> subscribe = {"hb/"};
  std::vector<std::string> groups = default_groups(SecurityMode::kOff);
  // Groups no longer configured whose pending events may be deleted at start;
  // without it such events refuse the start (a misspelled --group).
  std::vector<std::string> drop_groups;
  std::string ack_endpoint = default_bind(SecurityMode::kOff, kAckPort);
  std::string control_endpoint = default_bind(SecurityMode::kOff, kControlPort);
  std::string metrics_address = default_metrics_address(9464);  // empty disables /metrics
  // Event ids: <instance>-<start time>-<random>-<n>. The host's name by
  // default (default_instance()), so the monitors of a pair on two hosts
  // tell apart in their ids and logs.
  std::string instance = default_instance();

  uint32_t shards = 64;
  uint32_t io_threads = 1;  // ZeroMQ I/O threads (CURVE's crypto runs on them)
  uint64_t default_timeout_ms = 60'000;
  uint64_t min_timeout_ms = 100;
  uint64_t max_timeout_ms = 86'400'000;
  double suspect_ratio = 0.5;
  // No flag: TableOptions::suspect_grid_ms (benchmarks compare grids).
  uint64_t suspect_grid_ms = TableOptions{}.suspect_grid_ms;
  // No flag: Persister's rewrite_pass (benchmarks compare it).
  std::size_t rewrite_pass_runners = kRewritePassRunners;
  uint64_t retention_ms = 600'000;
  uint64_t redelivery_interval_ms = 5'000;
  int heartbeat_hwm = 1000;  // per publisher; a deep queue costs cache misses, see README
  int event_hwm = 100'000;

  // Durability (data_dir and sync come from StorageSettings).
  uint64_t save_interval_ms = 200;  // runner table saved this often (changes only)
  uint64_t restart_grace_ms = 0;    // 0: each restored runner's own timeout
  uint64_t outbox_window = 4096;    // pending events per group held in memory
  uint64_t backlog_alert = 10'000;  // pending events of one group that log an ERROR

  // Self-protection (guards.hpp).
  double storm_share = 0.5;
  uint64_t storm_min_runners = 100;
  uint64_t stall_threshold_ms = 2000;
  uint64_t stall_max_hold_ms = 30'000;  // then convict anyway (guards.hpp says why 30 s)

  // Registers every setting on `s`.
  void register_settings(Settings& s);
  // After parsing: the endpoints `s` did not set take --security's defaults.
  void resolve_defaults(const Settings& s);
  // Empty when consistent, else what is wrong.
  std::string validate() const;
  // Every socket endpoint, named by its setting (--security checks them).
  std::vector<ServiceEndpoint> service_endpoints() const;

  std::vector<GroupEndpoint> group_endpoints() const;  // parsed `groups`
  TableOptions table_options(const std::string& event_id_prefix) const;
  OutboxOptions outbox_options() const;
  DispatchOptions dispatch_options() const;
  AckWriterOptions ack_writer_options() const;
};

// "<instance>-<wall ms, hex>-<random, hex>": unique across restarts.
std::string make_event_id_prefix(const std::string& instance, int64_t wall_ms);

}  // namespace rmon::monitor
