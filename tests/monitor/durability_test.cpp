// The monitor's durable pieces on their own: the outbox on disk (bounded
// memory, restart with the same event ids), the runner table saved and
// restored (fences included) and the grace a restart gives.

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <map>
#include <set>

#include "../support/temp_dir.hpp"
#include "../support/wait.hpp"
#include "id_list.hpp"
#include "outbox.hpp"
#include "persister.hpp"
#include "rmon/fake_clock.hpp"
#include "table_test_support.hpp"

namespace rmon::monitor {
namespace {

using protocol::TimeoutEvent;
using rmon::testing::TempDir;

// As the service opens it: owned by this process, its log checkpointed by a
// thread of its own (here as soon as the appends pause for 2 ms).
store::Checkpointer::Options eager_checkpoints() {
  store::Checkpointer::Options o;
  o.every = std::chrono::milliseconds(2);
  o.quiet = std::chrono::milliseconds(2);
  return o;
}

std::unique_ptr<OutboxStore> file_store(
    const TempDir& dir, store::Checkpointer::Options checkpoints = eager_checkpoints()) {
  return OutboxStore::open(dir.path() / "runner-monitor.db", store::SyncMode::kNormal,
                           "one test per data folder", kGroups, checkpoints);
}

std::vector<StoredEvent> stored(int first, int count) {
  std::vector<StoredEvent> v;
  for (int i = first; i < first + count; ++i) v.push_back({0, event(i)});
  return v;
}

// What the database file holds without its log (what checkpoints copied);
// -1 when the copy caught a checkpoint half-way.
int64_t events_in_main_file(const TempDir& dir) {
  TempDir copy;
  std::filesystem::copy_file(dir.path() / "runner-monitor.db", copy.path() / "copy.db");
  try {
    store::Db db(copy.path() / "copy.db", store::SyncMode::kNormal);
    store::Stmt q = db.prepare("SELECT COUNT(*) FROM events");
    return q.step() ? q.int64(0) : -1;
  } catch (const store::SqliteError&) {
    return -1;
  }
}

OutboxOptions window_of(std::size_t window) {
  OutboxOptions o;
  o.groups = kGroups;
  o.window = window;
  return o;
}

// Sends everything due for one group; returns the event ids and deliveries.
std::vector<std::pair<std::string, uint64_t>> send_all(Outbox& box, std::size_t group,
                                                       MonoTime now) {
  std::vector<std::pair<std::string, uint64_t>> out;
  box.flush(now, [&](std::size_t g, const PendingEvent& e, std::string_view) {
    if (g != group) return false;  // the other group's socket "would block"
    out.emplace_back(e.event->event_id, e.delivery);
    return true;
  });
  return out;
}

TEST(DurableOutbox, MemoryHoldsAWindowPerGroupAndTheRestWaitsOnDiskInOrder) {
  FakeClock clock;
  Outbox box(window_of(3));
  for (int i = 1; i <= 10; ++i) box.add(event(i), clock.now(), clock.now());
  EXPECT_EQ(box.pending(0), 10u);
  EXPECT_EQ(box.in_memory(0), 3u);
  EXPECT_EQ(box.in_memory(1), 3u);

  std::vector<std::string> order;
  for (int round = 0; round < 10 && order.size() < 10; ++round) {
    for (auto& [id, delivery] : send_all(box, 0, clock.now())) {
      EXPECT_EQ(delivery, 1u);
      order.push_back(id);
      EXPECT_EQ(box.ack("task-queue", id), AckResult::kAcked);
      EXPECT_LE(box.in_memory(0), 3u);
    }
  }
  ASSERT_EQ(order.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(order[i], "ev-" + std::to_string(i + 1));
  EXPECT_EQ(box.pending(0), 0u);
  // The other group never took one and is untouched by the first's progress.
  EXPECT_EQ(box.pending(1), 10u);
  EXPECT_EQ(box.in_memory(1), 3u);
}

TEST(DurableOutbox, AnAckForAnEventStillOnDiskCounts) {
  FakeClock clock;
  Outbox box(window_of(1));
  for (int i = 1; i <= 3; ++i) box.add(event(i), clock.now(), clock.now());
  EXPECT_EQ(box.ack("pool-manager", "ev-3"), AckResult::kAcked);  // never loaded
  EXPECT_EQ(box.pending(1), 2u);
  EXPECT_EQ(box.ack("pool-manager", "ev-3"), AckResult::kUnknownEvent);  // repeated
  EXPECT_EQ(box.ack("nobody", "ev-1"), AckResult::kUnknownGroup);
}

TEST(DurableOutbox, PendingEventsComeBackAfterARestartWithTheirIds) {
  TempDir dir;
  FakeClock clock;
  {
    Outbox box(window_of(100), file_store(dir));
    for (int i = 1; i <= 5; ++i) box.add(event(i), clock.now(), clock.now());
    send_all(box, 0, clock.now());
    box.ack("task-queue", "ev-1");
    box.ack("task-queue", "ev-2");
    box.ack("pool-manager", "ev-2");  // ev-2 is done
  }                                   // no clean stop needed: every add and ack was committed
  Outbox box(window_of(100), file_store(dir));
  EXPECT_EQ(box.pending(0), 3u);
  EXPECT_EQ(box.pending(1), 4u);
  auto sent = send_all(box, 0, clock.now());
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[0].first, "ev-3");
  EXPECT_EQ(sent[2].first, "ev-5");
  // It may have been sent before the restart: counted as a redelivery.
  EXPECT_EQ(sent[0].second, 2u);
  // New events go on after them, with first deliveries.
  box.add(event(6), clock.now(), clock.now());
  auto next = send_all(box, 0, clock.now());
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0], std::make_pair(std::string("ev-6"), uint64_t{1}));

