#pragma once
// runner-monitor over real sockets on 127.0.0.1 (wildcard ports, read back):
// the fixture of the service tests (service_*_test.cpp). It starts a monitor
// and connects a heartbeat PUB, a PULL per group, an ack PUSH and a control
// DEALER to it. Runners that must not time out use a long timeout, runners
// that must use a short one, so scheduling noise cannot turn into a false or
// missed timeout. Every receive has a timeout; waits poll observable state
// (wait_until), never sleep blindly.

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../support/api_client.hpp"
#include "../support/http_get.hpp"
#include "../support/loopback.hpp"
#include "../support/temp_dir.hpp"
#include "../support/wait.hpp"
#include "rmon/protocol/codec.hpp"
#include "rmon/zmq_util.hpp"
#include "service.hpp"

namespace rmon::monitor {

using namespace std::chrono_literals;
using protocol::ControlReply;
using protocol::ControlRequest;
using protocol::Heartbeat;
using protocol::Op;
using protocol::TimeoutEvent;
using rmon::testing::http_get;
using rmon::testing::wait_until;

inline constexpr int kRecvTimeoutMs = 3000;

// In memory (the restart tests set a folder), /metrics on a free port.
inline MonitorConfig test_config() {
  MonitorConfig c = rmon::testing::loopback_monitor_config();
  c.metrics_address = "127.0.0.1:0";
  c.shards = 8;
  c.redelivery_interval_ms = 300;
  c.retention_ms = 60'000;
  return c;
}

inline Heartbeat heartbeat(const std::string& id, uint64_t seq, uint64_t timeout_ms) {
  Heartbeat h;
  h.runner.runner_id = id;
  h.runner.task_id = "task-" + id;
  h.runner.pool = "pool";
  h.runner.pool_type = protocol::PoolType::kKubernetes;
  h.runner.job_name = "job-" + id;
  h.seq = seq;
  h.timeout_ms = timeout_ms;
  return h;
}

inline SocketOptions client_opts() { return rmon::testing::timeouts(kRecvTimeoutMs); }

class MonitorServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { start(test_config()); }

  void start(MonitorConfig config) {
    service = std::make_unique<MonitorService>(std::move(config), SystemClock::instance());
    service->start();
    const auto& ep = service->endpoints();
    pub = make_socket(ctx, zmq::socket_type::pub, client_opts());
    pub.connect(ep.heartbeat);
    for (const auto& g : ep.groups) {
      consumers.push_back(make_socket(ctx, zmq::socket_type::pull, client_opts()));
      consumers.back().connect(g);
    }
    acker = make_socket(ctx, zmq::socket_type::push, client_opts());
    acker.connect(ep.ack);
    control = make_socket(ctx, zmq::socket_type::dealer, client_opts());
    control.connect(ep.control);
    wait_for_subscription();
  }

  void TearDown() override { service->stop(); }

  void publish(const Heartbeat& h) {
    ASSERT_TRUE(send_frames(
        pub, {protocol::heartbeat_topic(h.runner.runner_id), protocol::encode_heartbeat(h)},
        zmq::send_flags::none));
  }

  ControlReply request(const ControlRequest& req) {
    return request_raw(protocol::encode_control_request(req));
  }
  ControlReply request_raw(const std::string& bytes) {
    const std::string frame = exchange(bytes);
    if (frame.empty()) return ControlReply::failure("test", "bad envelope");
    auto reply = protocol::decode_control_reply(frame);
    EXPECT_TRUE(reply.ok());
    return reply.ok() ? reply.value() : ControlReply::failure("test", "undecodable");
  }
  // The reply frame to one request frame; empty when none came.
  std::string exchange(const std::string& bytes) {
    EXPECT_TRUE(send_frames(control, {"", bytes}, zmq::send_flags::none));
    std::vector<zmq::message_t> frames;
    EXPECT_TRUE(recv_frames(control, frames)) << "no control reply";
    if (frames.size() != 2) return {};
    return frames[1].to_string();
  }
  std::optional<protocol::RunnerView> get(const std::string& id) {
    ControlRequest req;
    req.op = Op::kGet;
    req.runner_id = id;
    auto r = request(req);
    if (!r.ok) return std::nullopt;
    return r.runner;
  }
  uint64_t stat(const std::string& name) {
    ControlRequest req;
    req.op = Op::kStats;
    for (const auto& [k, v] : request(req).stats) {
      if (k == name) return v;
    }
    ADD_FAILURE() << "no stat " << name;
    return 0;
  }

  // PUB/SUB joins asynchronously: publish a probe until the monitor has
  // counted one. The probe is an empty frame, rejected without touching the
  // table, so late copies of it change nothing a test looks at.
  void wait_for_subscription() {
    ASSERT_TRUE(wait_until([&] {
      EXPECT_TRUE(send_frames(pub, {"hb/probe"}, zmq::send_flags::none));
      return service->stats().heartbeat_frames.load() > 0;
    })) << "subscription never reached the monitor";
  }

  std::optional<TimeoutEvent> receive(std::size_t group, int timeout_ms = kRecvTimeoutMs) {
    consumers[group].set(zmq::sockopt::rcvtimeo, timeout_ms);
    std::vector<zmq::message_t> frames;
    if (!recv_frames(consumers[group], frames)) return std::nullopt;
    EXPECT_EQ(frames.size(), 1u);
    auto ev = protocol::decode_timeout_event(frames[0].to_string_view());
    EXPECT_TRUE(ev.ok());
    if (!ev.ok()) return std::nullopt;
    return ev.value();
  }
  void ack(const std::string& group, const std::string& event_id) {
    ASSERT_TRUE(
        send_frames(acker, {protocol::encode_ack({group, event_id})}, zmq::send_flags::none));
  }

  // Stops the service (cleanly) and starts a new one with `config`.
  void restart(MonitorConfig config) {
    service.reset();  // stops it and closes its data folder
    consumers.clear();
    start(std::move(config));
  }

  zmq::context_t ctx;
  std::unique_ptr<MonitorService> service;
  zmq::socket_t pub;
  std::vector<zmq::socket_t> consumers;
  zmq::socket_t acker;
  zmq::socket_t control;
};

}  // namespace rmon::monitor
