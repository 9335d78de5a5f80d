// The fault suite's monitor faults (issue #9): kill -9 under load, a storm
// (every heartbeat cut at once) with both ways out, and a pause (SIGSTOP for
// three timeouts). The test plays both consumer groups itself, so it sees
// every event id and decides what is acknowledged.

#include <gtest/gtest.h>

#include <csignal>
#include <functional>
#include <map>
#include <set>

#include "fault_support.hpp"
#include "rmon/protocol/codec.hpp"
#include "rmon/zmq_util.hpp"

namespace rmon::fault {
namespace {

constexpr uint64_t kTimeoutMs = 2000;
constexpr uint64_t kIntervalMs = 400;

// Both consumer groups, played by the test: a PULL on each group's endpoint
// and a PUSH for acknowledgements.
class GroupTap {
 public:
  explicit GroupTap(FaultStack& stack) {
    SocketOptions o;
    o.recv_timeout_ms = 100;
    o.send_timeout_ms = 2000;
    for (Svc s : {Svc::kTaskQueue, Svc::kPoolManager}) {
      pulls_.push_back(make_socket(stack.ctx(), zmq::socket_type::pull, o));
      pulls_.back().connect(stack.group_endpoint(s));
    }
    acks_ = make_socket(stack.ctx(), zmq::socket_type::push, o);
    acks_.connect(stack.ack_endpoint());
  }
  static constexpr const char* kGroups[2] = {"task-queue", "pool-manager"};

  // Receives until `done` says so or `max` passes; false on the latter.
  bool pump(
      Ms max, const std::function<bool()>& done = [] { return false; }) {
    const auto end = std::chrono::steady_clock::now() + max;
    zmq::pollitem_t items[2] = {{pulls_[0].handle(), 0, ZMQ_POLLIN, 0},
                                {pulls_[1].handle(), 0, ZMQ_POLLIN, 0}};
    while (std::chrono::steady_clock::now() < end) {
      if (done()) return true;
      zmq::poll(items, 2, std::chrono::milliseconds(50));
      for (int g = 0; g < 2; ++g) {
        zmq::message_t m;
        while (pulls_[g].recv(m, zmq::recv_flags::dontwait)) {
          auto ev = protocol::decode_timeout_event(m.to_string_view());
          EXPECT_TRUE(ev.ok()) << "undecodable event";
          if (!ev.ok()) continue;
          events[g].push_back(ev.value());
          if (auto_ack[g]) ack(g, ev->event_id);
        }
      }
    }
    return done();
  }
  void ack(int g, const std::string& event_id) {
    protocol::Ack a;
    a.group = kGroups[g];
    a.event_id = event_id;
    acks_.send(zmq::buffer(protocol::encode_ack(a)), zmq::send_flags::none);
  }
  // Distinct runners group g got an event for.
  std::set<std::string> runners(int g) const {
    std::set<std::string> out;
    for (const auto& e : events[g]) out.insert(e.runner.runner_id);
    return out;
  }
  void clear() {
    events[0].clear();
    events[1].clear();
  }

  std::vector<protocol::TimeoutEvent> events[2];
  bool auto_ack[2] = {true, true};

 private:
  std::vector<zmq::socket_t> pulls_;
  zmq::socket_t acks_;
};

tools::FleetOptions fleet_options() {
  tools::FleetOptions f;
  f.runners = scale_runners();
  f.prefix = "fr-";
  f.timeout_ms = kTimeoutMs;
  f.interval_ms = kIntervalMs;
  return f;
}

StackOptions monitor_options() {
  StackOptions o;
  o.redelivery_interval_ms = 500;
  o.extra_args[static_cast<int>(Svc::kMonitor)] = {"--save-interval-ms", "100",
                                                   "--stall-threshold-ms", "1000"};
  return o;
}

uint64_t stat(FaultStack& stack, const std::string& name) {
  auto c = client(stack, Svc::kMonitor, 3000);
  auto s = stats(*c);
  auto it = s.find(name);
  return it == s.end() ? UINT64_MAX : it->second;
}

// Until the monitor tracks `n` runners, all running.
void wait_tracked(FaultStack& stack, GroupTap& tap, std::size_t n) {
  ASSERT_TRUE(tap.pump(60s, [&] { return stat(stack, "running") == n; }))
      << "the monitor never saw all " << n
      << " runners running; running=" << stat(stack, "running");
}

std::vector<std::size_t> range(std::size_t from, std::size_t to) {
  std::vector<std::size_t> v;
  for (std::size_t i = from; i < to; ++i) v.push_back(i);
  return v;
}

std::set<std::string> ids(const FleetPublisher& fleet, const std::vector<std::size_t>& which) {
  std::set<std::string> out;
  for (std::size_t i : which) out.insert(fleet.runner_id(i));
  return out;
}

// The monitor alone, a fleet heartbeating through it, and the test playing
// both consumer groups; every runner tracked before a fault is staged.
class MonitorFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    stack.start(Svc::kMonitor);
    fleet.start();
    wait_tracked(stack, tap, n);
  }

