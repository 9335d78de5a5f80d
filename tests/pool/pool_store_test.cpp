// PoolStore on a temporary database with a fake clock, on both engines
// (SQLite in a temp folder, a fresh PostgreSQL database): every rule of
// pool_store.hpp, the first-heartbeat grace, persistence across reopening and
// configuration changes.

#include <gtest/gtest.h>

#include <fstream>
#include <memory>

#include "../support/temp_dir.hpp"
#include "pool_engine.hpp"
#include "pool_store.hpp"
#include "pool_test_support.hpp"
#include "rmon/fake_clock.hpp"
#include "slot_bitmap.hpp"

namespace rmon::pool {
namespace {

using rmon::testing::Engine;
using testing::timeout_event;

constexpr int64_t kGraceMs = 30'000;

std::vector<PoolSpec> pools(uint32_t local_slots = 3) {
  return {{"local", protocol::PoolType::kLocalProcess, local_slots},
          {"docker", protocol::PoolType::kDocker, 2}};
}

class PoolStoreTest : public ::testing::TestWithParam<Engine> {
 protected:
  void SetUp() override { open(pools()); }

  // (Re)opens the same database: a restart.
  void open(std::vector<PoolSpec> specs) {
    store.reset();
    StoreOptions o;
    o.sync = store::SyncMode::kNormal;
    o.first_heartbeat_grace = Millis(kGraceMs);
    store = testing::open_pool_store(GetParam(), dir.path(), url, pg, std::move(specs), clock, o);
  }

  // Each call in its own transaction, as the service's batch would.
  template <class F>
  auto tx(F f) {
    store::Transaction t(store->db());
    auto r = f(*store);
    t.commit();
    return r;
  }
  AcquireResult acquire(const std::string& pool, const std::string& runner,
                        const std::string& task = "t1", uint64_t attempt = 1) {
    return tx([&](PoolStore& s) { return s.acquire(pool, runner, task, attempt); });
  }
  std::size_t release(const std::string& runner, std::optional<std::string> pool = {}) {
    return tx([&](PoolStore& s) { return s.release(runner, pool); }).size();
  }
  EventOutcome event(const protocol::TimeoutEvent& ev) {
    return tx([&](PoolStore& s) { return s.apply_timeout(ev); });
  }
  std::size_t verdict(const LeaseKey& key, Verdict v) {
    return tx([&](PoolStore& s) { return s.apply_verdict({key, v, "why"}); }).size();
  }
  std::vector<LeaseKey> candidates(std::size_t max) {
    return store->reconcile_candidates({}, max).keys;
  }

