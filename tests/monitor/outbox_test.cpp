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

TEST(Outbox, AcksCommittedByTheAckThreadButNotYetTakenNeverLoseACount) {
  // task-queue is behind: 3 of its 5 pending events in memory, 2 on disk.
  FakeClock clock;
  OutboxOptions o = opts();
  o.window = 3;
  Outbox box(o);
  for (int i = 1; i <= 5; ++i) box.add(event(std::to_string(i)), clock.now(), clock.now());
  FakeSockets sock;
  sock.blocked[1] = true;
  box.flush(clock.now(), sock.fn());
  ASSERT_EQ(box.in_memory(0), 3u);
  // The ack thread commits acks of the two on disk, and has not posted yet.
  box.acks().begin();
  std::vector<bool> acked;
  box.store().ack({{0, "4"}, {0, "5"}}, 0, acked);
  EXPECT_EQ(acked, (std::vector<bool>{true, true}));
  EXPECT_FALSE(box.acks().settled());
  // Meanwhile an ack makes room in memory, and the dispatch thread looks for
  // more on disk: it finds none, and must not take that for its count yet.
  EXPECT_EQ(box.ack("task-queue", "1"), AckResult::kAcked);
  box.flush(clock.now(), sock.fn());
  EXPECT_EQ(box.pending(0), 4u);
  std::vector<AckedEvent> posted = {{0, "4"}, {0, "5"}};
  box.acks().post(posted);
  box.take_acks();
  EXPECT_EQ(box.pending(0), 2u);
  EXPECT_TRUE(box.acks().settled());
  // A new event still reaches the group.
  box.add(event("6"), clock.now(), clock.now());
  sock.sent.clear();
  box.flush(clock.now(), sock.fn());
  ASSERT_EQ(sock.sent.size(), 1u);
  EXPECT_EQ(sock.sent[0].ev.event_id, "6");
  EXPECT_EQ(box.pending(0), 3u);
}

}  // namespace
}  // namespace rmon::monitor
