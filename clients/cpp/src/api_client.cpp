#include "rmon/runner/api_client.hpp"

#include <chrono>
#include <stdexcept>

#include "rmon/zmq_util.hpp"

namespace rmon::runner {

namespace {
std::vector<std::string> checked(std::vector<std::string> endpoints) {
  if (endpoints.empty()) throw std::invalid_argument("ApiClient needs at least one endpoint");
  return endpoints;
}
}  // namespace

ApiClient::ApiClient(zmq::context_t& ctx, std::string endpoint, int timeout_ms,
                     std::optional<security::ClientKeys> keys)
    : ApiClient(ctx, std::vector<std::string>{std::move(endpoint)}, timeout_ms, std::move(keys)) {}

ApiClient::ApiClient(zmq::context_t& ctx, std::vector<std::string> endpoints, int timeout_ms,
                     std::optional<security::ClientKeys> keys)
    : ctx_(ctx),
      endpoints_(checked(std::move(endpoints))),
      timeout_ms_(timeout_ms),
      keys_(std::move(keys)),
      socket_(std::make_unique<security::ClientSocket>(
          ctx_, zmq::socket_type::dealer, options(timeout_ms), endpoints_[0], keys_)) {}

void ApiClient::next_endpoint() {
  current_ = (current_ + 1) % endpoints_.size();
  ++failovers_;
  socket_ = std::make_unique<security::ClientSocket>(ctx_, zmq::socket_type::dealer,
                                                     options(timeout_ms_), endpoint(), keys_);
}

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
  return ApiError{"not_enrolled", endpoint() + " refused this client's key at the handshake (" +
                                      security::not_enrolled_message(socket_->public_key()) + ")"};
}

Outcome<std::string> ApiClient::exchange(const std::string& frame) {
  std::string tried;
  for (std::size_t i = 0; i < endpoints_.size(); ++i) {
    if (i > 0) next_endpoint();  // no answer from the last one: the next replica
    if (auto outcome = try_exchange(frame)) return std::move(*outcome);
    tried += (tried.empty() ? "" : ", ") + endpoint();
  }
  return ApiError{"timeout", "no reply from " + tried + " within " + std::to_string(timeout_ms_) +
                                 " ms" + (endpoints_.size() > 1 ? " each" : "")};
}

std::optional<Outcome<std::string>> ApiClient::try_exchange(const std::string& frame) {
  security::ClientSocket& socket = *socket_;
  (void)socket.maintain();
  if (socket.backing_off()) return Outcome<std::string>(not_enrolled());
  const auto timeout = std::chrono::milliseconds(timeout_ms_);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  zmq::message_t reply;
  bool sent = send_frames(socket.socket(), {frame}, zmq::send_flags::none);
  bool got = false;
  while (sent && !got) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    zmq::pollitem_t items[] = {{socket.socket().handle(), 0, ZMQ_POLLIN, 0},
                               {socket.events_handle(), 0, ZMQ_POLLIN, 0}};
    const int n = socket.curve() ? 2 : 1;
    zmq::poll(items, n, std::chrono::ceil<std::chrono::milliseconds>(deadline - now));
    if (items[0].revents & ZMQ_POLLIN) {
      got = socket.socket().recv(reply, zmq::recv_flags::dontwait).has_value();
    } else if (n == 2 && (items[1].revents & ZMQ_POLLIN)) {
      (void)socket.maintain();
      if (socket.backing_off()) return Outcome<std::string>(not_enrolled());
    }
  }
  if (!got) {
    socket.reconnect();  // drop whatever answer may still come
    return std::nullopt;
  }
  return Outcome<std::string>(reply.to_string());
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
