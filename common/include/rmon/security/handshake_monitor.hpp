#pragma once
// Watches a socket's handshakes through libzmq's socket monitor, so that a
// client notices it was refused: a server's ZAP handler answering 400 shows
// up as HANDSHAKE_FAILED_AUTH with value 400, and libzmq does not reconnect
// after it (the client must log "key not enrolled: <its public key>" and
// recreate the socket with backoff). A server can use it on a bound socket
// to count failures: rmon_handshake_failures_total{endpoint,kind}.
//
// Events observed with libzmq 4.3.4 (tests/security/):
//   client key not enrolled     client: kAuthFailed 400, no reconnect
//   wrong server public key     server: kProtocolFailed (cryptographic);
//                               client: kNoDetail (EPIPE), reconnects, again
//   NULL client, CURVE server   both: kProtocolFailed (mechanism mismatch)
//   no ZAP handler, enforced    server: kNoDetail (EFAULT); client: kNoDetail,
//                               then it reconnects and fails again
//
// Lifetime: create it before connect()/bind() to see the first handshake,
// destroy it before the socket it watches (it stops libzmq's monitor on that
// socket), and poll() it regularly: unread events are queued without limit
// (a bounded queue would block libzmq's I/O thread). Not thread-safe: use it
// from the socket's thread.

#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "rmon/security/keys.hpp"

namespace rmon::security {

enum class HandshakeKind : uint8_t {
  kSucceeded,
  kAuthFailed,      // the peer's ZAP handler refused (value: its status, 400)
  kProtocolFailed,  // wrong mechanism, bad keys, a broken handshake
  kNoDetail,        // e.g. a CURVE server with an enforced domain and no handler
};
// "succeeded", "auth", "protocol", "no_detail" (metric label `kind`).
std::string_view handshake_kind_name(HandshakeKind kind);

struct HandshakeEvent {
  HandshakeKind kind;
  int value;  // kAuthFailed: ZAP status code; others: libzmq's error or protocol code
  std::string endpoint;
};

class HandshakeMonitor {
 public:
  HandshakeMonitor(zmq::context_t& ctx, zmq::socket_t& socket);
  ~HandshakeMonitor();
  HandshakeMonitor(const HandshakeMonitor&) = delete;
  HandshakeMonitor& operator=(const HandshakeMonitor&) = delete;

  // The events queued now, after waiting up to `wait` for the first one.
  std::vector<HandshakeEvent> poll(std::chrono::milliseconds wait = std::chrono::milliseconds(0));
  // Readable when events are queued: add it to the client's zmq::poll set.
  zmq::socket_ref pollable() { return events_; }

 private:
  zmq::socket_ref watched_;
  zmq::socket_t events_;  // PAIR connected to libzmq's monitor endpoint
};

// "key not enrolled: <public key in Z85>", the line a refused client logs.
std::string not_enrolled_message(const PublicKey& own_public_key);

}  // namespace rmon::security
