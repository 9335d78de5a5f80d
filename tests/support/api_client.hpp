#pragma once
// A test client for the MessagePack request/reply APIs (task-queue,
// pool-manager, runner-monitor): a DEALER socket with a receive timeout;
// call() sends one request map and returns the reply frame ("" on timeout).
// timeouts() gives any test socket the same bound.

#include <zmq.hpp>

#include <string>

#include "rmon/protocol/msgmap.hpp"
#include "rmon/zmq_util.hpp"

namespace rmon::testing {

// A test socket's options: a send or receive gives up after `timeout_ms`.
inline SocketOptions timeouts(int timeout_ms) {
  SocketOptions o;
  o.recv_timeout_ms = timeout_ms;
  o.send_timeout_ms = timeout_ms;
  return o;
}

class ApiClient {
 public:
  ApiClient(zmq::context_t& ctx, const std::string& endpoint, int timeout_ms = 5000) {
    socket_ = make_socket(ctx, zmq::socket_type::dealer, timeouts(timeout_ms));
    socket_.connect(endpoint);
  }
  // Sends raw bytes as the request frame.
  std::string call_raw(const std::string& frame) {
    if (!send_frames(socket_, {frame}, zmq::send_flags::none)) return {};
    zmq::message_t reply;
    if (!socket_.recv(reply)) return {};
    return reply.to_string();
  }
  // {v: 1, op: <op>, ...fields}
  std::string call(const std::string& op, const protocol::MapBuilder& fields = {}) {
    protocol::MapBuilder m;
    m.u64("v", 1).str("op", op).extend(fields);
    return call_raw(m.finish());
  }
  zmq::socket_t& socket() { return socket_; }

 private:
  zmq::socket_t socket_;
};

}  // namespace rmon::testing
