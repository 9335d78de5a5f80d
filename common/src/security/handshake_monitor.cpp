#include "rmon/security/handshake_monitor.hpp"

#include <array>
#include <atomic>
#include <cstring>

namespace rmon::security {
namespace {

constexpr std::array<std::string_view, 4> kKindNames = {"succeeded", "auth", "protocol",
                                                        "no_detail"};

constexpr int kEvents = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                        ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;

HandshakeKind kind_of(uint16_t event) {
  switch (event) {
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
      return HandshakeKind::kSucceeded;
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
      return HandshakeKind::kAuthFailed;
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
      return HandshakeKind::kProtocolFailed;
    default:
      return HandshakeKind::kNoDetail;
  }
}

}  // namespace

std::string_view handshake_kind_name(HandshakeKind kind) {
  return kKindNames[static_cast<std::size_t>(kind)];
}

HandshakeMonitor::HandshakeMonitor(zmq::context_t& ctx, zmq::socket_t& socket) : watched_(socket) {
  static std::atomic<uint64_t> next{0};
  const std::string endpoint = "inproc://rmon-handshake-monitor-" + std::to_string(++next);
  if (zmq_socket_monitor(socket.handle(), endpoint.c_str(), kEvents) != 0) throw zmq::error_t();
  events_ = zmq::socket_t(ctx, zmq::socket_type::pair);
  events_.set(zmq::sockopt::linger, 0);
  events_.set(zmq::sockopt::rcvhwm, 0);  // see the header: never block libzmq
  events_.connect(endpoint);
}

HandshakeMonitor::~HandshakeMonitor() {
  // Stops libzmq's side; then the PAIR closes with no events pending.
  zmq_socket_monitor(watched_.handle(), nullptr, 0);
}

std::vector<HandshakeEvent> HandshakeMonitor::poll(std::chrono::milliseconds wait) {
  std::vector<HandshakeEvent> out;
  std::array<zmq::pollitem_t, 1> item{{{events_.handle(), 0, ZMQ_POLLIN, 0}}};
  if (zmq::poll(item.data(), 1, wait) == 0) return out;
  while (true) {
    zmq::message_t head;
    zmq::message_t address;
    if (!events_.recv(head, zmq::recv_flags::dontwait)) break;
    // Two frames: 16-bit event and 32-bit value, then the endpoint.
    if (!head.more() || !events_.recv(address, zmq::recv_flags::dontwait)) break;
    if (head.size() < 6) continue;
    uint16_t event = 0;
    int32_t value = 0;
    std::memcpy(&event, head.data(), sizeof event);
    std::memcpy(&value, static_cast<const char*>(head.data()) + sizeof event, sizeof value);
    out.push_back({kind_of(event), value, address.to_string()});
  }
  return out;
}

std::string not_enrolled_message(const PublicKey& own_public_key) {
  return "key not enrolled: " + own_public_key.z85();
}

}  // namespace rmon::security