  // Done events stay as tombstones (the timed-out attempts) until pruned.
  std::set<std::string> attempts;
  box.store().for_each_attempt([&](const TimedOutAttempt& a) { attempts.insert(a.runner_id); });
  EXPECT_EQ(attempts.size(), 6u);
  constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(box.store().prune(kNever, 100), 1u);  // ev-2 only
  attempts.clear();
  box.store().for_each_attempt([&](const TimedOutAttempt& a) { attempts.insert(a.runner_id); });
  EXPECT_EQ(attempts.size(), 5u);
}

TEST(DurableOutbox, ASecondOpenOfTheSameFolderIsRefusedUntilTheFirstCloses) {
  TempDir dir;
  auto first = file_store(dir);
  try {
    file_store(dir);
    FAIL() << "a second store opened the same database";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("in use by another process"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("one test per data folder"), std::string::npos)
        << e.what();
  }
  auto batch = stored(1, 1);
  first->append(batch);  // the refused open changed nothing
  first.reset();
  auto again = file_store(dir);
  EXPECT_EQ(again->pending_counts(), (std::vector<uint64_t>{1, 1}));
}

TEST(DurableOutbox, TheLogIsCheckpointedWhenAppendsPauseWhileTheWriterGoesOn) {
  TempDir dir;
  auto box = file_store(dir);
  ASSERT_NE(box->checkpointer(), nullptr);
  auto batch = stored(1, 10);
  box->append(batch);
  ASSERT_TRUE(rmon::testing::wait_until([&] { return box->checkpointer()->stats().done > 0; }));
  EXPECT_EQ(box->checkpointer()->stats().failed, 0u);
  // The database file itself now holds them: the log was copied into it
  // (nothing else writes: the copy is whole).
  EXPECT_EQ(events_in_main_file(dir), 10);
  // The writer goes on after the checkpointer restarted the log.
  auto more = stored(11, 5);
  box->append(more);
  EXPECT_EQ(box->pending_counts(), (std::vector<uint64_t>{15, 15}));
  ASSERT_TRUE(rmon::testing::wait_until([&] { return events_in_main_file(dir) == 15; }));
}

