#pragma once
// Small ZeroMQ helpers shared by the services: sockets created with deliberate
// options, endpoint read-back after binding to a wildcard port, and
// multi-frame receive that reports a timeout as a value.

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rmon {

struct SocketOptions {
  // 0 drops unsent messages on close: the services keep what must survive in
  // their own outbox, never in libzmq's queues.
  int linger_ms = 0;
  int send_hwm = 10'000;
  int recv_hwm = 10'000;
  int recv_timeout_ms = -1;  // -1 blocks
  int send_timeout_ms = -1;
  // libzmq disconnects a peer that sends a larger frame; -1 is unlimited.
  int64_t max_msg_size = -1;
  bool immediate = false;  // ZMQ_IMMEDIATE: queue only to completed connections
  int backlog = -1;        // ZMQ_BACKLOG of a bound socket; -1 keeps libzmq's (100)
};

// The listen backlog of the sockets a whole fleet connects to (heartbeats,
// the APIs). With libzmq's 100, 10,000 runners connecting at once (a
// restart) overflowed the accept queue and TCP retried the dropped ones
// after 1, 3, 7, 15, 31 s: the last CURVE handshakes came after 11-35 s
// instead of 8.5 s (bench/ingest_bench --handshake-storm). The kernel caps
// it at net.core.somaxconn.
inline constexpr int kFleetListenBacklog = 4096;

zmq::socket_t make_socket(zmq::context_t& ctx, zmq::socket_type type, const SocketOptions& opts);

// Binds `endpoint` and returns the endpoint actually bound (wildcard ports
// resolved, e.g. "tcp://127.0.0.1:*" -> "tcp://127.0.0.1:41234").
// Throws zmq::error_t when it cannot bind (a start-up error).
std::string bind_endpoint(zmq::socket_t& socket, const std::string& endpoint);

// Drops every connection accepted on `endpoint`, which this socket bound
// (its resolved form, from bind_endpoint()): unbinds it and binds it again,
// retrying while the address is still held (up to about 2 s). Peers that
// connect reconnect by themselves. Throws zmq::error_t if it cannot bind.
void rebind(zmq::socket_t& socket, const std::string& endpoint);

// Binds or connects: endpoints of the form "connect:tcp://host:port" connect,
// plain ones bind. Returns the bound or connected endpoint.
std::string attach(zmq::socket_t& socket, const std::string& endpoint);
// Whether attach() connects `endpoint` (it starts with "connect:").
bool is_connect_endpoint(std::string_view endpoint);

// Receives every frame of one message into `frames` (cleared first). Returns
// false on timeout or EAGAIN; throws zmq::error_t on other errors (including
// ETERM when the context is shut down).
bool recv_frames(zmq::socket_t& socket, std::vector<zmq::message_t>& frames,
                 zmq::recv_flags flags = zmq::recv_flags::none);

// Sends frames as one message. Returns false when the socket would block (a
// full queue or no peer) with nothing sent.
bool send_frames(zmq::socket_t& socket, const std::vector<std::string_view>& frames,
                 zmq::send_flags flags = zmq::send_flags::dontwait);

// Why `endpoint` cannot be a ZeroMQ endpoint (empty, no "transport://"
// prefix, a space from a list written "a, b"), naming it; empty when it looks
// like one.
std::string endpoint_problem(const std::string& endpoint);

}  // namespace rmon
