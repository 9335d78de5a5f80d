#include <gtest/gtest.h>

#include <map>

#include "outbox.hpp"
#include "rmon/fake_clock.hpp"

namespace rmon::monitor {
namespace {

using protocol::TimeoutEvent;

TimeoutEvent event(const std::string& id) {
  TimeoutEvent ev;
  ev.event_id = id;
  ev.runner.runner_id = "r-" + id;
  // Chars, not 1-character literals: GCC 12 at -O3 (Release) reports a false
  // -Wrestrict when one is assigned to a std::string (GCC bug 105329).
  ev.runner.task_id = 't';
  ev.runner.pool = 'p';
  return ev;
}

struct Sent {
  std::size_t group;
  TimeoutEvent ev;
};

// A fake socket per group that can be told to refuse sends.
struct FakeSockets {
  std::vector<Sent> sent;
  std::map<std::size_t, bool> blocked;
  auto fn() {
    return [this](std::size_t g, const PendingEvent&, std::string_view bytes) {
      if (blocked[g]) return false;
      auto d = protocol::decode_timeout_event(bytes);
      EXPECT_TRUE(d.ok());
      sent.push_back({g, d.value()});
      return true;
    };
  }
};

OutboxOptions opts() {
  OutboxOptions o;
  o.groups = {"task-queue", "pool-manager"};
  o.redelivery_interval = Millis(5000);
  o.blocked_backoff = Millis(50);
  return o;
}

TEST(Outbox, EveryGroupGetsEveryEventOnce) {
  FakeClock clock;
  Outbox box(opts());
  FakeSockets sock;
  box.add(event("1"), clock.now(), clock.now());
  box.add(event("2"), clock.now(), clock.now());
  EXPECT_EQ(box.flush(clock.now(), sock.fn()), 4u);
  ASSERT_EQ(sock.sent.size(), 4u);
  EXPECT_EQ(box.flush(clock.now(), sock.fn()), 0u);  // nothing due again yet
  for (const Sent& s : sock.sent) EXPECT_EQ(s.ev.delivery, 1u);
  EXPECT_EQ(box.pending(0), 2u);
  EXPECT_EQ(box.pending(1), 2u);
}

TEST(Outbox, UnacknowledgedEventsAreResentWithDeliveryCountedUntilAcked) {
  FakeClock clock;
  Outbox box(opts());
  FakeSockets sock;
  box.add(event("1"), clock.now(), clock.now());
  box.flush(clock.now(), sock.fn());
  EXPECT_EQ(box.ack("task-queue", "1"), AckResult::kAcked);
  clock.advance_ms(4999);
  EXPECT_EQ(box.flush(clock.now(), sock.fn()), 0u);
  clock.advance_ms(1);
  ASSERT_EQ(box.flush(clock.now(), sock.fn()), 1u);  // only pool-manager
  EXPECT_EQ(sock.sent.back().group, 1u);
  EXPECT_EQ(sock.sent.back().ev.delivery, 2u);
  EXPECT_EQ(sock.sent.back().ev.event_id, "1");
  clock.advance_ms(5000);
  box.flush(clock.now(), sock.fn());
  EXPECT_EQ(sock.sent.back().ev.delivery, 3u);
  EXPECT_EQ(box.redeliveries(1), 2u);
  EXPECT_EQ(box.ack("pool-manager", "1"), AckResult::kAcked);
  clock.advance_ms(60'000);
  EXPECT_EQ(box.flush(clock.now(), sock.fn()), 0u);
  EXPECT_EQ(box.pending_total(), 0u);
  EXPECT_FALSE(box.next_due());
}

TEST(Outbox, RepeatedAndUnknownAcksChangeNothing) {
  FakeClock clock;
  Outbox box(opts());
  box.add(event("1"), clock.now(), clock.now());
  EXPECT_EQ(box.ack("task-queue", "1"), AckResult::kAcked);
  EXPECT_EQ(box.ack("task-queue", "1"), AckResult::kUnknownEvent);
  EXPECT_EQ(box.ack("nobody", "1"), AckResult::kUnknownGroup);
  EXPECT_EQ(box.pending(1), 1u);
}

TEST(Outbox, ABlockedGroupDoesNotCountADeliveryAndDoesNotHoldUpOthers) {
  FakeClock clock;
  Outbox box(opts());
  FakeSockets sock;
  sock.blocked[0] = true;
  box.add(event("1"), clock.now(), clock.now());
  EXPECT_EQ(box.flush(clock.now(), sock.fn()), 1u);
  EXPECT_EQ(sock.sent[0].group, 1u);
  EXPECT_EQ(*box.next_due(), clock.now() + Millis(50));
  clock.advance_ms(50);
  sock.blocked[0] = false;
  EXPECT_EQ(box.flush(clock.now(), sock.fn()), 1u);
  EXPECT_EQ(sock.sent[1].group, 0u);
  EXPECT_EQ(sock.sent[1].ev.delivery, 1u);  // first real delivery
}

TEST(Outbox, NextDueIsTheEarliestLiveEntry) {
  FakeClock clock;
  Outbox box(opts());
  FakeSockets sock;
  EXPECT_FALSE(box.next_due());
  box.add(event("1"), clock.now(), clock.now());
  EXPECT_EQ(*box.next_due(), clock.now());
  box.flush(clock.now(), sock.fn());
  EXPECT_EQ(*box.next_due(), clock.now() + Millis(5000));
}

}  // namespace
}  // namespace rmon::monitor
