#pragma once
// CURVE on sockets: the server and client options, and the per-message check
// of a received message's sender against the live keyring.
//
// Server side, per process (see also zap.hpp):
//   Keyring keyring(clients_dir);                 // throws: a start-up error
//   ZapHandler zap(ctx, keyring);                 // before any bind
//   auto keys = load_key_pair(secret_file);       // error: do not start
//   make_curve_server(socket, zap, keys->secret_key, Domain::hb());
//   socket.bind(...);
//   MessageAuthorizer authz(keyring, Domain::hb());  // one per receiving thread
//   auto check = authz.check(payload, ops::kHeartbeat, runner_id);
//
// Client side:
//   auto keys = load_client_keys(own_secret_file, server_public_file);
//   make_curve_client(socket, *keys, std::chrono::milliseconds(0));
//   HandshakeMonitor monitor(ctx, socket);       // handshake_monitor.hpp
//   socket.connect(...);

#include <zmq.hpp>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string_view>

#include "rmon/security/certificate.hpp"
#include "rmon/security/keyring.hpp"
#include "rmon/security/rules.hpp"
#include "rmon/security/zap.hpp"

// Draft-guarded in Debian's zmq.h (4.3.4) but a stable option in the library
// (src/options.cpp handles it outside ZMQ_BUILD_DRAFT_API).
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

namespace rmon::security {

// Makes `socket` a CURVE server on `domain`: ZMQ_CURVE_SERVER, its secret
// key, ZMQ_ZAP_DOMAIN and ZMQ_ZAP_ENFORCE_DOMAIN=1 (no handler, no entry).
// Call before bind(). `zap` is the process's handler, in the socket's
// context: asking for it makes "handler before bind" hard to get wrong.
// Throws zmq::error_t (a start-up error).
void make_curve_server(zmq::socket_t& socket, const ZapHandler& zap, const SecretKey& server_secret,
                       const Domain& domain);

// The same options without the handler, for tests of libzmq's behaviour.
void set_curve_server_options(zmq::socket_t& socket, const SecretKey& server_secret,
                              std::string_view zap_domain, bool enforce_domain);

// A client's keys: its own pair and the server's public key.
struct ClientKeys {
  KeyPair own;
  PublicKey server;
};

// Reads the client's .key_secret and the server's public .key. Errors name
// the file.
Expected<ClientKeys> load_client_keys(const std::filesystem::path& own_secret_file,
                                      const std::filesystem::path& server_public_file);

// Makes `socket` a CURVE client with `keys` and sets ZMQ_LINGER to `linger`:
// a refused connection never delivers, so without a linger a socket with
// queued messages would hold zmq_ctx_term for ever. Call before connect().
// Throws zmq::error_t.
void make_curve_client(zmq::socket_t& socket, const ClientKeys& keys,
                       std::chrono::milliseconds linger);

// The sender's User-Id (its public key in Z85, as the ZAP handler set it) of
// a received frame; nullopt on a connection without one (NULL mechanism).
// Read it from a payload frame: libzmq 4.3.4 copies the metadata onto a
// ROUTER's routing-id frame too, but other versions and socket types need not.
std::optional<std::string_view> user_id(const zmq::message_t& frame);

// The per-message check: who sent `payload`, by its User-Id in the keyring
// as it is now (a key removed since the handshake is refused on its next
// message), and may it do `op` (rules.hpp authorize()).
// Not thread-safe: one per receiving thread (it holds a KeyringView).
class MessageAuthorizer {
 public:
  MessageAuthorizer(const Keyring& keyring, Domain domain);

  struct Result {
    Decision decision;
    // The sender, when enrolled; valid until the next call on this object.
    const Principal* principal = nullptr;
  };
  Result check(const zmq::message_t& payload, std::string_view op,
               std::optional<std::string_view> subject = std::nullopt, bool unowned = false);
  const Domain& domain() const { return domain_; }

 private:
  KeyringView view_;
  const Domain domain_;
};

}  // namespace rmon::security
