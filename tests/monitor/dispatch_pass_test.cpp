// What a dispatch pass does and reports, on a fake clock: an operator's
// brake release reaches the brake through a mailbox of its own (not the
// stats); redeliveries to a consumer that does not acknowledge make a
// bounded number of log lines; an unreadable stored event shows in the
// stats and /metrics.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../support/recording_sink.hpp"
#include "../support/temp_dir.hpp"
#include "control.hpp"
#include "damaged_outbox.hpp"
#include "dispatcher.hpp"
#include "metrics.hpp"
#include "rmon/zmq_util.hpp"
#include "table_test_support.hpp"  // event(n), kGroups, the table fixture

namespace rmon::monitor {
namespace {

using rmon::testing::RecordingSink;

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

TEST_F(DispatchPassTest, RedeliveriesMakeAFewLinesPerGroupNotOnePerEvent) {
  auto sink = std::make_shared<RecordingSink>();
  rmon::testing::RecordDefaultLog recording(sink, spdlog::level::info);
  Outbox outbox(outbox_options(Millis(100)));
  Dispatcher dispatcher(table, outbox, stats, nullptr, clock);
  std::vector<NewEvent> batch;
  for (int i = 1; i <= 100; ++i) batch.push_back({event(i), clock.now()});
  outbox.add(batch, clock.now());
  dispatcher.tick(consumers.push);
  ASSERT_EQ(consumers.drain(), 200u);
  // 30 redelivery intervals within 3 s: 3000 redeliveries per group.
  for (int pass = 0; pass < 30; ++pass) {
    clock.advance_ms(101);
    dispatcher.tick(consumers.push);
    ASSERT_EQ(consumers.drain(), 200u) << "pass " << pass;
  }
  EXPECT_EQ(stats.per_group[0].redeliveries.load(), 3000u);
  EXPECT_EQ(sink->count("event redelivered"), 0u) << "one INFO line per event";
  // One line per group per pass, five per group in 10 s.
  ASSERT_EQ(sink->count("events redelivered"), 10u);
  const std::string first = sink->lines().front();
  EXPECT_NE(first.find("group=task-queue count=100 first_event_id=ev-1 max_delivery=2 "
                       "held_back=0"),
            std::string::npos)
      << first;
  // Past the window the next line says how many went unmentioned meanwhile.
  clock.advance_ms(10'000);
  dispatcher.tick(consumers.push);
  consumers.drain();
  ASSERT_EQ(sink->count("events redelivered"), 12u);
  EXPECT_NE(sink->lines().back().find("count=100 first_event_id=ev-1 max_delivery=32 "
                                      "held_back=2500"),
            std::string::npos)
      << sink->lines().back();
}

TEST_F(DispatchPassTest, EachRedeliveryIsStillADebugLine) {
  auto sink = std::make_shared<RecordingSink>();
  rmon::testing::RecordDefaultLog recording(sink, spdlog::level::debug);
  Outbox outbox(outbox_options(Millis(100)));
  Dispatcher dispatcher(table, outbox, stats, nullptr, clock);
  outbox.add(event(1), clock.now(), clock.now());
  outbox.add(event(2), clock.now(), clock.now());
  dispatcher.tick(consumers.push);
  clock.advance_ms(101);
  dispatcher.tick(consumers.push);
  EXPECT_EQ(sink->count("event redelivered group=task-queue event_id=ev-2 delivery=2"), 1u);
  EXPECT_EQ(sink->count("event redelivered "), 4u);
}

TEST_F(DispatchPassTest, AnUnreadableStoredEventIsCountedInStatsAndMetrics) {
  rmon::testing::TempDir dir;
  const auto path = dir.path() / "runner-monitor.db";
  {
    Outbox before(outbox_options(Millis(5000)), rmon::testing::outbox_file(path, kGroups));
    before.add(event(1), clock.now(), clock.now());
    before.add(event(2), clock.now(), clock.now());
  }
  rmon::testing::damage_stored_event(path, "ev-1");
  Outbox outbox(outbox_options(Millis(5000)), rmon::testing::outbox_file(path, kGroups));
  Metrics metrics(table, stats);
  Dispatcher dispatcher(table, outbox, stats, &metrics, clock);
  ControlHandler control(table, stats, dispatcher.brake_release(), clock);
  dispatcher.tick(consumers.push);
  EXPECT_EQ(consumers.drain(), 2u) << "ev-2 to each group";
  EXPECT_EQ(stats.per_group[0].unreadable.load(), 1u);
  EXPECT_EQ(stats.per_group[1].unreadable.load(), 1u);
  EXPECT_EQ(stats.per_group[0].pending.load(), 1u);
  const std::string body = metrics.render();
  EXPECT_NE(body.find("rmon_outbox_unreadable_total{group=\"task-queue\"} 1"), std::string::npos)
      << body;
  protocol::ControlRequest req;
  req.op = protocol::Op::kStats;
  const protocol::ControlReply reply = control.handle(req);
  bool found = false;
  for (const auto& [key, value] : reply.stats) {
    if (key == "outbox_unreadable") {
      found = true;
      EXPECT_EQ(value, 2u);
    }
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace rmon::monitor
