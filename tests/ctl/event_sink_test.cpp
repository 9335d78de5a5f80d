// rmon-event-sink: the real executable as a child process against a real
// monitor in-process. It must never take a service's events by default: a
// PULL on a group's PUSH socket takes its share of them (round-robin), so it
// refuses those groups without --steal and acknowledges nothing it steals
// without --ack; on a group of its own it sees and acknowledges every event.

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "../support/child_process.hpp"
#include "../support/heartbeats.hpp"
#include "../support/loopback.hpp"
#include "../support/temp_dir.hpp"
#include "../support/wait.hpp"
#include "rmon/protocol/codec.hpp"
#include "rmon/zmq_util.hpp"
#include "service.hpp"

namespace rmon::monitor {
namespace {

using namespace std::chrono_literals;
using rmon::testing::ChildProcess;
using rmon::testing::TempDir;
using rmon::testing::wait_until;

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class EventSinkTest : public ::testing::Test {
 protected:
  // A monitor with these groups, in memory, on 127.0.0.1.
  void start_monitor(const std::vector<std::string>& groups) {
    MonitorConfig c = rmon::testing::loopback_monitor_config();
    c.groups.clear();
    for (const std::string& g : groups) c.groups.push_back(rmon::testing::loopback_group(g));
    c.redelivery_interval_ms = 200;
    monitor = std::make_unique<MonitorService>(c, SystemClock::instance());
    monitor->start();
  }
  // Runs the sink; its output goes to a file read by log().
  std::unique_ptr<ChildProcess> sink(std::vector<std::string> args) {
    return std::make_unique<ChildProcess>(RMON_EVENT_SINK_EXE, args, log_path.string());
  }
  std::string log() const { return read_file(log_path); }
  // A runner that heartbeats (until the monitor has it) with a short
  // timeout, then falls silent.
  void silent_runner(const std::string& id) {
    zmq::socket_t pub = make_socket(ctx, zmq::socket_type::pub, {});
    pub.connect(monitor->endpoints().heartbeat);
    ASSERT_TRUE(rmon::testing::heartbeat_until_known(
        pub, *monitor, rmon::testing::local_heartbeat(id, "t-" + id, 1, 200)));
  }
  uint64_t pending(std::size_t group) const {
    return monitor->stats().per_group[group].pending.load();
  }

  TempDir dir;
  std::filesystem::path log_path = dir.path() / "sink.log";
  zmq::context_t ctx;
  std::unique_ptr<MonitorService> monitor;
};

TEST_F(EventSinkTest, RefusesAGroupAServiceConsumesWithoutSteal) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--group", "task-queue", "--events", "tcp://127.0.0.1:5556"},
        {"--group", "pool-manager", "--events", "tcp://10.0.0.1:7000"},
        {"--group", "debug", "--events", "tcp://127.0.0.1:5556"}}) {
    std::filesystem::remove(log_path);
    auto p = sink(args);
    const auto status = p->wait(10s);
    ASSERT_TRUE(status) << "the sink did not exit";
    EXPECT_EQ(*status, 2);
    EXPECT_NE(log().find("refusing to attach"), std::string::npos) << log();
    EXPECT_NE(log().find("--steal"), std::string::npos) << log();
  }
}

TEST_F(EventSinkTest, AGroupOfItsOwnSeesAndAcknowledgesEveryEventAndTakesNone) {
  start_monitor({"task-queue", "debug"});
  const auto& ep = monitor->endpoints();
  SocketOptions o;
  o.recv_timeout_ms = 3000;
  zmq::socket_t consumer = make_socket(ctx, zmq::socket_type::pull, o);
  consumer.connect(ep.groups[0]);
  auto p = sink({"--group", "debug", "--events", ep.groups[1], "--acks", ep.ack});
  for (int i = 0; i < 4; ++i) silent_runner("r-" + std::to_string(i));
  // The service's consumer gets every event, first time.
  std::vector<zmq::message_t> frames;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(recv_frames(consumer, frames)) << "event " << i << " missing";
    auto ev = protocol::decode_timeout_event(frames[0].to_string_view());
    ASSERT_TRUE(ev.ok());
    EXPECT_EQ(ev->delivery, 1u);
  }
  // The sink acknowledged its own group's copies.
  // The gauges are published after the sends: wait for both to settle.
  // task-queue acknowledged nothing: its four stay pending.
  EXPECT_TRUE(wait_until([&] { return pending(1) == 0 && pending(0) == 4; }))
      << "pending task-queue " << pending(0) << " debug " << pending(1) << "\n"
      << log();
  p->signal(SIGTERM);
  ASSERT_TRUE(p->wait(10s));
  EXPECT_EQ(*p->wait(0ms), 0);
  monitor->stop();
}

TEST_F(EventSinkTest, WithStealItTakesEventsButAcknowledgesNoneWithoutAck) {
  start_monitor({"task-queue"});
  const auto& ep = monitor->endpoints();
  auto p = sink({"--group", "task-queue", "--events", ep.groups[0], "--acks", ep.ack, "--steal"});
  silent_runner("r");
  // It is the only puller: it gets the event again and again, unacknowledged.
  ASSERT_TRUE(wait_until([&] { return monitor->stats().per_group[0].redeliveries.load() >= 2; }))
      << log();
  EXPECT_EQ(pending(0), 1u);
  EXPECT_EQ(monitor->stats().per_group[0].acks.load(), 0u);
  p->signal(SIGTERM);
  ASSERT_TRUE(p->wait(10s));
  EXPECT_NE(log().find("--steal"), std::string::npos) << log();
  EXPECT_NE(log().find("repeat=true"), std::string::npos) << log();
  monitor->stop();
}

TEST_F(EventSinkTest, WithStealAndAckItAcknowledgesWhatItTakes) {
  start_monitor({"task-queue"});
  const auto& ep = monitor->endpoints();
  auto p = sink(
      {"--group", "task-queue", "--events", ep.groups[0], "--acks", ep.ack, "--steal", "--ack"});
  silent_runner("r");
  // The ack thread counts the ack; the dispatcher then takes it from its
  // mailbox and the event stops being pending: wait for both.
  EXPECT_TRUE(wait_until([&] {
    return monitor->stats().per_group[0].acks.load() == 1 && pending(0) == 0;
  })) << log();
  EXPECT_EQ(monitor->stats().per_group[0].acks.load(), 1u);
  p->signal(SIGTERM);
  ASSERT_TRUE(p->wait(10s));
  monitor->stop();
}

}  // namespace
}  // namespace rmon::monitor