  FaultStack stack{monitor_options()};
  GroupTap tap{stack};
  FleetPublisher fleet{stack.ctx(), stack.heartbeat_endpoint(), fleet_options()};
  const std::size_t n = fleet.size();
};

TEST_F(MonitorFaults, Kill9UnderLoadLosesNothingAndInventsNothing) {
  // Before the crash: 5% die; task-queue acknowledges half of their events,
  // pool-manager none, so both groups have events pending at the crash.
  const auto before = range(0, n / 20);
  tap.auto_ack[0] = tap.auto_ack[1] = false;
  fleet.cut(before);
  ASSERT_TRUE(tap.pump(30s, [&] {
    return tap.runners(0).size() == before.size() && tap.runners(1).size() == before.size();
  }));
  std::map<std::string, std::string> id_of;  // runner -> event id
  for (const auto& e : tap.events[0]) id_of[e.runner.runner_id] = e.event_id;
  std::set<std::string> pending_tq;
  for (std::size_t k = 0; k < tap.events[0].size(); ++k) {
    const auto& e = tap.events[0][k];
    if (k % 2 == 0) {
      tap.ack(0, e.event_id);
    } else {
      pending_tq.insert(e.event_id);
    }
  }
  ASSERT_TRUE(
      tap.pump(10s, [&] { return stat(stack, "pending_task-queue") == pending_tq.size(); }));

  // Another 5% die right away, then the monitor is killed: they die during
  // its downtime, which lasts over half a timeout.
  const auto during = range(n / 20, n / 10);
  fleet.cut(during);
  stack.kill9(Svc::kMonitor);
  tap.clear();
  std::this_thread::sleep_for(Ms(kTimeoutMs / 2));  // staging the downtime, not synchronisation
  stack.start(Svc::kMonitor);
  tap.auto_ack[0] = tap.auto_ack[1] = true;

  // After the grace (their own timeout from the restart) the ones that died
  // meanwhile are detected; the pending events come back with their ids.
  const std::set<std::string> died = ids(fleet, during);
  ASSERT_TRUE(tap.pump(60s,
                       [&] {
                         std::set<std::string> pm = tap.runners(1);
                         return std::includes(pm.begin(), pm.end(), died.begin(), died.end()) &&
                                pm.size() >= died.size() + before.size();
                       }))
      << "pool-manager got " << tap.runners(1).size() << " of " << died.size() + before.size();
  // Then a further timeout of quiet, to see that nobody else is convicted.
  tap.pump(Ms(2 * kTimeoutMs));

  std::set<std::string> redelivered_tq, new_ids;
  std::size_t false_timeouts = 0, wrong_ids = 0;
  const std::set<std::string> dead_before = ids(fleet, before);
  for (int g = 0; g < 2; ++g) {
    for (const auto& e : tap.events[g]) {
      const std::string& r = e.runner.runner_id;
      if (dead_before.count(r)) {
        if (id_of[r] != e.event_id) ++wrong_ids;
        if (g == 0) redelivered_tq.insert(e.event_id);
      } else if (died.count(r)) {
        new_ids.insert(e.event_id);
      } else {
        ++false_timeouts;
      }
    }
  }
  EXPECT_EQ(false_timeouts, 0u);
  EXPECT_EQ(wrong_ids, 0u);
  EXPECT_EQ(redelivered_tq, pending_tq) << "task-queue: exactly its unacknowledged events";
  EXPECT_EQ(tap.runners(1), [&] {
    std::set<std::string> all = dead_before;
    all.insert(died.begin(), died.end());
    return all;
  }()) << "pool-manager: everything it never acknowledged, and the new deaths";
  EXPECT_EQ(new_ids.size(), died.size()) << "one event per runner that died during the downtime";
  ASSERT_TRUE(tap.pump(10s, [&] { return stat(stack, "events_pending") == 0; }));
  EXPECT_EQ(stat(stack, "running"), n - before.size() - during.size());
  report("monitor kill -9 under load",
         {{"runners", n},
          {"died_before_crash", before.size()},
          {"pending_at_crash_task_queue", pending_tq.size()},
          {"pending_at_crash_pool_manager", before.size()},
          {"died_during_downtime", during.size()}},
         {{"redelivered_same_id_task_queue", redelivered_tq.size()},
          {"redelivered_same_id_pool_manager", before.size() - wrong_ids},
          {"detected_after_grace", new_ids.size()},
          {"false_timeouts", false_timeouts},
          {"events_pending_at_end", stat(stack, "events_pending")}});
}

