#include "rmon/service/security_settings.hpp"

#include <arpa/inet.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include "rmon/zmq_util.hpp"

namespace rmon {
namespace {

constexpr std::string_view kTcp = "tcp://";

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// The host of "tcp://host:port" ("[::1]" without its brackets); empty when
// there is no port separator.
std::string_view tcp_host(std::string_view endpoint) {
  std::string_view rest = endpoint.substr(kTcp.size());
  const auto colon = rest.rfind(':');
  if (colon == std::string_view::npos) return {};
  std::string_view host = rest.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host;
}

bool is_loopback_host(std::string_view host) {
  if (host == "localhost" || host == "lo" || host == "::1") return true;
  const std::string h(host);
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  return false;
}

// An HTTP listener (CivetWeb's listening_ports) stays on this host only as
// exactly "host:port": an IPv4 127/8 address or localhost, and digits. Any
// other form is taken as reaching beyond: CivetWeb reads a comma as a second
// listener ("127.0.0.1:1,2" also listens on 0.0.0.0:2), a bare or '+' port as
// every address, an 's'/'r' suffix as TLS or a redirect, and it has no IPv6.
bool is_local_http_address(std::string_view address) {
  const auto colon = address.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == address.size()) return false;
  for (const char c : address.substr(colon + 1)) {
    if (c < '0' || c > '9') return false;
  }
  const std::string_view host = address.substr(0, colon);
  if (host == "localhost") return true;
  const std::string h(host);
  in_addr v4{};
  return inet_pton(AF_INET, h.c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127;
}

bool binds_beyond_host(const ServiceEndpoint& e) {
  if (e.http) return !is_local_http_address(e.endpoint);
  return !is_connect_endpoint(e.endpoint) && !is_local_endpoint(e.endpoint);
}

}  // namespace

std::string default_bind(SecurityMode mode, uint16_t port) {
  return std::string(kTcp) + (mode == SecurityMode::kCurve ? "*" : "127.0.0.1") + ":" +
         std::to_string(port);
}

std::string default_metrics_address(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

std::string ServiceEndpoint::describe() const {
  return "--" + setting + " " + (name.empty() ? std::string() : name + "=") + endpoint;
}

bool is_local_endpoint(std::string_view endpoint) {
  if (starts_with(endpoint, "ipc://") || starts_with(endpoint, "inproc://")) return true;
  if (!starts_with(endpoint, kTcp)) return false;
  return is_loopback_host(tcp_host(endpoint));
}

void SecuritySettings::register_settings(Settings& s) {
  s.add("security", security,
        "off: no authentication, endpoints bind loopback by default; curve: every bound socket "
        "is a CurveZMQ server admitting the keys of --curve-clients-dir");
  s.add_flag("insecure-listen", insecure_listen,
             "With --security off, allow binding addresses reachable from other hosts (anyone "
             "who can reach them can do anything the service offers)");
  s.add("curve-secret-file", curve_secret_file,
        "--security curve: this service's own NAME.key_secret (mode 0600)");
  s.add("curve-clients-dir", curve_clients_dir,
        "--security curve: folder of the public NAME.key files of the clients admitted");
}

SecurityMode SecuritySettings::mode() const {
  return security == "curve" ? SecurityMode::kCurve : SecurityMode::kOff;
}

std::string SecuritySettings::validate(const std::vector<ServiceEndpoint>& endpoints) const {
  if (security != "off" && security != "curve") {
    return "--security must be off or curve, not '" + security + "'";
  }
  if (curve()) {
    if (curve_secret_file.empty() || curve_clients_dir.empty()) {
      return "--security curve needs --curve-secret-file and --curve-clients-dir";
    }
    for (const ServiceEndpoint& e : endpoints) {
      if (!e.http && is_connect_endpoint(e.endpoint)) {
        return e.describe() +
               ": with --security curve every endpoint must bind (a connecting socket is not a "
               "CURVE client yet)";
      }
    }
    return {};
  }
  if (insecure_listen) return {};
  for (const ServiceEndpoint& e : endpoints) {
    if (!binds_beyond_host(e)) continue;
    if (e.http) {
      return e.describe() +
             " is reachable from other hosts and --security is off: bind a loopback address "
             "(127.0.0.1:<port>) or accept the risk with --insecure-listen";
    }
    return e.describe() +
           " is reachable from other hosts and --security is off: bind a loopback address "
           "(tcp://127.0.0.1:<port>), use --security curve, or accept the risk with "
           "--insecure-listen";
  }
  return {};
}

void SecuritySettings::warn_exposed(const std::vector<ServiceEndpoint>& endpoints,
                                    std::string_view exposure) const {
  if (curve()) return;
  for (const ServiceEndpoint& e : endpoints) {
    if (!binds_beyond_host(e)) continue;
    spdlog::warn(
        "INSECURE: {} is reachable from other hosts without authentication "
        "(--security off --insecure-listen): anyone who can reach it can {}",
        e.describe(), e.http ? std::string_view("read the service's metrics") : exposure);
  }
}

}  // namespace rmon