  rmon::testing::TempDir dir;
  FakeClock clock;
  std::string url;  // PostgreSQL: this test's database
  std::unique_ptr<store::PgDb> pg;
  std::unique_ptr<PoolStore> store;
};

TEST_P(PoolStoreTest, AcquireHandsOutTheLowestFreeSlot) {
  EXPECT_EQ(acquire("local", "r1").slot, 0u);
  EXPECT_EQ(acquire("local", "r2").slot, 1u);
  EXPECT_EQ(acquire("local", "r3").slot, 2u);
  EXPECT_EQ(release("r2"), 1u);
  const AcquireResult r = acquire("local", "r4");
  EXPECT_EQ(r.status, AcquireStatus::kAcquired);
  EXPECT_EQ(r.slot, 1u);
  EXPECT_EQ(store->used_slots("local"), 3u);
  EXPECT_EQ(store->counter(Counter::kAcquired), 4u);
  EXPECT_EQ(store->counter(Counter::kReleased), 1u);
}

TEST_P(PoolStoreTest, AcquireAgainForTheSameAttemptReturnsTheSameSlot) {
  ASSERT_EQ(acquire("local", "r0").slot, 0u);
  ASSERT_EQ(acquire("local", "r1", "t7", 2).slot, 1u);
  const AcquireResult again = acquire("local", "r1", "t7", 2);
  EXPECT_EQ(again.status, AcquireStatus::kAlreadyHeld);
  EXPECT_EQ(again.slot, 1u);
  EXPECT_EQ(store->counter(Counter::kAcquired), 2u);
  EXPECT_EQ(store->used_slots("local"), 2u);
}

TEST_P(PoolStoreTest, AcquireForAnotherAttemptOfTheSamePoolConflicts) {
  ASSERT_EQ(acquire("local", "r1", "t1", 1).status, AcquireStatus::kAcquired);
  const AcquireResult other_attempt = acquire("local", "r1", "t1", 2);
  EXPECT_EQ(other_attempt.status, AcquireStatus::kConflict);
  EXPECT_NE(other_attempt.detail.find("slot 0"), std::string::npos) << other_attempt.detail;
  EXPECT_EQ(acquire("local", "r1", "t2", 1).status, AcquireStatus::kConflict);
  // Another pool is another slot.
  EXPECT_EQ(acquire("docker", "r1", "t2", 1).status, AcquireStatus::kAcquired);
  EXPECT_EQ(store->holdings_total(), 2u);
}

TEST_P(PoolStoreTest, FullPoolAnswersPoolFullAndUnknownPoolNotFound) {
  ASSERT_EQ(acquire("docker", "r1").status, AcquireStatus::kAcquired);
  ASSERT_EQ(acquire("docker", "r2").status, AcquireStatus::kAcquired);
  EXPECT_EQ(acquire("docker", "r3").status, AcquireStatus::kPoolFull);
  EXPECT_EQ(acquire("gpu", "r3").status, AcquireStatus::kNotFound);
  EXPECT_EQ(store->counter(Counter::kAcquired), 2u);
}

TEST_P(PoolStoreTest, ReleaseIsIdempotentAndHonoursThePool) {
  ASSERT_EQ(acquire("local", "r1").status, AcquireStatus::kAcquired);
  ASSERT_EQ(acquire("docker", "r1").status, AcquireStatus::kAcquired);
  EXPECT_EQ(release("r1", "gpu"), 0u);
  EXPECT_EQ(release("r1", "docker"), 1u);
  EXPECT_EQ(release("r1", "docker"), 0u);
  EXPECT_EQ(store->used_slots("local"), 1u);
  EXPECT_EQ(release("r1"), 1u);
  EXPECT_EQ(release("r1"), 0u);
  EXPECT_EQ(release("nobody"), 0u);
  EXPECT_EQ(store->counter(Counter::kReleased), 2u);
  EXPECT_EQ(store->holdings_total(), 0u);
}

TEST_P(PoolStoreTest, TimeoutEventReleasesOnlyThatExactAttempt) {
  ASSERT_EQ(acquire("local", "r1", "t1", 2).status, AcquireStatus::kAcquired);
  EXPECT_EQ(event(timeout_event("e1", "r1", "t1", 1)).result, EventResult::kNoHolding);
  EXPECT_EQ(event(timeout_event("e2", "r1", "t9", 2)).result, EventResult::kNoHolding);
  EXPECT_EQ(event(timeout_event("e3", "r2", "t1", 2)).result, EventResult::kNoHolding);
  EXPECT_EQ(store->used_slots("local"), 1u);
  const EventOutcome out = event(timeout_event("e4", "r1", "t1", 2));
  EXPECT_EQ(out.result, EventResult::kApplied);
  ASSERT_EQ(out.released.size(), 1u);
  EXPECT_EQ(out.released[0].pool, "local");
  EXPECT_EQ(out.released[0].slot, 0u);
  EXPECT_EQ(store->used_slots("local"), 0u);
  EXPECT_EQ(store->counter(Counter::kEventsApplied), 1u);
  EXPECT_EQ(store->counter(Counter::kEventsIgnored), 3u);
  EXPECT_EQ(store->counter(Counter::kReleasedByTimeout), 1u);
}

TEST_P(PoolStoreTest, RepeatedEventIdIsIgnored) {
  ASSERT_EQ(acquire("local", "r1").status, AcquireStatus::kAcquired);
  EXPECT_EQ(event(timeout_event("e1", "r1", "t1", 1)).result, EventResult::kApplied);
  // The same attempt acquires again only if the event were forgotten: it is stale.
  EXPECT_EQ(acquire("local", "r1").status, AcquireStatus::kStaleAttempt);
  ASSERT_EQ(acquire("local", "r1", "t1", 2).status, AcquireStatus::kAcquired);
  // A redelivery of e1 must not touch attempt 2, nor count twice.
  EXPECT_EQ(event(timeout_event("e1", "r1", "t1", 1)).result, EventResult::kRepeated);
  EXPECT_EQ(store->used_slots("local"), 1u);
  EXPECT_EQ(store->counter(Counter::kEventsApplied), 1u);
  EXPECT_EQ(store->counter(Counter::kEventsIgnored), 1u);
}

TEST_P(PoolStoreTest, EventIdsAreForgottenAfterTheRetention) {
  ASSERT_EQ(event(timeout_event("e1", "r1", "t1", 1)).result, EventResult::kNoHolding);
  clock.advance_ms(3'600'000);
  EXPECT_EQ(tx([](PoolStore& s) { return s.prune_events(); }), 0u);
  clock.advance_ms(24 * 3'600'000);
  EXPECT_EQ(tx([](PoolStore& s) { return s.prune_events(); }), 1u);
  EXPECT_EQ(event(timeout_event("e1", "r1", "t1", 1)).result, EventResult::kNoHolding);
}

TEST_P(PoolStoreTest, HoldingsPastTheGraceAreCandidatesUntilAVerdictTakesThemBack) {
  ASSERT_EQ(acquire("local", "seen", "t1", 1).status, AcquireStatus::kAcquired);
  clock.advance_ms(1'000);
  ASSERT_EQ(acquire("local", "lost", "t2", 3).status, AcquireStatus::kAcquired);
  clock.advance_ms(kGraceMs - 1'000 - 1);
  EXPECT_TRUE(candidates(10).empty());
  clock.advance_ms(1);
  ASSERT_EQ(candidates(10), (std::vector<LeaseKey>{{"seen", "t1", 1}}));
  clock.advance_ms(1'000);
  const std::vector<LeaseKey> due = {{"seen", "t1", 1}, {"lost", "t2", 3}};
  ASSERT_EQ(candidates(10), due);  // (pool, slot) order
  CandidatePage first = store->reconcile_candidates({}, 1);
  ASSERT_EQ(first.keys.size(), 1u);
  EXPECT_FALSE(first.last);
  first.next.start = false;
  EXPECT_EQ(store->reconcile_candidates(first.next, 1).keys, (std::vector<LeaseKey>{due[1]}));

  // Keeping verdicts change nothing; the holding stays a candidate.
  for (Verdict v : {Verdict::kAlive, Verdict::kSettling, Verdict::kUndecided}) {
    EXPECT_EQ(verdict(due[0], v), 0u);
  }
  EXPECT_EQ(candidates(10), due);
  // Gone: released, counted as released by timeout and as reconciled.
  EXPECT_EQ(verdict(due[1], Verdict::kGone), 1u);
  EXPECT_EQ(candidates(10), (std::vector<LeaseKey>{due[0]}));
  EXPECT_EQ(store->used_slots("local"), 1u);
  EXPECT_EQ(store->counter(Counter::kReleasedByTimeout), 1u);
  EXPECT_EQ(store->counter(Counter::kReconciled), 1u);
}

TEST_P(PoolStoreTest, LateVerdictSparesAHoldingAcquiredForAnotherAttempt) {
  ASSERT_EQ(acquire("local", "r1", "t1", 1).status, AcquireStatus::kAcquired);
  clock.advance_ms(kGraceMs);
  const auto due = candidates(10);
  ASSERT_EQ(due.size(), 1u);
  // While the lookup was in flight the runner released and acquired again
  // for its next attempt; another runner's verdict cannot touch it either.
  ASSERT_EQ(release("r1"), 1u);
  ASSERT_EQ(acquire("local", "r1", "t1", 2).status, AcquireStatus::kAcquired);
  EXPECT_EQ(verdict(due[0], Verdict::kEnded), 0u);
  EXPECT_EQ(verdict({"r2", "t1", 2}, Verdict::kGone), 0u);
  EXPECT_EQ(store->used_slots("local"), 1u);
}

TEST_P(PoolStoreTest, HoldingsAndCountersSurviveReopening) {
  ASSERT_EQ(acquire("local", "r1").status, AcquireStatus::kAcquired);
  ASSERT_EQ(acquire("local", "r2").status, AcquireStatus::kAcquired);
  ASSERT_EQ(acquire("docker", "r3").status, AcquireStatus::kAcquired);
  ASSERT_EQ(release("r1"), 1u);
  ASSERT_EQ(event(timeout_event("e1", "r3", "t1", 1)).result, EventResult::kApplied);
  ASSERT_EQ(event(timeout_event("e1", "r3", "t1", 1)).result, EventResult::kRepeated);
  const Counters before = store->counters();
  open(pools());
  EXPECT_EQ(store->counters(), before);
  EXPECT_EQ(store->holdings_total(), 1u);
  EXPECT_EQ(acquire("local", "r2").slot, 1u);  // still held, same slot
  EXPECT_EQ(acquire("local", "r4").slot, 0u);
  EXPECT_EQ(event(timeout_event("e1", "r3", "t1", 1)).result, EventResult::kRepeated);
}

TEST_P(PoolStoreTest, ConfigurationChangesKeepOldHoldings) {
  for (const char* r : {"a", "b", "c"})
    ASSERT_EQ(acquire("local", r).status, AcquireStatus::kAcquired);
  ASSERT_EQ(acquire("docker", "d").status, AcquireStatus::kAcquired);
  // local shrinks to 1 slot, docker is gone, kube is new.
  open({{"local", protocol::PoolType::kLocalProcess, 1},
        {"kube", protocol::PoolType::kKubernetes, 2}});
  const auto orphans = store->orphaned_holdings();
  ASSERT_EQ(orphans.size(), 3u);
  EXPECT_EQ(orphans[0].pool, "docker");
  EXPECT_EQ(orphans[1].runner_id, "b");
  EXPECT_EQ(orphans[2].slot, 2u);

  const auto views = store->pool_views();
  ASSERT_EQ(views.size(), 3u);
  EXPECT_EQ(views[0].name, "local");
  EXPECT_EQ(views[0].slots, 1u);
  EXPECT_EQ(views[0].in_use, 3u);
  EXPECT_EQ(views[1].name, "kube");
  EXPECT_EQ(views[2].name, "docker");
  EXPECT_FALSE(views[2].configured);
  EXPECT_EQ(views[2].type, "docker");
  EXPECT_EQ(views[2].in_use, 1u);

  EXPECT_EQ(acquire("local", "e").status, AcquireStatus::kPoolFull);
  EXPECT_EQ(acquire("docker", "e").status, AcquireStatus::kNotFound);
  EXPECT_EQ(acquire("local", "c").slot, 2u);  // its own holding, past the new size
  EXPECT_EQ(release("c"), 1u);
  EXPECT_EQ(release("d"), 1u);
  EXPECT_FALSE(store->pool_view("docker"));
  EXPECT_EQ(store->orphaned_holdings().size(), 1u);
  // Growing back makes the kept slot an ordinary one again.
  open(pools(3));
  EXPECT_EQ(store->used_slots("local"), 2u);
  EXPECT_EQ(acquire("local", "f").slot, 2u);
}

TEST_P(PoolStoreTest, HoldersAreListedInSlotOrder) {
  for (const char* r : {"a", "b", "c"})
    ASSERT_EQ(acquire("local", r).status, AcquireStatus::kAcquired);
  ASSERT_EQ(release("a"), 1u);
  ASSERT_EQ(acquire("local", "d", "t5", 4).slot, 0u);
  std::vector<std::string> seen;
  store->for_each_holder("local", [&](const Holding& h) {
    seen.push_back(h.runner_id + "@" + std::to_string(h.slot));
    EXPECT_EQ(h.since_ms, clock.wall_ms());
    return true;
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"d@0", "b@1", "c@2"}));
  int calls = 0;
  store->for_each_holder("local", [&](const Holding&) { return ++calls < 2; });
  EXPECT_EQ(calls, 2);
}

TEST_P(PoolStoreTest, RolledBackWorkIsUndoneInTheMirrorByResync) {
  {
    store::Transaction t(store->db());
    ASSERT_EQ(store->acquire("local", "r1", "t1", 1).slot, 0u);
    EXPECT_EQ(store->used_slots("local"), 1u);
  }  // rolled back
  store->resync();
  EXPECT_EQ(store->used_slots("local"), 0u);
  EXPECT_EQ(store->counter(Counter::kAcquired), 0u);
  EXPECT_EQ(acquire("local", "r2").slot, 0u);
}

RMON_BOTH_ENGINES(PoolStoreTest);

TEST(PoolStoreOpen, ASecondStoreOnTheSameFileIsRefused) {
  rmon::testing::TempDir dir;
  const auto path = dir.path() / "pool-manager.db";
  FakeClock clock;
  PoolStore first(path, pools(), clock);
  try {
    PoolStore other(path, pools(), clock);
    FAIL() << "a second writer was let in";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("in use by another process"), std::string::npos)
        << e.what();
  }
}

TEST(PoolStoreOpen, ACorruptFileFailsWithAClearMessage) {
  rmon::testing::TempDir dir;
  const auto path = dir.path() / "pool-manager.db";
  std::ofstream(path) << "this is not a database, just some text\n";
  FakeClock clock;
  try {
    PoolStore store(path, pools(), clock);
    FAIL() << "a text file opened as a database";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("not a database"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
}

TEST(PoolSlotBitmap, FindsTheLowestFreeSlotAcrossWords) {
  SlotBitmap b(130);
  for (uint32_t i = 0; i < 130; ++i) {
    ASSERT_EQ(b.lowest_free(), i);
    b.set(i);
  }
  EXPECT_FALSE(b.lowest_free());
  EXPECT_EQ(b.used(), 130u);
  b.clear(64);
  b.clear(129);
  EXPECT_EQ(b.lowest_free(), 64u);
  b.set(64);
  EXPECT_EQ(b.lowest_free(), 129u);
  b.set(500);  // past the size: ignored
  b.clear(129);
  b.clear(129);
  EXPECT_EQ(b.used(), 129u);
}

}  // namespace
}  // namespace rmon::pool