TEST(DurableOutbox, ALogPastItsBoundIsCheckpointedEvenWithoutAPause) {
  TempDir dir;
  store::Checkpointer::Options o;
  o.every = std::chrono::milliseconds(2);
  o.quiet = std::chrono::hours(1);  // never quiet enough
  o.max_frames = 8;
  auto box = file_store(dir, o);
  int n = 0;
  // Appends go on, one transaction each, until the bound has triggered one.
  ASSERT_TRUE(rmon::testing::wait_until([&] {
    auto one = stored(++n, 1);
    box->append(one);
    return box->checkpointer()->stats().done > 0;
  }));
  EXPECT_TRUE(rmon::testing::wait_until([&] { return events_in_main_file(dir) >= 1; }));
}

TEST(DurableOutbox, PendingEventsOfAGroupNoLongerConfiguredRefuseTheOpenUntilDropped) {
  TempDir dir;
  FakeClock clock;
  const auto path = dir.path() / "runner-monitor.db";
  {
    Outbox box(window_of(100), file_store(dir));
    box.add(event(1), clock.now(), clock.now());
    box.add(event(2), clock.now(), clock.now());
    box.ack("pool-manager", "ev-1", 1000);
  }
  // "task-queue" misspelled: its two pending events must not go silently.
  const std::vector<std::string> typo = {"taks-queue", "pool-manager"};
  try {
    OutboxStore::open(path, store::SyncMode::kNormal, "test", typo, eager_checkpoints());
    FAIL() << "opened, dropping the pending events of a group no longer configured";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("task-queue (2 pending events)"), std::string::npos) << what;
    EXPECT_NE(what.find("--drop-group"), std::string::npos) << what;
  }
  // Nothing was lost: with the right name they are all there.
  EXPECT_EQ(file_store(dir)->pending_counts(), (std::vector<uint64_t>{2, 1}));
  // Dropped deliberately.
  OutboxOptions one;
  one.groups = {"pool-manager"};
  Outbox box(one, OutboxStore::open(path, store::SyncMode::kNormal, "test", one.groups,
                                    eager_checkpoints(), {"task-queue"}));
  EXPECT_EQ(box.pending(0), 1u);  // ev-2
  box.ack("pool-manager", "ev-2", 1000);
  EXPECT_EQ(box.pending_total(), 0u);
  // Both are done now: ev-1 when its last group was dropped, ev-2 when acked.
  EXPECT_EQ(box.store().prune(std::numeric_limits<int64_t>::max(), 100), 2u);
}

TEST(ServiceDb, ADatabaseOfANewerBuildIsRefusedAndAnOlderOneUpgraded) {
  TempDir dir;
  const auto path = dir.path() / "x.db";
  { (void)store::open_service_db(path, store::SyncMode::kNormal, "test", 3); }
  try {
    (void)store::open_service_db(path, store::SyncMode::kNormal, "test", 2);
    FAIL() << "a newer schema was opened";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("x.db"), std::string::npos) << what;
    EXPECT_NE(what.find("schema version 3"), std::string::npos) << what;
    EXPECT_NE(what.find("(2)"), std::string::npos) << what;
  }
  store::Db db = store::open_service_db(path, store::SyncMode::kNormal, "test", 4);
  EXPECT_EQ(store::meta_int(db, "schema_version"), 4);
}

// --- the table saved and restored ---

class TablePersistenceTest : public RunnerTableTest {
 protected:
  std::unique_ptr<TableStore> table_store(const std::string& file = "runner-monitor-table.db") {
    return std::make_unique<TableStore>(store::open_service_db(
        dir.path() / file, store::SyncMode::kNormal, "test", kTableSchemaVersion));
  }
  TempDir dir;
};

