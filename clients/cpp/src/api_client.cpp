#include "rmon/runner/api_client.hpp"

#include "rmon/zmq_util.hpp"

namespace rmon::runner {

ApiClient::ApiClient(zmq::context_t& ctx, std::string endpoint, int timeout_ms)
    : ctx_(ctx), endpoint_(std::move(endpoint)), timeout_ms_(timeout_ms) {
  connect();
}

void ApiClient::connect() {
  SocketOptions o;
  o.recv_timeout_ms = timeout_ms_;
  o.send_timeout_ms = timeout_ms_;
  o.send_hwm = 16;
  o.recv_hwm = 16;
  o.max_msg_size = static_cast<int64_t>(protocol::kMaxReplyFrame);
  socket_ = make_socket(ctx_, zmq::socket_type::dealer, o);
  socket_.connect(endpoint_);
}

Outcome<std::string> ApiClient::exchange(const std::string& frame) {
  zmq::message_t reply;
  if (!send_frames(socket_, {frame}, zmq::send_flags::none) || !socket_.recv(reply)) {
    connect();  // drop whatever answer may still come
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
