// The dispatch thread's pass and the ack thread's work, on a fake clock: the
// thread that convicts does no storage maintenance and logs a timeout storm
// in a bounded number of lines; the ack thread commits acknowledgements in
// chunks, posts them to the outbox, and prunes in chunks.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../support/recording_sink.hpp"
#include "ack_writer.hpp"
#include "dispatcher.hpp"
#include "rmon/protocol/codec.hpp"
#include "rmon/zmq_util.hpp"
#include "table_test_support.hpp"

namespace rmon::monitor {
namespace {

using rmon::testing::RecordingSink;

std::string ack_frame(const std::string& group, const std::string& event_id) {
  return protocol::encode_ack({group, event_id});
}

OutboxOptions outbox_options() {
  OutboxOptions o;
  o.groups = kGroups;
  return o;
}

// One table, outbox and dispatcher, and a PUSH socket per group with a PULL
// connected (in process), as the service has.
class DispatcherTest : public RunnerTableTest {
 protected:
  DispatcherTest() {
    for (std::size_t g = 0; g < kGroups.size(); ++g) {
      const std::string ep = "inproc://dispatcher-test-" + std::to_string(g);
      push.push_back(make_socket(ctx, zmq::socket_type::push, {}));
      push.back().bind(ep);
      pull.push_back(make_socket(ctx, zmq::socket_type::pull, {}));
      pull.back().connect(ep);
    }
  }
  std::size_t attempts_on_file() {
    std::size_t n = 0;
    outbox.store().for_each_attempt([&](const TimedOutAttempt&) { ++n; });
    return n;
  }

  zmq::context_t ctx;
  std::vector<zmq::socket_t> push, pull;
  MonitorStats stats{kGroups};
  Outbox outbox{outbox_options()};
  Dispatcher dispatcher{table, outbox, stats, nullptr, clock};
};

TEST_F(DispatcherTest, APassNeverPrunesTheOutbox) {
  // An event every group acknowledged, long past its retention as a tombstone.
  outbox.add(event(1), clock.now(), clock.now());
  outbox.ack("task-queue", "ev-1", clock.wall_ms());
  outbox.ack("pool-manager", "ev-1", clock.wall_ms());
  clock.advance_ms(24 * 3600 * 1000);
  for (int i = 0; i < 3; ++i) {
    dispatcher.tick(push);
    clock.advance_ms(11'000);
  }
  EXPECT_EQ(stats.outbox_pruned.load(), 0u) << "the thread that convicts pruned the outbox";
  EXPECT_EQ(attempts_on_file(), 1u);
}

TEST_F(DispatcherTest, ATimeoutStormIsLoggedInABurstAndOneLineSayingHowManyWereHeldBack) {
  auto sink = std::make_shared<RecordingSink>();
  rmon::testing::RecordDefaultLog recording(sink, spdlog::level::warn);
  for (int i = 0; i < 100; ++i) apply(hb("r-" + std::to_string(i), 1));  // timeout 1000 ms
  clock.advance_ms(1100);
  dispatcher.tick(push);
  EXPECT_EQ(table.counters().timeouts, 100u);
  EXPECT_EQ(sink->count("runner timed out runner_id="), 20u);
  EXPECT_EQ(sink->count("runner timed out lines held back"), 0u) << "not before a second";
  clock.advance_ms(1000);
  dispatcher.tick(push);
  ASSERT_EQ(sink->count("runner timed out lines held back"), 1u);
  const auto lines = sink->lines();
  EXPECT_NE(lines.back().find("held back: 80 "), std::string::npos) << lines.back();
  clock.advance_ms(1000);
  dispatcher.tick(push);
  EXPECT_EQ(sink->count("runner timed out lines held back"), 1u) << "said once";
}

TEST_F(DispatcherTest, AcknowledgementsTheAckThreadPostedAreAppliedAtTheNextPass) {
  outbox.add(event(1), clock.now(), clock.now());
  dispatcher.tick(push);  // sent to both groups
  EXPECT_EQ(stats.per_group[0].pending.load(), 1u);
  AckWriter writer(outbox.store(), outbox.acks(), stats, clock, {});
  writer.apply({ack_frame("task-queue", "ev-1")});
  EXPECT_EQ(stats.per_group[0].acks.load(), 1u);     // committed and counted
  EXPECT_EQ(stats.per_group[0].pending.load(), 1u);  // not yet in the dispatcher's view
  dispatcher.tick(push);
  EXPECT_EQ(stats.per_group[0].pending.load(), 0u);
  EXPECT_EQ(stats.per_group[1].pending.load(), 1u);
  // Not resent to the group that acknowledged it.
  clock.advance_ms(6000);
  dispatcher.tick(push);
  EXPECT_EQ(stats.per_group[0].redeliveries.load(), 0u);
  EXPECT_EQ(stats.per_group[1].redeliveries.load(), 1u);
}

TEST(AckWriter, CommitsInChunksCountsWhatItCannotUseAndPrunesInChunks) {
  FakeClock clock;
  MonitorStats stats(kGroups);
  Outbox outbox(outbox_options());
  std::vector<NewEvent> batch;
  for (int i = 1; i <= 300; ++i) batch.push_back({event(i), clock.now()});
  outbox.add(batch, clock.now());
  AckWriterOptions o;
  o.chunk = 128;
  o.prune_chunk = 100;
  o.tombstone_retention = Millis(1000);
  int posts = 0;
  AckWriter writer(outbox.store(), outbox.acks(), stats, clock, o, [&] { ++posts; });

  std::vector<std::string> frames;
  for (int i = 1; i <= 300; ++i)
    frames.push_back(ack_frame("task-queue", "ev-" + std::to_string(i)));
  frames.push_back(ack_frame("task-queue", "ev-1"));  // repeated
  frames.push_back(ack_frame("nobody", "ev-2"));      // unknown group
  frames.push_back("not an ack");
  std::vector<std::string_view> views(frames.begin(), frames.end());
  writer.apply(views);
  EXPECT_EQ(posts, 3) << "301 acks of known groups, 128 per transaction";
  EXPECT_EQ(stats.per_group[0].acks.load(), 300u);
  EXPECT_EQ(stats.acks_unknown.load(), 2u);
  EXPECT_EQ(stats.ack_frames_rejected.load(), 1u);
  EXPECT_EQ(outbox.pending(0), 300u) << "applied in memory by the dispatch thread only";
  outbox.take_acks();
  EXPECT_EQ(outbox.pending(0), 0u);
  EXPECT_EQ(outbox.pending(1), 300u);

  frames.clear();
  for (int i = 1; i <= 300; ++i) {
    frames.push_back(ack_frame("pool-manager", "ev-" + std::to_string(i)));
  }
  views.assign(frames.begin(), frames.end());
  writer.apply(views);  // every event is done now
  outbox.take_acks();
  EXPECT_EQ(outbox.pending_total(), 0u);
  EXPECT_EQ(writer.prune_chunk(clock.wall_ms()), 0u) << "within their retention";
  clock.advance_ms(2000);
  EXPECT_EQ(writer.prune_chunk(clock.wall_ms()), 100u);
  EXPECT_EQ(writer.prune_chunk(clock.wall_ms()), 100u);
  EXPECT_EQ(writer.prune_chunk(clock.wall_ms()), 100u);
  EXPECT_EQ(writer.prune_chunk(clock.wall_ms()), 0u);
  EXPECT_EQ(stats.outbox_pruned.load(), 300u);
}

}  // namespace
}  // namespace rmon::monitor