TEST_F(TablePersistenceTest, ChangedRunnersAreSavedAndRestoredFencesIncluded) {
  Persister persister(table_store(), Millis(100), 1000);
  RunnerTable source(options(), &persister);
  persister.attach(source);
  const auto now = [&] { return clock.now(); };
  Heartbeat a = hb("r-a", 1, "t-1", 1);
  a.runner.container_id = "c-1";
  source.apply(a, now(), clock.wall_ms());
  source.apply(hb("r-b", 1, "t-9", 1), now(), clock.wall_ms());
  // r-b times out on attempt 1, then moves to attempt 2: attempt 1 is fenced.
  clock.advance_ms(1100);
  std::vector<Expired> out;
  source.sweep(now(), clock.wall_ms(), out);
  ASSERT_EQ(out.size(), 2u);  // both silent
  source.apply(hb("r-a", 1, "t-2", 1), now(), clock.wall_ms());
  source.apply(hb("r-b", 1, "t-9", 2), now(), clock.wall_ms());
  EXPECT_EQ(persister.save_now(), 2u);
  EXPECT_EQ(persister.save_now(), 0u);  // nothing changed since

  // A new process: restore, 5 s of downtime later.
  clock.advance_ms(5000);
  RunnerTable restored(options());
  std::size_t unreadable = 0;
  EXPECT_EQ(
      persister.store().load(
          [&](const SavedRunner& r) { restored.restore(r, now(), clock.wall_ms()); }, unreadable),
      2u);
  EXPECT_EQ(unreadable, 0u);
  auto va = restored.get("r-a", now());
  ASSERT_TRUE(va);
  EXPECT_EQ(va->runner.task_id, "t-2");
  EXPECT_EQ(va->state, RunnerState::kRunning);
  EXPECT_GE(va->silence_ms, 5000u);  // silence goes on from the saved heartbeat
  // The fence came back: a zombie heartbeat for r-b's timed-out attempt is late.
  EXPECT_EQ(restored.apply(hb("r-b", 7, "t-9", 1), now(), clock.wall_ms()), Applied::kLate);
  EXPECT_EQ(restored.apply(hb("r-b", 2, "t-9", 2), now(), clock.wall_ms()), Applied::kUpdated);
}

TEST_F(TablePersistenceTest, ARestartGivesEachRunnerItsOwnTimeoutAsGrace) {
  table.apply(hb("quiet", 1), clock.now(), clock.wall_ms());  // timeout 1000 ms
  const SavedRunner saved = *table.save("quiet");
  clock.advance_ms(3000);  // the monitor was down 3 s: quiet is overdue
  RunnerTable restored(options());
  ASSERT_TRUE(restored.restore(saved, clock.now(), clock.wall_ms()));
  restored.grant_grace(clock.now());
  std::vector<Expired> out;
  clock.advance_ms(900);
  restored.sweep(clock.now(), clock.wall_ms(), out);
  EXPECT_TRUE(out.empty()) << "convicted within its grace";
  EXPECT_EQ(restored.get("quiet", clock.now())->state, RunnerState::kRunning);
  clock.advance_ms(100);
  restored.sweep(clock.now(), clock.wall_ms(), out);
  EXPECT_TRUE(out.empty());
  // Suspect for one check (the storm brake counts it), then convicted.
  EXPECT_EQ(restored.get("quiet", clock.now())->state, RunnerState::kSuspect);
  clock.advance_ms(100);
  restored.sweep(clock.now(), clock.wall_ms(), out);
  ASSERT_EQ(out.size(), 1u) << "detected once the grace is over";
  EXPECT_EQ(out[0].event.runner.runner_id, "quiet");
}

TEST_F(TablePersistenceTest, ARunnerHeardDuringTheGraceIsNeverConvicted) {
  table.apply(hb("alive", 1), clock.now(), clock.wall_ms());
  const SavedRunner saved = *table.save("alive");
  clock.advance_ms(3000);
  RunnerTable restored(options());
  restored.restore(saved, clock.now(), clock.wall_ms());
  restored.grant_grace(clock.now());
  std::vector<Expired> out;
  for (int i = 0; i < 30; ++i) {  // heartbeats every 500 ms for 15 s
    clock.advance_ms(500);
    restored.apply(hb("alive", 2 + i), clock.now(), clock.wall_ms());
    restored.sweep(clock.now(), clock.wall_ms(), out);
  }
  EXPECT_TRUE(out.empty());
}

