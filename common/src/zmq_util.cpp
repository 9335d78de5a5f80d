#include "rmon/zmq_util.hpp"

#include <cerrno>
#include <chrono>
#include <iterator>
#include <stdexcept>
#include <thread>

namespace rmon {

zmq::socket_t make_socket(zmq::context_t& ctx, zmq::socket_type type, const SocketOptions& opts) {
  zmq::socket_t s(ctx, type);
  s.set(zmq::sockopt::linger, opts.linger_ms);
  s.set(zmq::sockopt::sndhwm, opts.send_hwm);
  s.set(zmq::sockopt::rcvhwm, opts.recv_hwm);
  s.set(zmq::sockopt::rcvtimeo, opts.recv_timeout_ms);
  s.set(zmq::sockopt::sndtimeo, opts.send_timeout_ms);
  s.set(zmq::sockopt::maxmsgsize, opts.max_msg_size);
  if (opts.immediate) s.set(zmq::sockopt::immediate, 1);
  if (opts.backlog >= 0) s.set(zmq::sockopt::backlog, opts.backlog);
  return s;
}

std::string bind_endpoint(zmq::socket_t& socket, const std::string& endpoint) {
  try {
    socket.bind(endpoint);
  } catch (const zmq::error_t& e) {
    // A start-up error users read: name the endpoint (libzmq does not).
    throw std::runtime_error("cannot bind " + endpoint + ": " + e.what());
  }
  return socket.get(zmq::sockopt::last_endpoint);
}

void rebind(zmq::socket_t& socket, const std::string& endpoint) {
  // The accepted sessions are the listener's children: unbinding closes them.
  socket.unbind(endpoint);
  for (int attempt = 0;; ++attempt) {
    try {
      socket.bind(endpoint);
      return;
    } catch (const zmq::error_t& e) {
      // The I/O thread closes the old listener asynchronously.
      if (e.num() != EADDRINUSE || attempt >= 200) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

namespace {
constexpr std::string_view kConnect = "connect:";
}

bool is_connect_endpoint(std::string_view endpoint) {
  return endpoint.substr(0, kConnect.size()) == kConnect;
}

std::string attach(zmq::socket_t& socket, const std::string& endpoint) {
  if (is_connect_endpoint(endpoint)) {
    const std::string target = endpoint.substr(kConnect.size());
    try {
      socket.connect(target);
    } catch (const zmq::error_t& e) {
      throw std::runtime_error("cannot connect to " + target + ": " + e.what());
    }
    return target;
  }
  return bind_endpoint(socket, endpoint);
}

bool recv_frames(zmq::socket_t& socket, std::vector<zmq::message_t>& frames,
                 zmq::recv_flags flags) {
  frames.clear();
  auto n = zmq::recv_multipart(socket, std::back_inserter(frames), flags);
  return n.has_value();
}

bool send_frames(zmq::socket_t& socket, const std::vector<std::string_view>& frames,
                 zmq::send_flags flags) {
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const bool last = i + 1 == frames.size();
    zmq::message_t msg(frames[i].data(), frames[i].size());
    auto f = last ? flags : (flags | zmq::send_flags::sndmore);
    if (!socket.send(msg, f)) {
      // Only the first frame can be refused: once one part is queued, the
      // rest of a multipart message always follows.
      return false;
    }
  }
  return true;
}

std::string endpoint_problem(const std::string& endpoint) {
  if (endpoint.empty()) return "an endpoint must not be empty";
  const bool spaced = endpoint.find_first_of(" \t\r\n") != std::string::npos;
  const auto scheme = endpoint.find("://");
  if (spaced || scheme == std::string::npos || scheme == 0 || scheme + 3 == endpoint.size()) {
    return "'" + endpoint + "' is not an endpoint (transport://address, no spaces)";
  }
  return {};
}

}  // namespace rmon
