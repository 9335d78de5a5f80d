#pragma once
// rmon-console's settings (flags, RMON_CONSOLE_* variables or a config file).

#include <cstdint>
#include <string>
#include <vector>

#include "rmon/config.hpp"
#include "rmon/security/client.hpp"

namespace rmon::console {

struct ConsoleConfig {
  // Plain HTTP with no login of its own: whoever reaches it can do what its
  // key may (reader: look; admin: cancel, retry, release the brake). Loopback
  // by default; anything wider needs --insecure-listen, in both modes.
  std::string listen = "127.0.0.1:8080";
  bool insecure_listen = false;
  // Host names (without the port) a request may be addressed to, besides
  // the loopback ones (localhost, 127.x.y.z, [::1]): anything else is refused
  // (DNS rebinding), whatever --listen is.
  std::vector<std::string> allowed_hosts;
  std::string monitor_endpoint = "tcp://127.0.0.1:5559";
  std::string task_queue_endpoint = "tcp://127.0.0.1:5560";
  std::string pool_manager_endpoint = "tcp://127.0.0.1:5561";
  int timeout_ms = 2000;                  // per request to a service
  uint64_t history_interval_ms = 10'000;  // counters sampled for the charts
  uint64_t history_span_ms = 3'600'000;   // kept for the charts: the last hour
  security::ClientSecurity security;

  void register_settings(Settings& s);
  void resolve_defaults(const Settings&) {}
  std::string validate() const;
  // How many history samples are kept (span / interval + 1).
  std::size_t history_samples() const;
};

}  // namespace rmon::console