TEST_F(TablePersistenceTest, AnAttemptTheOutboxHasAnEventForIsNotTimedOutTwice) {
  table.apply(hb("r", 1), clock.now(), clock.wall_ms());
  const SavedRunner saved = *table.save("r");  // saved while running
  RunnerTable restored(options());
  restored.restore(saved, clock.now(), clock.wall_ms());
  EXPECT_TRUE(restored.mark_timed_out("r", "t-1", 1, clock.now()));
  EXPECT_FALSE(restored.mark_timed_out("r", "t-1", 1, clock.now()));  // already
  clock.advance_ms(5000);
  std::vector<Expired> out;
  restored.sweep(clock.now(), clock.wall_ms(), out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(restored.apply(hb("r", 9), clock.now(), clock.wall_ms()), Applied::kLate);
}

TEST_F(TablePersistenceTest, TooManyChangesBetweenSavesRewriteTheWholeTable) {
  Persister persister(table_store(), Millis(100), 4);
  RunnerTable source(options(), &persister);
  persister.attach(source);
  for (int i = 0; i < 10; ++i) {
    source.apply(hb("r-" + std::to_string(i), 1), clock.now(), clock.wall_ms());
  }
  EXPECT_EQ(persister.save_now(), 10u);
  EXPECT_EQ(persister.stats().rewrites.load(), 1u);
  EXPECT_EQ(persister.store().size(), 10u);
  source.remove("r-3");
  EXPECT_EQ(persister.save_now(), 1u);
  EXPECT_EQ(persister.store().size(), 9u);
}

TEST_F(TablePersistenceTest, ARewriteInPassesWritesEveryRunnerOnceInKeyRanges) {
  // Passes of about 30 runners: 100 runners make 4 ranges of ids.
  Persister persister(table_store(), Millis(100), 4, 30);
  RunnerTable source(options(), &persister);
  persister.attach(source);
  for (int i = 0; i < 100; ++i) {
    source.apply(hb("r-" + std::to_string(1000 + i * 7919 % 100), 1), clock.now(), clock.wall_ms());
  }
  EXPECT_EQ(persister.save_now(), 100u);
  EXPECT_EQ(persister.stats().rewrites.load(), 1u);
  EXPECT_EQ(persister.stats().rewrite_passes.load(), 4u);
  std::set<std::string> saved;
  std::size_t unreadable = 0;
  persister.store().load([&](const SavedRunner& r) { saved.insert(r.info.runner_id); }, unreadable);
  EXPECT_EQ(saved.size(), 100u);
  EXPECT_EQ(*saved.begin(), "r-1000");
  EXPECT_EQ(*saved.rbegin(), "r-1099");
  // 399 runners in passes of 30 would make 14: at most kMaxRewritePasses.
  source.remove("r-1000");
  for (int i = 0; i < 300; ++i) source.apply(hb("x-" + std::to_string(i), 1), clock.now(), 0);
  EXPECT_EQ(persister.save_now(), 399u);
  EXPECT_EQ(persister.stats().rewrites.load(), 2u);
  EXPECT_EQ(persister.stats().rewrite_passes.load(), 4u + kMaxRewritePasses);
  EXPECT_EQ(persister.store().size(), 399u);
  // A table too small to split takes one pass.
  Persister one(table_store("small.db"), Millis(100), 4, 1000);
  RunnerTable small(options(), &one);
  one.attach(small);
  for (int i = 0; i < 10; ++i) small.apply(hb("s-" + std::to_string(i), 1), clock.now(), 0);
  EXPECT_EQ(one.save_now(), 10u);
  EXPECT_EQ(one.stats().rewrite_passes.load(), 1u);
}

TEST_F(TablePersistenceTest, SplitIdsCutTheTableIntoSortedRanges) {
  for (int i = 0; i < 1000; ++i) table.apply(hb("id-" + std::to_string(i), 1), clock.now(), 0);
  const std::vector<std::string> splits = table.split_ids(4);
  ASSERT_EQ(splits.size(), 3u);
  EXPECT_TRUE(std::is_sorted(splits.begin(), splits.end()));
  std::size_t total = 0;
  for (std::size_t k = 0; k <= splits.size(); ++k) {
    IdList ids;
    table.append_ids(ids, RunnerTable::IdRange::nth(splits, k));
    EXPECT_NEAR(static_cast<double>(ids.size()), 250.0, 1.0) << "range " << k;
    total += ids.size();
  }
  EXPECT_EQ(total, 1000u);  // each runner in exactly one range
  EXPECT_TRUE(table.split_ids(1).empty());
}

TEST_F(TablePersistenceTest, EachRowOfASaveHoldsOnlyItsOwnRunnersFields) {
  // A save fills one SavedRunner for every row: a runner without a
  // container, job, progress, pid or fences must not take the previous
  // row's (they are saved in id order: "r-1" before "r-2").
  Persister persister(table_store(), Millis(100), 1000);
  RunnerTable source(options(), &persister);
  persister.attach(source);
  Heartbeat full = hb("r-1", 1, "a-much-longer-task-id-than-the-next-one", 1);
  full.runner.pool_type = PoolType::kDocker;
  full.runner.container_id = "c-1";
  full.runner.job_name = "job-1";
  full.runner.progress = std::string("\x01", 1);
  full.interval_ms = 250;
  source.apply(full, clock.now(), clock.wall_ms());
  clock.advance_ms(1100);
  std::vector<Expired> out;
  source.sweep(clock.now(), clock.wall_ms(), out);  // r-1 times out: a fence
  ASSERT_EQ(out.size(), 1u);
  Heartbeat next = full;
  next.seq = 2;
  next.runner.task_id = "t-next";
  source.apply(next, clock.now(), clock.wall_ms());
  Heartbeat bare = hb("r-2", 1, "t", 1);
  bare.runner.pid.reset();
  source.apply(bare, clock.now(), clock.wall_ms());
  EXPECT_EQ(persister.save_now(), 2u);

  std::map<std::string, SavedRunner> loaded;
  std::size_t unreadable = 0;
  persister.store().load([&](const SavedRunner& r) { loaded[r.info.runner_id] = r; }, unreadable);
  ASSERT_EQ(loaded.size(), 2u);
  const SavedRunner& one = loaded["r-1"];
  EXPECT_EQ(one.info.task_id, "t-next");
  EXPECT_EQ(one.info.container_id, "c-1");
  EXPECT_EQ(one.info.job_name, "job-1");
  EXPECT_EQ(one.info.progress, std::string("\x01", 1));
  EXPECT_EQ(one.interval_ms, 250u);
  EXPECT_EQ(one.fences.size(), 1u);
  const SavedRunner& two = loaded["r-2"];
  EXPECT_EQ(two.info.task_id, "t");
  EXPECT_EQ(two.info.pool_type, PoolType::kLocalProcess);
  EXPECT_FALSE(two.info.pid);
  EXPECT_FALSE(two.info.container_id);
  EXPECT_FALSE(two.info.job_name);
  EXPECT_FALSE(two.info.progress);
  EXPECT_FALSE(two.interval_ms);
  EXPECT_TRUE(two.fences.empty());
}

TEST(IdList, SortsTheIdsOnceEachLongOnesIncluded) {
  IdList ids;
  EXPECT_TRUE(ids.sorted_unique().empty());
  const std::string long_id(300, 'z');  // past the one-byte length
  for (const std::string& id : {std::string("b"), long_id, std::string("a"), std::string("b"),
                                std::string(254, 'y'), std::string(255, 'y')}) {
    ids.add(id);
  }
  EXPECT_EQ(ids.size(), 6u);
  std::vector<std::string> got;
  for (const uint32_t at : ids.sorted_unique()) got.emplace_back(ids.at(at));
  EXPECT_EQ(got, (std::vector<std::string>{"a", "b", std::string(254, 'y'), std::string(255, 'y'),
                                           long_id}));
  ids.clear();
  EXPECT_TRUE(ids.empty());
  ids.add("c");
  ASSERT_EQ(ids.sorted_unique().size(), 1u);
  EXPECT_EQ(ids.at(ids.sorted_unique()[0]), "c");
}

}  // namespace
}  // namespace rmon::monitor
