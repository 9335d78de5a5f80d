#pragma once
// Settings for services run inside a test process on 127.0.0.1: every
// endpoint a wildcard port (read it back from the service's endpoints()),
// /metrics off (civetweb takes ~2 s to stop: only tests of /metrics turn it
// on). A test adjusts the fields it needs otherwise after the call.

#include <cstddef>
#include <string>
#include <type_traits>

#include "rmon/service/consumer_config.hpp"
#include "service.hpp"

namespace rmon::testing {

// An endpoint to bind on a wildcard port of 127.0.0.1 (a fake monitor's
// sockets too): read the port back with bind_endpoint() or endpoints().
inline const std::string kLoopbackAnyPort = "tcp://127.0.0.1:*";

// A monitor group on a wildcard port: "<name>=tcp://127.0.0.1:*".
inline std::string loopback_group(const std::string& name) { return name + "=" + kLoopbackAnyPort; }

// A monitor for the task-queue and pool-manager groups (in that order), in
// memory, few shards, quick redelivery.
inline monitor::MonitorConfig loopback_monitor_config() {
  monitor::MonitorConfig c;
  c.heartbeat_endpoint = kLoopbackAnyPort;
  c.groups = {loopback_group("task-queue"), loopback_group("pool-manager")};
  c.ack_endpoint = kLoopbackAnyPort;
  c.control_endpoint = kLoopbackAnyPort;
  c.metrics_address = "";
  c.shards = 4;
  c.redelivery_interval_ms = 500;
  c.data_dir.clear();  // in memory: these tests are not about restarts
  return c;
}

// A consumer service (tq::TaskQueueConfig, pool::PoolConfig) with its API on
// a wildcard port, its database in `data_dir` (sync full, the default:
// every test goes through the pipelined commit and its fsync thread),
// reconciling every 100 ms. The monitor endpoints
// are the caller's: connect_to_monitor(), or a fake monitor's.
template <class Config>
Config loopback_consumer_config(const std::string& data_dir) {
  static_assert(std::is_base_of_v<ConsumerServiceConfig, Config>);
  Config c;
  c.data_dir = data_dir;
  c.sync = "full";
  c.api_endpoint = kLoopbackAnyPort;
  c.metrics_address = "";
  c.reconcile_interval_ms = 100;
  return c;
}

// Points a consumer at a started monitor: the PUSH of its `group`-th group,
// the ack PULL and the control socket.
inline void connect_to_monitor(ConsumerServiceConfig& c, const monitor::BoundEndpoints& monitor,
                               std::size_t group) {
  c.events_endpoints = {monitor.groups.at(group)};
  c.ack_endpoints = {monitor.ack};
  c.monitor_endpoints = {monitor.control};
}

}  // namespace rmon::testing
