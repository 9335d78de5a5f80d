#include "console_config.hpp"

#include "rmon/service/security_settings.hpp"

namespace rmon::console {

void ConsoleConfig::register_settings(Settings& s) {
  s.add("listen", listen,
        "host:port of the console's web server (plain HTTP, no login: loopback by default)");
  s.add_flag("insecure-listen", insecure_listen,
             "Allow a --listen address reachable from other hosts (anyone reaching it can do "
             "what the console's key may)");
  s.add("allowed-host", allowed_hosts,
        "A host name requests may be addressed to besides loopback ones (repeat or comma "
        "separate; e.g. the name of a proxy in front)")
      ->delimiter(',');
  s.add("monitor-endpoint", monitor_endpoint, "The runner-monitor's control socket");
  s.add("task-queue-endpoint", task_queue_endpoint, "The task-queue's API socket");
  s.add("pool-manager-endpoint", pool_manager_endpoint, "The pool-manager's API socket");
  s.add("timeout-ms", timeout_ms, "A service's reply is awaited this long");
  s.add("history-interval-ms", history_interval_ms,
        "How often the counters behind the overview's chart are sampled");
  s.add("history-span-ms", history_span_ms, "How much of that history is kept (memory bound)");
  security.add_options(s.app(), kServiceEnvPrefix);
}

std::string ConsoleConfig::validate() const {
  if (std::string err = security.validate(); !err.empty()) return err;
  if (listen.empty()) return "--listen must not be empty";
  const ServiceEndpoint web{"listen", listen, "", true};
  SecuritySettings off;  // the console's HTTP is never authenticated: the off rule
  off.insecure_listen = insecure_listen;
  if (std::string err = off.validate({web}); !err.empty()) return err;
  if (timeout_ms < 10 || timeout_ms > 60'000) return "--timeout-ms must be 10 to 60000";
  if (history_interval_ms < 100) return "--history-interval-ms must be at least 100";
  if (history_span_ms < history_interval_ms || history_span_ms > 7 * 86'400'000ULL) {
    return "--history-span-ms must be one interval to 7 days";
  }
  return {};
}

std::size_t ConsoleConfig::history_samples() const {
  return static_cast<std::size_t>(history_span_ms / history_interval_ms) + 1;
}

}  // namespace rmon::console
