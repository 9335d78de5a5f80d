#pragma once
// The client side of --security curve, for every program that connects: the
// runner library, rmon-ctl, runner-sim, rmon-event-sink, and the task-queue
// and pool-manager as clients of the monitor.
//
//   ClientSecurity sec{"curve", "keys/clients/runner.key_secret", "keys/servers"};
//   auto keys = sec.keys_for(kMonitorService);       // error: do not start
//   ClientSocket hb(ctx, zmq::socket_type::pub, opts, endpoint, keys.value());
//   ... hb.socket().send(...);
//   hb.maintain();                                    // regularly, on its thread
//
// A server's ZAP handler that refuses the client's key answers 400, and libzmq
// never retries that connection. ClientSocket watches the handshakes (socket
// monitor), logs "key not enrolled: <own public key>" and replaces the socket
// with backoff (100 ms doubling to 5 s), so a client enrolled later recovers
// by itself. With security off it is a plain socket and costs nothing more.

#include <CLI/CLI.hpp>
#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "rmon/security/curve_socket.hpp"
#include "rmon/security/error.hpp"
#include "rmon/security/handshake_monitor.hpp"
#include "rmon/zmq_util.hpp"

namespace rmon::security {

// The services, as their key files are named (rmon-keygen init writes
// servers/<name>.key).
inline constexpr std::string_view kMonitorService = "runner-monitor";
inline constexpr std::string_view kTaskQueueService = "task-queue";
inline constexpr std::string_view kPoolManagerService = "pool-manager";

// A client's --security settings: its own key pair and the folder of the
// servers' public keys (<service>.key).
struct ClientSecurity {
  std::string mode = "off";  // off | curve
  std::string secret_file;   // the client's own NAME.key_secret
  std::string servers_dir;   // runner-monitor.key, task-queue.key, pool-manager.key

  bool curve() const { return mode == "curve"; }
  // Registers --security, --curve-secret-file and --curve-servers-dir on
  // `app`, each also read from `env_prefix` + its name (RMON_CTL_SECURITY).
  void add_options(CLI::App& app, std::string_view env_prefix);
  // Empty when consistent, else what is wrong (an unknown mode, curve
  // without its files).
  std::string validate() const;
  // The keys for a connection to `service`: nullopt with off. An error names
  // the file that could not be read.
  Expected<std::optional<ClientKeys>> keys_for(std::string_view service) const;
};

// A connecting socket, CURVE (with keys) or plain, that recovers from a
// refused handshake. Not thread-safe: use it from the socket's thread.
class ClientSocket {
 public:
  // Creates the socket with `options` (make_socket), makes it a CURVE client
  // when `keys` is set (its linger is options.linger_ms), and connects.
  // Throws zmq::error_t on a malformed endpoint.
  ClientSocket(zmq::context_t& ctx, zmq::socket_type type, SocketOptions options,
               std::string endpoint, std::optional<ClientKeys> keys);
  ~ClientSocket();
  ClientSocket(const ClientSocket&) = delete;
  ClientSocket& operator=(const ClientSocket&) = delete;

  zmq::socket_t& socket() { return socket_; }
  const std::string& endpoint() const { return endpoint_; }
  bool curve() const { return keys_.has_value(); }
  // The handshake events' socket (readable when there are some), for a
  // zmq::poll set; null without CURVE.
  void* events_handle() const;

  // Reads the handshake events without blocking. After a refusal it logs the
  // client's public key (WARN, rate limited) and, once the backoff has
  // passed, replaces the socket. True when this call replaced it: whatever
  // was queued on the old one is gone (a request has no answer coming).
  bool maintain(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());
  // Replaces the socket now (a request client after a timeout).
  void reconnect();

  // Refused at the last handshake, and no handshake succeeded since.
  bool refused() const { return refused_; }
  // Refused, and waiting for the backoff before it tries again.
  bool backing_off() const { return reopen_at_.has_value(); }
  // The client's own public key (CURVE only).
  const PublicKey& public_key() const { return keys_->own.public_key; }
  uint64_t refusals() const { return refusals_; }

 private:
  void open();

  zmq::context_t& ctx_;
  const zmq::socket_type type_;
  const SocketOptions options_;
  const std::string endpoint_;
  const std::optional<ClientKeys> keys_;
  zmq::socket_t socket_;
  std::unique_ptr<HandshakeMonitor> monitor_;  // destroyed before socket_
  bool refused_ = false;
  uint64_t refusals_ = 0;
  std::chrono::milliseconds backoff_{0};
  std::optional<std::chrono::steady_clock::time_point> reopen_at_;
};

}  // namespace rmon::security
