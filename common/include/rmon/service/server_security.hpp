#pragma once
// A service's CURVE server side (--security curve; security_settings.hpp),
// the wiring plan of rmon/security/security.hpp steps 1-3 and 5 in one place:
//
//   ServerSecurity sec(ctx, settings);     // keys, keyring, ZAP handler: before any bind
//   sec.secure(socket, Domain::hb());      // each bound socket, before bind()
//   MessageGate gate(sec, Domain::hb());   // one per receiving thread
//   if (!gate.allow(payload, ops::kHeartbeat, runner_id)) drop;
//   endpoint.add_collector([&] { return security_metrics(&sec); });
//
// Every refusal is counted, rmon_authz_denied_total{endpoint,op,reason}, and
// logged at WARN (rate limited) with the principal's name, never a secret.
//
// The clients folder is reloaded when it changes (inotify) and on reload()
// (SIGHUP); a removed key is refused at its next message.
//
// Thread safety: ServerSecurity is thread-safe after construction; a
// MessageGate belongs to one thread. Destroy ServerSecurity (it stops the ZAP
// handler) before the context it was given.

#include <prometheus/metric_family.h>
#include <zmq.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include "rmon/logging.hpp"
#include "rmon/security/curve_socket.hpp"
#include "rmon/security/handshake_monitor.hpp"
#include "rmon/security/keyring.hpp"
#include "rmon/security/keyring_watcher.hpp"
#include "rmon/security/zap.hpp"
#include "rmon/service/security_settings.hpp"

namespace rmon {

class ServerSecurity {
 public:
  // Checks CURVE support, loads the clients directory and the service's own
  // key pair, and starts the ZAP handler in `ctx`. Throws std::runtime_error
  // naming the file or folder when any of it fails (a start-up error).
  ServerSecurity(zmq::context_t& ctx, const SecuritySettings& settings);
  ServerSecurity(const ServerSecurity&) = delete;
  ServerSecurity& operator=(const ServerSecurity&) = delete;

  ~ServerSecurity();

  // Makes `socket` a CURVE server on `domain` (ZAP_ENFORCE_DOMAIN on) and
  // watches its handshakes: failures count in
  // rmon_handshake_failures_total{endpoint,kind}. Call before bind(), from
  // the thread that owns the socket then. Throws zmq::error_t.
  void secure(zmq::socket_t& socket, const security::Domain& domain);
  // Stops watching every secured socket. Call before any of them is closed,
  // once the threads that use them have stopped (a service's stop(), on
  // every path). Idempotent.
  void unwatch();
  uint64_t handshake_failures(std::string_view endpoint, security::HandshakeKind kind) const;

  const security::Keyring& keyring() const { return keyring_; }
  const security::ZapHandler& zap() const { return zap_; }
  const security::PublicKey& public_key() const { return own_.public_key; }
  // Reloads the clients folder now (SIGHUP); it also reloads by itself when
  // the folder changes. Async-signal-safe.
  void reload() { watcher_.trigger(); }
  // Reloads so far that removed a key. A socket that checks its peers only
  // at the handshake (the monitor's event PUSH sockets) drops its
  // connections when this grows, so that each peer's key is checked again.
  uint64_t revocations() const { return revocations_.load(std::memory_order_acquire); }
  // Called (on the keyring's watch thread) after each reload that removed a
  // key: a service wakes the thread that owns such sockets. Thread-safe.
  void on_revocation(std::function<void()> listener);

  // A refusal by a MessageGate: counted and logged (rate limited).
  void record_denial(std::string_view endpoint, std::string_view op, security::DenyReason reason,
                     const std::string& detail);
  uint64_t denials(std::string_view endpoint, std::string_view op,
                   security::DenyReason reason) const;

  // rmon_zap_requests_total, rmon_keyring_keys, rmon_keyring_reloads_total and
  // rmon_authz_denied_total, as they are now.
  void collect(std::vector<prometheus::MetricFamily>& out) const;

 private:
  zmq::context_t& ctx_;
  security::Keyring keyring_;
  security::KeyPair own_;
  security::ZapHandler zap_;
  std::atomic<uint64_t> revocations_{0};       // before watcher_, whose thread counts into it
  std::mutex revocation_mu_;                   // likewise
  std::function<void()> revocation_listener_;  // guarded by revocation_mu_
  security::KeyringWatcher watcher_;
  // The handshake watch: a thread of its own reads every monitor's events.
  struct Watched {
    std::string endpoint;
    std::unique_ptr<security::HandshakeMonitor> monitor;
  };
  void watch_loop();
  mutable std::mutex watch_mu_;
  std::vector<Watched> watched_;  // guarded by watch_mu_
  std::map<std::pair<std::string, security::HandshakeKind>, uint64_t>
      handshake_failures_;  // guarded by watch_mu_
  std::atomic<bool> watch_stop_{false};
  std::thread watch_thread_;
  LogRateLimiter warn_limit_{5, std::chrono::seconds(10)};
  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, security::DenyReason>, uint64_t>
      denials_;  // guarded by mu_
};

// The families every service serves: rmon_security_enabled (0 or 1), and with
// `sec` (null when off) its counters.
std::vector<prometheus::MetricFamily> security_metrics(const ServerSecurity* sec);

// One receiving thread's per-message check for one socket: the sender's key
// against the live keyring and the role table. Not thread-safe.
class MessageGate {
 public:
  // `owner` outlives the gate. The socket's domain names it in metrics.
  MessageGate(ServerSecurity& owner, security::Domain domain);

  // Whether the sender of `payload` (a frame as received, with its User-Id)
  // may do `op` on `subject`. A refusal is counted and logged; `detail()`
  // then says why, for a `forbidden` reply.
  // `unowned`: see security::authorize().
  bool allow(const zmq::message_t& payload, std::string_view op,
             std::optional<std::string_view> subject = std::nullopt, bool unowned = false);
  const std::string& detail() const { return detail_; }

 private:
  ServerSecurity& security_;
  const std::string endpoint_;  // the domain's name
  security::MessageAuthorizer authz_;
  std::string detail_;
};

}  // namespace rmon
