// pool-manager replicas on one PostgreSQL database: two stores on two
// connections, as two replicas are. A slot another replica is taking (its
// batch not yet committed) is waited for, and the acquire then takes the
// next free one; one runner acquiring through both gets one slot; a pool
// filled through both is full for both; a loss released by both is released
// once; counters and counts are summed across replicas; reconciliation runs
// on one replica at a time, and moves when that one's connection ends.

#include <gtest/gtest.h>

#include <chrono>
#include <future>

#include "../support/batch_call.hpp"
#include "../support/postgres.hpp"
#include "pool_api.hpp"
#include "pool_store.hpp"
#include "pool_test_support.hpp"
#include "rmon/fake_clock.hpp"
#include "rmon/store/postgres.hpp"

namespace rmon::pool {
namespace {

using namespace std::chrono_literals;
using rmon::testing::Postgres;
using testing::timeout_event;

std::vector<PoolSpec> pools() { return {{"local", protocol::PoolType::kLocalProcess, 3}}; }

// One replica: its own connection and store over the shared database.
struct Replica {
  Replica(const std::string& url, const Clock& clock)
      : db(url), store(make_postgres_rows(db), pools(), clock, options()) {}
  static StoreOptions options() {
    StoreOptions o;
    o.first_heartbeat_grace = Millis(1000);
    return o;
  }
  store::PgDb db;
  PoolStore store;
};

class PoolReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = Postgres::shared().fresh_database();
    a_ = std::make_unique<Replica>(url_, clock_);
    b_ = std::make_unique<Replica>(url_, clock_);
  }
  // Each call in its own transaction, as a batch of one.
  static AcquireResult acquire(Replica& r, const std::string& runner, uint64_t attempt = 1) {
    store::Transaction t(r.db);
    AcquireResult res = r.store.acquire("local", runner, "task-" + runner, attempt);
    t.commit();
    return res;
  }

  FakeClock clock_;
  std::string url_;
  std::unique_ptr<Replica> a_, b_;
};

TEST_F(PoolReplicasTest, ASlotBeingTakenByTheOtherReplicaIsWaitedForThenTheNextIsTaken) {
  store::Transaction ta(a_->db);
  ASSERT_EQ(a_->store.acquire("local", "r-a", "t-a", 1).slot, 0u);
  // B sees slot 0 free (A has not committed), so its insert waits for A.
  auto fb = std::async(std::launch::async, [&] { return acquire(*b_, "r-b"); });
  EXPECT_EQ(fb.wait_for(300ms), std::future_status::timeout) << "B did not wait for A's slot";
  ta.commit();
  const AcquireResult rb = fb.get();
  EXPECT_EQ(rb.status, AcquireStatus::kAcquired);
  EXPECT_EQ(rb.slot, 1u);
  EXPECT_EQ(acquire(*a_, "r-c").slot, 2u);
  EXPECT_EQ(acquire(*b_, "r-d").status, AcquireStatus::kPoolFull);
  EXPECT_EQ(acquire(*a_, "r-d").status, AcquireStatus::kPoolFull);
}

TEST_F(PoolReplicasTest, OneRunnerAcquiringThroughBothReplicasGetsOneSlot) {
  store::Transaction ta(a_->db);
  ASSERT_EQ(a_->store.acquire("local", "r-1", "task-r-1", 1).status, AcquireStatus::kAcquired);
  auto same = std::async(std::launch::async, [&] { return acquire(*b_, "r-1"); });
  // B's insert waits for A's (slot 0 and this runner are both A's, not yet
  // committed); once A commits, B finds the runner's holding and answers from it.
  EXPECT_EQ(same.wait_for(300ms), std::future_status::timeout) << "B did not wait for A";
  ta.commit();
  // The same (task, attempt): the slot A gave it, not a second one.
  const AcquireResult rb = same.get();
  EXPECT_EQ(rb.status, AcquireStatus::kAlreadyHeld);
  EXPECT_EQ(rb.slot, 0u);
  // Another attempt through B: a conflict, naming A's holding.
  const AcquireResult other = acquire(*b_, "r-1", 2);
  EXPECT_EQ(other.status, AcquireStatus::kConflict);
  EXPECT_NE(other.detail.find("slot 0"), std::string::npos) << other.detail;
  std::size_t holdings = 0;
  b_->store.for_each_holder("local", [&](const Holding&) { return ++holdings, true; });
  EXPECT_EQ(holdings, 1u);
}

