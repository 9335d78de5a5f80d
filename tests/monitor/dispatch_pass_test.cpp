// What a dispatch pass does, on a fake clock: an operator's brake release
// reaches the brake through a mailbox of its own (not the stats).

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "control.hpp"
#include "dispatcher.hpp"
#include "rmon/zmq_util.hpp"
#include "table_test_support.hpp"  // kGroups, the table fixture

namespace rmon::monitor {
namespace {

// A PUSH socket per group with a PULL connected in process, as the service
// has; the consumers read everything and acknowledge nothing.
class Consumers {
  zmq::context_t ctx_;  // first: it outlives the sockets

 public:
  Consumers() {
    SocketOptions o;
    o.recv_timeout_ms = 0;
    for (std::size_t g = 0; g < kGroups.size(); ++g) {
      const std::string ep = "inproc://dispatch-pass-test-" + std::to_string(g);
      push.push_back(make_socket(ctx_, zmq::socket_type::push, {}));
      push.back().bind(ep);
      pull_.push_back(make_socket(ctx_, zmq::socket_type::pull, o));
      pull_.back().connect(ep);
    }
  }
  // Reads what was sent (so no socket fills up); returns how many.
  std::size_t drain() {
    std::size_t n = 0;
    std::vector<zmq::message_t> frames;
    for (auto& s : pull_) {
      while (recv_frames(s, frames)) ++n;
    }
    return n;
  }
  std::vector<zmq::socket_t> push;

 private:
  std::vector<zmq::socket_t> pull_;
};

OutboxOptions outbox_options(Millis redelivery) {
  OutboxOptions o;
  o.groups = kGroups;
  o.redelivery_interval = redelivery;
  return o;
}

class DispatchPassTest : public RunnerTableTest {
 protected:
  Consumers consumers;
  MonitorStats stats{kGroups};
};
TEST_F(DispatchPassTest, AnOperatorReleaseThroughControlReachesTheBrakeAtTheNextPass) {
  Outbox outbox(outbox_options(Millis(5000)));
  DispatchOptions o;
  o.guards.storm_min_runners = 10;
  Dispatcher dispatcher(table, outbox, stats, nullptr, clock, o);
  ControlHandler control(table, stats, dispatcher.brake_release(), clock);
  for (int i = 0; i < 20; ++i) apply(hb("r-" + std::to_string(i), 1));  // timeout 1000 ms
  // Every heartbeat stops: the brake engages and holds them.
  for (int i = 0; i < 15; ++i) {
    clock.advance_ms(100);
    dispatcher.tick(consumers.push);
  }
  ASSERT_TRUE(stats.brake_engaged.load());
  EXPECT_EQ(table.counters().timeouts, 0u);
  protocol::ControlRequest release;
  release.op = protocol::Op::kReleaseBrake;
  const protocol::ControlReply reply = control.handle(release);
  ASSERT_TRUE(reply.ok);
  EXPECT_TRUE(stats.brake_engaged.load()) << "the control op only posts the request";
  clock.advance(RunnerTable::kCheckGrid);  // held runners are looked at again a check later
  dispatcher.tick(consumers.push);
  EXPECT_FALSE(stats.brake_engaged.load());
  EXPECT_EQ(stats.brake_operator_releases.load(), 1u);
  EXPECT_EQ(table.counters().timeouts, 20u) << "held runners are convicted at once";
  dispatcher.tick(consumers.push);
  EXPECT_EQ(stats.brake_operator_releases.load(), 1u) << "one request, one release";
}

}  // namespace
}  // namespace rmon::monitor
