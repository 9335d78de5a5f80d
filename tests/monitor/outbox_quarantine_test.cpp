// A stored event that no longer decodes (a damaged disk): the outbox
// quarantines it once per group, with one ERROR line, and from then on
// neither counts it as pending nor reads it again, in this process or after
// a restart; the body stays on file for an operator.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "../support/recording_sink.hpp"
#include "../support/temp_dir.hpp"
#include "damaged_outbox.hpp"
#include "outbox.hpp"
#include "rmon/fake_clock.hpp"
#include "table_test_support.hpp"  // event(n), kGroups

namespace rmon::monitor {
namespace {

using rmon::testing::damage_stored_event;
using rmon::testing::outbox_file;
using rmon::testing::quarantined_rows;
using rmon::testing::RecordingSink;
using rmon::testing::TempDir;

constexpr const char* kUnreadable = "outbox: stored event unreadable";

OutboxOptions outbox_options() {
  OutboxOptions o;
  o.groups = kGroups;
  return o;
}

// The event ids each flush at `now` sends, per group.
std::vector<std::vector<std::string>> flush(Outbox& box, MonoTime now) {
  std::vector<std::vector<std::string>> sent(kGroups.size());
  box.flush(now, [&](std::size_t g, const PendingEvent& e, std::string_view) {
    sent[g].push_back(e.event->event_id);
    return true;
  });
  return sent;
}

class OutboxQuarantineTest : public ::testing::Test {
 protected:
  // Three events written by one process, the last one then damaged on disk.
  OutboxQuarantineTest() {
    {
      Outbox box(outbox_options(), outbox_file(path, kGroups));
      for (int i = 1; i <= 3; ++i) box.add(event(i), clock.now(), clock.now());
    }
    damage_stored_event(path, "ev-3");
  }

  TempDir dir;
  std::filesystem::path path = dir.path() / "runner-monitor.db";
  FakeClock clock;
  std::shared_ptr<RecordingSink> sink = std::make_shared<RecordingSink>();
  rmon::testing::RecordDefaultLog recording{sink, spdlog::level::warn};
};

TEST_F(OutboxQuarantineTest, AnUnreadableEventIsQuarantinedOncePerGroupAndNoLongerPending) {
  Outbox box(outbox_options(), outbox_file(path, kGroups));
  EXPECT_EQ(box.pending(0), 3u) << "on disk at start";
  const auto sent = flush(box, clock.now());
  EXPECT_EQ(sent[0], (std::vector<std::string>{"ev-1", "ev-2"}));
  EXPECT_EQ(sent[1], (std::vector<std::string>{"ev-1", "ev-2"}));
  EXPECT_EQ(box.pending(0), 2u) << "the damaged event still counted as pending";
  EXPECT_EQ(box.pending(1), 2u);
  EXPECT_EQ(box.quarantined(0), 1u);
  EXPECT_EQ(box.quarantined(1), 1u);
  // Passes go on (redeliveries included): it is never read, nor reported, again.
  for (int i = 0; i < 5; ++i) {
    clock.advance_ms(6000);
    flush(box, clock.now());
  }
  EXPECT_EQ(sink->count(kUnreadable), 2u) << "one ERROR line per group, not one per refill";
  EXPECT_EQ(quarantined_rows(path),
            (std::vector<std::string>{"pool-manager/ev-3", "task-queue/ev-3"}))
      << "kept for an operator, not lost silently";
  // The readable events acknowledged: nothing is left pending.
  for (const std::string& g : kGroups) {
    for (const char* id : {"ev-1", "ev-2"}) ASSERT_EQ(box.ack(g, id), AckResult::kAcked);
  }
  EXPECT_EQ(box.pending_total(), 0u);
  EXPECT_EQ(box.store().pending_counts(), (std::vector<uint64_t>{0, 0})) << "on disk too";
}

TEST_F(OutboxQuarantineTest, ARestartNeitherCountsNorReadsAQuarantinedEventAgain) {
  {
    Outbox box(outbox_options(), outbox_file(path, kGroups));
    flush(box, clock.now());
    ASSERT_EQ(sink->count(kUnreadable), 2u);
  }
  Outbox box(outbox_options(), outbox_file(path, kGroups));
  EXPECT_EQ(box.pending(0), 2u);
  EXPECT_EQ(box.pending(1), 2u);
  flush(box, clock.now());
  EXPECT_EQ(sink->count(kUnreadable), 2u) << "reported again after the restart";
  EXPECT_EQ(box.quarantined(0), 0u);
  const auto lines = sink->lines();
  EXPECT_EQ(std::count_if(lines.begin(), lines.end(),
                          [](const std::string& l) {
                            return l.starts_with("outbox: table quarantine of ") &&
                                   l.find(" holds 2 unreadable events") != std::string::npos;
                          }),
            1)
      << "the start says what the quarantine holds";
  // Its attempt still timed out, as far as a restored table is concerned.
  std::vector<std::string> attempts;
  box.store().for_each_attempt([&](const TimedOutAttempt& a) { attempts.push_back(a.runner_id); });
  EXPECT_EQ(attempts, (std::vector<std::string>{"r-1", "r-2", "r-3"}));
}

TEST_F(OutboxQuarantineTest, AnUnreadableEventAmongMoreThanTheWindowIsQuarantinedInItsTurn) {
  {
    Outbox box(outbox_options(), outbox_file(path, kGroups));
    for (int i = 4; i <= 6; ++i) box.add(event(i), clock.now(), clock.now());
  }
  OutboxOptions o = outbox_options();
  o.window = 2;
  Outbox box(o, outbox_file(path, kGroups));
  std::vector<std::string> sent;
  for (int round = 0; round < 5; ++round) {
    const auto sent_now = flush(box, clock.now());
    for (const std::string& id : sent_now[0]) {
      sent.push_back(id);
      for (const std::string& g : kGroups) ASSERT_EQ(box.ack(g, id), AckResult::kAcked);
    }
  }
  EXPECT_EQ(sent, (std::vector<std::string>{"ev-1", "ev-2", "ev-4", "ev-5", "ev-6"}));
  EXPECT_EQ(box.pending_total(), 0u);
  EXPECT_EQ(sink->count(kUnreadable), 2u);
}

}  // namespace
}  // namespace rmon::monitor
