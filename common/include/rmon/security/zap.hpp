#pragma once
// The process's ZAP handler (ZeroMQ RFC 27): libzmq asks it about every CURVE
// handshake on a socket that has a ZAP domain, over inproc://zeromq.zap.01 in
// that socket's context.
//
// It admits a CURVE client whose public key is in the keyring and whose role
// may use the request's domain (rules.hpp admit()), and sets the
// connection's User-Id to that key in Z85; every other request is answered
// 400 (libzmq then sends the client an ERROR, its monitor reports
// HANDSHAKE_FAILED_AUTH 400, and it does not reconnect by itself).
//
// One per context, constructed before any CURVE socket binds (see
// make_curve_server() in curve_socket.hpp, which takes it as proof). libzmq
// looks the handler up at each handshake: with none, a socket with
// ZMQ_ZAP_ENFORCE_DOMAIN refuses every client, one without accepts any key.

#include <zmq.hpp>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "rmon/security/keyring.hpp"

namespace rmon::security {

inline constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";

struct ZapRequest {
  std::string version;  // "1.0"
  std::string request_id;
  std::string domain;
  std::string address;  // the client's IP address
  std::string routing_id;
  std::string mechanism;                 // "NULL", "PLAIN" or "CURVE"
  std::vector<std::string> credentials;  // CURVE: one frame, the 32-byte public key
};

// The request in `frames`; nullopt with fewer than the six fixed frames.
std::optional<ZapRequest> parse_zap_request(const std::vector<zmq::message_t>& frames);

enum class ZapResult : uint8_t {
  kAllowed,
  kUnknownKey,    // CURVE, but the key is not in the keyring
  kRoleDenied,    // enrolled, but its role may not use this domain
  kBadMechanism,  // NULL or PLAIN: only CURVE is admitted
  kBadDomain,     // a domain rules.hpp does not know
  kMalformed,     // not a ZAP 1.0 request
};
inline constexpr int kZapResultCount = 6;
// "allowed", "unknown_key", "role_denied", "bad_mechanism", "bad_domain",
// "malformed": rmon_zap_requests_total{domain,result}.
std::string_view zap_result_name(ZapResult result);

struct ZapReply {
  ZapResult result = ZapResult::kMalformed;
  std::string status_code;  // "200" or "400"
  std::string status_text;
  std::string user_id;  // allowed: the client's public key in Z85
  std::string detail;   // for the log: principal or public key and why; never a secret
};

// The decision for one request (pure, given the keys in `view`).
ZapReply decide_zap(const ZapRequest& request, KeyringView& view);

// Runs the handler on its own thread. Thread-safe: counts() may be read from
// any thread.
class ZapHandler {
 public:
  // Binds kZapEndpoint in `ctx` and starts the thread. Throws zmq::error_t
  // (EADDRINUSE) when the context already has a handler. `keyring` must
  // outlive the handler.
  ZapHandler(zmq::context_t& ctx, const Keyring& keyring);
  // Stops the thread and unbinds. Handshakes after this are refused (enforced
  // domains) until another handler binds. Destroy it before its context is
  // closed (zmq_ctx_term waits for its sockets); after ctx.shutdown() is fine.
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  struct Count {
    std::string domain;
    ZapResult result;
    uint64_t value;
  };
  // Requests answered so far, by (domain, result); domains come from this
  // process's own sockets, so the set stays small.
  std::vector<Count> counts() const;
  uint64_t count(std::string_view domain, ZapResult result) const;

 private:
  void run(zmq::socket_t zap, zmq::socket_t stop);
  void record(const std::string& domain, ZapResult result);

  const Keyring& keyring_;
  zmq::socket_t stop_;  // owner side of the stop pipe
  mutable std::mutex mu_;
  std::map<std::pair<std::string, ZapResult>, uint64_t> counts_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace rmon::security
