// ZeroMQ helpers over real sockets on loopback and ipc.

#include <gtest/gtest.h>

#include <filesystem>

#include "rmon/zmq_util.hpp"

namespace rmon {
namespace {

SocketOptions with_timeout() {
  SocketOptions o;
  o.recv_timeout_ms = 2000;
  o.send_timeout_ms = 2000;
  return o;
}

TEST(ZmqUtil, WildcardBindReportsTheRealPort) {
  zmq::context_t ctx;
  auto s = make_socket(ctx, zmq::socket_type::pull, with_timeout());
  const std::string ep = bind_endpoint(s, "tcp://127.0.0.1:*");
  EXPECT_EQ(ep.rfind("tcp://127.0.0.1:", 0), 0u);
  EXPECT_EQ(ep.find('*'), std::string::npos);
}

TEST(ZmqUtil, MultipartMessagesArriveWholeOverIpc) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("rmon-zmq-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  zmq::context_t ctx;
  auto pull = make_socket(ctx, zmq::socket_type::pull, with_timeout());
  const std::string ep = attach(pull, "ipc://" + (dir / "sock").string());
  auto push = make_socket(ctx, zmq::socket_type::push, with_timeout());
  attach(push, "connect:" + ep);
  ASSERT_TRUE(send_frames(push, {"topic", "payload"}, zmq::send_flags::none));
  std::vector<zmq::message_t> frames;
  ASSERT_TRUE(recv_frames(pull, frames));
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].to_string_view(), "topic");
  EXPECT_EQ(frames[1].to_string_view(), "payload");
  std::filesystem::remove_all(dir);
}

TEST(ZmqUtil, ReceiveTimeoutIsAValueNotAnError) {
  zmq::context_t ctx;
  SocketOptions o;
  o.recv_timeout_ms = 20;
  auto s = make_socket(ctx, zmq::socket_type::pull, o);
  bind_endpoint(s, "tcp://127.0.0.1:*");
  std::vector<zmq::message_t> frames;
  EXPECT_FALSE(recv_frames(s, frames));
}

TEST(ZmqUtil, NonBlockingSendWithoutPeerReportsWouldBlock) {
  zmq::context_t ctx;
  auto push = make_socket(ctx, zmq::socket_type::push, with_timeout());
  bind_endpoint(push, "tcp://127.0.0.1:*");
  EXPECT_FALSE(send_frames(push, {"x"}));
}

}  // namespace
}  // namespace rmon
