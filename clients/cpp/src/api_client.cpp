#include "rmon/runner/api_client.hpp"

#include <chrono>

#include "rmon/zmq_util.hpp"

namespace rmon::runner {

ApiClient::ApiClient(zmq::context_t& ctx, std::string endpoint, int timeout_ms,
                     std::optional<security::ClientKeys> keys)
    : endpoint_(std::move(endpoint)),
      timeout_ms_(timeout_ms),
      socket_(ctx, zmq::socket_type::dealer, options(timeout_ms), endpoint_, std::move(keys)) {}

SocketOptions ApiClient::options(int timeout_ms) {
  SocketOptions o;
  o.recv_timeout_ms = timeout_ms;
  o.send_timeout_ms = timeout_ms;
  o.send_hwm = 16;
  o.recv_hwm = 16;
  o.max_msg_size = static_cast<int64_t>(protocol::kMaxReplyFrame);
  return o;
}

ApiError ApiClient::not_enrolled() const {
  return ApiError{"not_enrolled", endpoint_ + " refused this client's key at the handshake (" +
                                      security::not_enrolled_message(socket_.public_key()) + ")"};
}

Outcome<std::string> ApiClient::exchange(const std::string& frame) {
  (void)socket_.maintain();
  if (socket_.backing_off()) return not_enrolled();
  const auto timeout = std::chrono::milliseconds(timeout_ms_);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  zmq::message_t reply;
  bool sent = send_frames(socket_.socket(), {frame}, zmq::send_flags::none);
  bool got = false;
  while (sent && !got) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    zmq::pollitem_t items[] = {{socket_.socket().handle(), 0, ZMQ_POLLIN, 0},
                               {socket_.events_handle(), 0, ZMQ_POLLIN, 0}};
    const int n = socket_.curve() ? 2 : 1;
    zmq::poll(items, n, std::chrono::ceil<std::chrono::milliseconds>(deadline - now));
    if (items[0].revents & ZMQ_POLLIN) {
      got = socket_.socket().recv(reply, zmq::recv_flags::dontwait).has_value();
    } else if (n == 2 && (items[1].revents & ZMQ_POLLIN)) {
      (void)socket_.maintain();
      if (socket_.backing_off()) return not_enrolled();
    }
  }
  if (!got) {
    socket_.reconnect();  // drop whatever answer may still come
    return ApiError{
        "timeout", "no reply from " + endpoint_ + " within " + std::to_string(timeout_ms_) + " ms"};
  }
  return reply.to_string();
}

Outcome<std::string> ApiClient::call(std::string_view op, const protocol::MapBuilder& fields) {
  protocol::MapBuilder m;
  m.u64("v", protocol::kVersion).str("op", op).extend(fields);
  auto sent = exchange(m.finish());
  if (!sent) return sent.error();
  std::string bytes = std::move(sent.value());
  bool ok = false;
  std::string code, detail;
  auto err = read_reply(bytes, [&](const protocol::MapReader& r) {
    if (protocol::Status s = r.boolean("ok", ok); !s) return s;
    if (ok) return protocol::Status{};
    if (protocol::Status s = r.str("error", code, protocol::kMaxShortString); !s) return s;
    std::optional<std::string> d;
    if (protocol::Status s = r.opt_str("detail", d, protocol::kMaxFrame); !s) return s;
    detail = d.value_or("");
    return protocol::Status{};
  });
  if (err) return *err;
  if (!ok) return ApiError{code, detail};
  return bytes;
}

}  // namespace rmon::runner