TEST_F(PoolReplicasTest, ALossReleasedByBothReplicasIsReleasedOnceAndCountersAreSummed) {
  ASSERT_EQ(acquire(*a_, "r-1").slot, 0u);
  ASSERT_EQ(acquire(*b_, "r-2").slot, 1u);
  // The monitor pair's two events for the same loss, one to each replica.
  auto apply = [](Replica& r, const char* id) {
    store::Transaction t(r.db);
    EventOutcome out = r.store.apply_timeout(timeout_event(id, "r-1", "task-r-1", 1));
    t.commit();
    return out;
  };
  EXPECT_EQ(apply(*a_, "m1-e1").released.size(), 1u);
  const EventOutcome second = apply(*b_, "m2-e1");
  EXPECT_EQ(second.result, EventResult::kNoHolding);
  EXPECT_TRUE(second.released.empty());
  // The same event id redelivered to the other replica: a repeat.
  EXPECT_EQ(apply(*b_, "m1-e1").result, EventResult::kRepeated);
  // A stale acquire of the timed-out attempt is refused through either.
  EXPECT_EQ(acquire(*b_, "r-1").status, AcquireStatus::kStaleAttempt);

  b_->store.refresh();
  EXPECT_EQ(b_->store.counter(Counter::kAcquired), 2u);
  EXPECT_EQ(b_->store.counter(Counter::kEventsApplied), 1u);
  EXPECT_EQ(b_->store.counter(Counter::kEventsIgnored), 2u);
  EXPECT_EQ(b_->store.counter(Counter::kReleasedByTimeout), 1u);
  EXPECT_EQ(b_->store.used_slots("local"), 1u);
  EXPECT_EQ(b_->store.holdings_total(), 1u);
  // A restarted replica reads the same sums.
  Replica c(url_, clock_);
  EXPECT_EQ(c.store.counters(), b_->store.counters());
}

// stats through one replica count the slots taken through the other a
// second ago (in_use is otherwise re-read every 30 s).
TEST_F(PoolReplicasTest, StatsOnOneReplicaIncludeTheOthersSlotsOfASecondAgo) {
  ServiceStats service;
  PoolApi api_b(b_->store, service, clock_);
  BatchPolicy policy_b(api_b, service, clock_);
  auto in_use = [&] {
    return rmon::testing::reply_u64(rmon::testing::call_op(policy_b, "stats"), "in_use");
  };
  EXPECT_EQ(in_use(), 0u);
  ASSERT_EQ(acquire(*a_, "r-1").slot, 0u);
  ASSERT_EQ(acquire(*a_, "r-2").slot, 1u);
  EXPECT_EQ(in_use(), 0u) << "read less than a second ago";
  clock_.advance_ms(1000);
  EXPECT_EQ(in_use(), 2u);
}

TEST_F(PoolReplicasTest, OneReplicaReconcilesAtATimeAndAnotherTakesOverWhenItsConnectionEnds) {
  ASSERT_EQ(acquire(*a_, "r-1").slot, 0u);
  clock_.advance(5000ms);  // past the first-heartbeat grace
  EXPECT_EQ(a_->store.reconcile_candidates({}, 10).keys.size(), 1u);
  const CandidatePage none = b_->store.reconcile_candidates({}, 10);
  EXPECT_TRUE(none.keys.empty());
  EXPECT_TRUE(none.last);
  a_.reset();  // its session, and with it the lock, ends
  EXPECT_TRUE(rmon::testing::wait_until(
      [&] { return b_->store.reconcile_candidates({}, 10).keys.size() == 1; }, 5000ms));
}

}  // namespace
}  // namespace rmon::pool