TEST_F(MonitorFaults, StormIsBrakedAndRecoversBothWays) {
  const auto everyone = range(0, n);

  // 1. Every heartbeat stops at once; they come back after three timeouts.
  fleet.cut(everyone);
  ASSERT_TRUE(tap.pump(30s, [&] { return stat(stack, "brake_held") == n; }))
      << "brake_held=" << stat(stack, "brake_held");
  EXPECT_EQ(stat(stack, "brake_engaged"), 1u);
  tap.pump(Ms(2 * kTimeoutMs));
  const std::size_t events_while_braked = tap.events[0].size() + tap.events[1].size();
  fleet.resume(everyone);
  ASSERT_TRUE(tap.pump(30s, [&] { return stat(stack, "running") == n; }));
  EXPECT_EQ(stat(stack, "brake_engaged"), 0u);
  tap.pump(Ms(kTimeoutMs));
  const std::size_t events_after_return = tap.events[0].size() + tap.events[1].size();
  EXPECT_EQ(events_while_braked, 0u);
  EXPECT_EQ(events_after_return, 0u);
  EXPECT_EQ(stat(stack, "timeouts"), 0u);

  // 2. Cut again; this time an operator releases the brake: the held
  // runners are convicted, once each.
  fleet.cut(everyone);
  ASSERT_TRUE(tap.pump(30s, [&] { return stat(stack, "brake_held") == n; }));
  const std::size_t events_while_braked2 = tap.events[0].size() + tap.events[1].size();
  auto ctl = client(stack, Svc::kMonitor);
  ASSERT_TRUE(reply_ok(ctl->call("release_brake")));
  ASSERT_TRUE(
      tap.pump(30s, [&] { return tap.runners(0).size() == n && tap.runners(1).size() == n; }))
      << "after the release: " << tap.runners(0).size() << " of " << n;
  tap.pump(1s);
  EXPECT_EQ(events_while_braked2, 0u);
  EXPECT_EQ(tap.events[0].size(), n) << "one event per runner";
  EXPECT_EQ(stat(stack, "brake_engaged"), 0u);
  report("storm: every heartbeat cut at once",
         {{"runners", n}, {"cut", n}, {"silence_ms", 3 * kTimeoutMs}},
         {{"events_while_braked", events_while_braked + events_while_braked2},
          {"events_after_heartbeats_returned", events_after_return},
          {"brake_engagements", stat(stack, "brake_engagements")},
          {"events_after_operator_release", tap.events[0].size()}});
}

TEST_F(MonitorFaults, PauseForThreeTimeoutsConvictsNoLiveRunner) {
  // A few runners really die while the monitor is paused: they, and only
  // they, are detected after the grace.
  const auto died = range(0, std::max<std::size_t>(1, n / 100));
  stack.signal(Svc::kMonitor, SIGSTOP);
  fleet.cut(died);
  std::this_thread::sleep_for(Ms(3 * kTimeoutMs));  // the pause being staged
  stack.signal(Svc::kMonitor, SIGCONT);
  ASSERT_TRUE(tap.pump(30s, [&] { return tap.runners(1).size() >= died.size(); }));
  tap.pump(Ms(kTimeoutMs));
  const std::set<std::string> expected = ids(fleet, died);
  EXPECT_EQ(tap.runners(0), expected);
  EXPECT_EQ(tap.runners(1), expected);
  EXPECT_GE(stat(stack, "stalls"), 1u);
  EXPECT_EQ(stat(stack, "running"), n - died.size());
  std::size_t false_timeouts = 0;
  for (const auto& e : tap.events[0]) false_timeouts += expected.count(e.runner.runner_id) ? 0 : 1;
  report("pause: SIGSTOP for three timeouts",
         {{"runners", n}, {"paused_ms", 3 * kTimeoutMs}, {"died_during_pause", died.size()}},
         {{"stalls_seen", stat(stack, "stalls")},
          {"false_timeouts", false_timeouts},
          {"detected_after_grace", tap.runners(0).size()}});
}

}  // namespace
}  // namespace rmon::fault
