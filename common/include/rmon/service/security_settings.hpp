#pragma once
// --security off|curve and the protected defaults (PROTOCOL.md "Security"),
// the same for every service:
//
//   off (default)  no authentication. Default endpoints bind loopback; binding
//                  anything that reaches beyond this host needs
//                  --insecure-listen, and each such endpoint is logged at WARN
//                  with what anyone reaching it could do. Without the flag the
//                  configuration is invalid (exit status 2, the endpoint named).
//   curve          every bound socket is a CURVE server (server_security.hpp);
//                  default endpoints bind every address again.
//
// default_bind() is the one place that decides where a default endpoint
// binds; a service's settings call it for each endpoint left at its default
// (resolve_defaults(), after parsing).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "rmon/config.hpp"

namespace rmon {

enum class SecurityMode : uint8_t { kOff, kCurve };

// "tcp://127.0.0.1:<port>" with security off, "tcp://*:<port>" with curve.
std::string default_bind(SecurityMode mode, uint16_t port);

// "127.0.0.1:<port>": where /metrics listens by default, with either mode
// (it is plain HTTP and unauthenticated; publish it deliberately).
std::string default_metrics_address(uint16_t port);
// The --metrics-address setting's help, the same for every service.
inline constexpr const char* kMetricsAddressHelp =
    "host:port for Prometheus /metrics (plain HTTP, unauthenticated; loopback by default, and "
    "with --security off a wider address needs --insecure-listen); empty disables it";

// Whether binding `endpoint` keeps it on this host: tcp on a loopback address
// (127.0.0.0/8, [::1], localhost, the `lo` interface), ipc:// or inproc://.
// Anything else (tcp://*, an interface, another address, other transports)
// is reachable from the network.
bool is_local_endpoint(std::string_view endpoint);

// An endpoint a service binds or connects through attach() (zmq_util.hpp),
// named by its setting for messages: {"heartbeat-endpoint", "tcp://*:5555"},
// {"group", "tcp://*:5556", "task-queue"}.
struct ServiceEndpoint {
  std::string setting;
  std::string endpoint;
  std::string name;  // a named entry of a list setting (a group), else empty
  // A plain-HTTP listener ("host:port": /metrics), not a ZeroMQ endpoint: it
  // is never CURVE, so the loopback rule of --security off applies to it
  // whatever the mode's other defaults.
  bool http = false;

  // "--heartbeat-endpoint tcp://*:5555", "--group task-queue=tcp://*:5556".
  std::string describe() const;
};

// The settings every service registers. Thread-safe once parsed (const).
struct SecuritySettings {
  std::string security = "off";
  bool insecure_listen = false;
  std::string curve_secret_file;  // the service's own NAME.key_secret
  std::string curve_clients_dir;  // the public NAME.key files it admits

  void register_settings(Settings& s);
  // kCurve only for "curve"; validate() rejects anything but off and curve.
  SecurityMode mode() const;
  bool curve() const { return mode() == SecurityMode::kCurve; }

  // Empty when consistent, else what is wrong: an unknown mode, curve without
  // its key settings or with an endpoint that connects (only bound sockets
  // are CURVE servers so far), off with an endpoint of `endpoints` that binds
  // beyond this host and no --insecure-listen.
  std::string validate(const std::vector<ServiceEndpoint>& endpoints) const;

  // At start, with off and --insecure-listen: one WARN per endpoint that binds
  // beyond this host, saying that anyone who can reach it can `exposure`.
  void warn_exposed(const std::vector<ServiceEndpoint>& endpoints, std::string_view exposure) const;
};

}  // namespace rmon
