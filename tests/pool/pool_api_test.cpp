// PoolApi through the skeleton's batch policy, without sockets, on both
// engines: replies, the status reply's size bound, a commit that fails, and
// verdicts.

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <memory>

#include "../support/temp_dir.hpp"
#include "pool_api.hpp"
#include "pool_engine.hpp"
#include "pool_test_support.hpp"
#include "rmon/fake_clock.hpp"
#include "rmon/service/batch_policy.hpp"
#include "rmon/service/metrics_endpoint.hpp"

namespace rmon::pool {
namespace {

using protocol::MapBuilder;
using rmon::testing::Engine;
using testing::acquire_fields;
using testing::read_pools;
using testing::read_reply;
using testing::reply_u64;
using testing::timeout_event;

constexpr Millis kGrace{30'000};

class PoolApiTest : public ::testing::TestWithParam<Engine> {
 protected:
  void SetUp() override { open({}); }

  void open(ApiOptions options) {
    policy.reset();
    api.reset();
    endpoint = std::make_unique<MetricsEndpoint>();
    store.reset();
    StoreOptions o;
    o.sync = store::SyncMode::kNormal;
    o.first_heartbeat_grace = kGrace;
    store = testing::open_pool_store(GetParam(), dir.path(), url, pg,
                                     {{"local", protocol::PoolType::kLocalProcess, 200}}, clock, o);
    api = std::make_unique<PoolApi>(*store, service, clock, options);
    api->add_metrics(*endpoint);
    policy = std::make_unique<BatchPolicy>(*api, service, clock);
  }

  // One batch: the requests (encoded maps) and events; returns the replies.
  std::vector<std::string> batch(const std::vector<std::string>& bodies,
                                 std::vector<ConsumedEvent>* events = nullptr,
                                 std::vector<Judged> verdicts = {}) {
    Batch b;
    b.requests.resize(bodies.size());
    for (std::size_t i = 0; i < bodies.size(); ++i) {
      b.requests[i].body = zmq::message_t(bodies[i].data(), bodies[i].size());
    }
    if (events) b.events = *events;
    b.verdicts = std::move(verdicts);
    policy->apply(b);
    if (events) *events = b.events;
    std::vector<std::string> replies;
    for (const Request& r : b.requests) replies.push_back(r.reply);
    return replies;
  }
  uint64_t requests(ApiOp op, std::string_view outcome) const {
    return service.requests[static_cast<std::size_t>(op)][outcome_index(outcome)].load();
  }
  static std::string request(const std::string& op, const MapBuilder& fields = {}) {
    return MapBuilder().u64("v", 1).str("op", op).extend(fields).finish();
  }
  // Every COMMIT fails while `on` (SQLite: a commit hook that refuses;
  // PostgreSQL: a deferred trigger that raises at commit).
  void refuse_commits(bool on) {
    if (GetParam() == Engine::kPostgres) {
      if (on) {
        pg->exec(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'refused at commit'; END $$");
        pg->exec(
            "CREATE CONSTRAINT TRIGGER refuse AFTER INSERT OR UPDATE ON pool_counters "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse()");
      } else {
        pg->exec("DROP TRIGGER refuse ON pool_counters");
      }
      return;
    }
    store::Db* db = store->db().sqlite();
    ASSERT_NE(db, nullptr);
    if (on) {
      sqlite3_commit_hook(
          db->raw(), [](void*) { return 1; }, nullptr);
    } else {
      sqlite3_commit_hook(db->raw(), nullptr, nullptr);
    }
  }
  static std::string acquire(const std::string& runner, uint64_t attempt = 1) {
    return request("acquire", acquire_fields("local", runner, "task-" + runner, attempt));
  }

  rmon::testing::TempDir dir;
  FakeClock clock;
  std::string url;  // PostgreSQL: this test's database
  std::unique_ptr<store::PgDb> pg;
  ServiceStats service;
  std::unique_ptr<MetricsEndpoint> endpoint;
  std::unique_ptr<PoolStore> store;
  std::unique_ptr<PoolApi> api;
  std::unique_ptr<BatchPolicy> policy;
};

TEST_P(PoolApiTest, EveryOpAnswersWithTheContractsKeys) {
  const auto replies =
      batch({acquire("r1"), acquire("r2"), acquire("r1"),
             request("acquire", acquire_fields("gpu", "r3", "t", 1)),
             request("release", MapBuilder().str("runner_id", "r2")),
             request("release", MapBuilder().str("runner_id", "r2").str("pool", "local")),
             request("status"), request("stats"), request("ping"), request("launch")});
  EXPECT_EQ(read_reply(replies[0]).slot, 0u);
  EXPECT_EQ(read_reply(replies[1]).slot, 1u);
  EXPECT_EQ(read_reply(replies[2]).slot, 0u);
  EXPECT_EQ(read_reply(replies[3]).error, "not_found");
  EXPECT_EQ(read_reply(replies[4]).released, true);
  EXPECT_EQ(read_reply(replies[5]).released, false);
  const auto pools = read_pools(replies[6]);
  ASSERT_EQ(pools.size(), 1u) << read_reply(replies[6]).json;
  EXPECT_EQ(pools[0].type, "local-process");
  EXPECT_EQ(pools[0].slots, 200u);
  EXPECT_EQ(pools[0].in_use, 1u);
  ASSERT_EQ(pools[0].holders.size(), 1u);
  EXPECT_EQ(pools[0].holders[0].runner_id, "r1");
  EXPECT_EQ(read_reply(replies[6]).truncated, false);
  EXPECT_EQ(reply_u64(replies[7], "acquired"), 2u);
  EXPECT_EQ(reply_u64(replies[7], "released"), 1u);
  EXPECT_EQ(reply_u64(replies[7], "in_use"), 1u);
  EXPECT_EQ(read_reply(replies[8]).error, "");
  EXPECT_EQ(reply_u64(replies[8], "version"), 1u);
  EXPECT_EQ(read_reply(replies[9]).error, "unknown_op");
  EXPECT_EQ(requests(ApiOp::kAcquire, "ok"), 3u);
  EXPECT_EQ(requests(ApiOp::kAcquire, "not_found"), 1u);
  EXPECT_EQ(service.requests[ServiceStats::kMaxOps][outcome_index("unknown_op")].load(), 1u);
  EXPECT_NE(endpoint->render().find("pm_slots{pool=\"local\",state=\"in_use\"} 1"),
            std::string::npos);
}

TEST_P(PoolApiTest, StatusStopsAddingHoldersAtTheReplyBudget) {
  ApiOptions small;
  small.max_reply_bytes = 4'000;
  open(small);
  std::vector<std::string> bodies;
  for (int i = 0; i < 200; ++i) bodies.push_back(acquire("runner-" + std::to_string(i)));
  batch(bodies);
  const std::string reply = batch({request("status")})[0];
  EXPECT_LE(reply.size(), small.max_reply_bytes);
  EXPECT_EQ(read_reply(reply).truncated, true);
  const auto pools = read_pools(reply);
  ASSERT_EQ(pools.size(), 1u);
  EXPECT_EQ(pools[0].in_use, 200u);
  EXPECT_GT(pools[0].holders.size(), 10u);
  EXPECT_LT(pools[0].holders.size(), 200u);
}

TEST_P(PoolApiTest, AFailedCommitAnswersUnavailableAndAcknowledgesNothing) {
  ASSERT_EQ(read_reply(batch({acquire("r0")})[0]).slot, 0u);
  refuse_commits(true);
  std::vector<ConsumedEvent> events{{timeout_event("e1", "r0", "task-r0", 1), false}};
  const auto replies = batch({acquire("r1"), request("stats")}, &events);
  for (const std::string& r : replies) EXPECT_EQ(read_reply(r).error, "unavailable") << r;
  EXPECT_FALSE(events[0].ack);
  EXPECT_EQ(service.commit_failures.load(), 1u);
  EXPECT_EQ(requests(ApiOp::kAcquire, "unavailable"), 1u);

  refuse_commits(false);
  // Nothing of the failed batch stuck, in the database or in memory.
  events[0].ack = false;
  const auto again = batch({acquire("r1"), request("stats")}, &events);
  EXPECT_TRUE(events[0].ack);
  EXPECT_EQ(read_reply(again[0]).slot, 0u);  // r0's slot, freed by the event
  EXPECT_EQ(reply_u64(again[1], "acquired"), 2u);
  EXPECT_EQ(reply_u64(again[1], "events_applied"), 1u);
}

TEST_P(PoolApiTest, EventsAreAcknowledgedOnceCommittedWhateverTheirEffect) {
  batch({acquire("r1")});
  std::vector<ConsumedEvent> events{{timeout_event("e1", "r1", "task-r1", 1), false},
                                    {timeout_event("e1", "r1", "task-r1", 1), false},
                                    {timeout_event("e2", "nobody", "t", 1), false}};
  batch({}, &events);
  for (const auto& e : events) EXPECT_TRUE(e.ack);
  EXPECT_EQ(api->metrics().counter(Counter::kEventsApplied), 1u);
  EXPECT_EQ(api->metrics().counter(Counter::kEventsIgnored), 2u);
  EXPECT_EQ(store->holdings_total(), 0u);
}

TEST_P(PoolApiTest, CandidatesAfterTheGraceAndTakingBackVerdictsFreeTheirSlot) {
  batch({acquire("r1"), acquire("r2"), acquire("r3"), acquire("r4")});
  EXPECT_TRUE(api->reconcile_candidates({}, 10).keys.empty());
  clock.advance(kGrace);
  EXPECT_EQ(api->reconcile_candidates({}, 10).keys.size(), 4u);

  batch({}, nullptr,
        {{{"r1", "task-r1", 1}, Verdict::kAlive, ""},
         {{"r2", "task-r2", 1}, Verdict::kGone, "lost"},
         {{"r3", "task-r3", 1}, Verdict::kUndecided, ""},
         {{"r4", "task-r4", 2}, Verdict::kEnded, "another attempt: fenced"}});
  EXPECT_EQ(store->holdings_total(), 3u);
  EXPECT_EQ(api->metrics().counter(Counter::kReconciled), 1u);
  EXPECT_EQ(service.verdicts[static_cast<std::size_t>(Verdict::kUndecided)].load(), 1u);
  EXPECT_NE(endpoint->render().find("pm_releases_total{cause=\"reconciliation\"} 1"),
            std::string::npos)
      << endpoint->render();
}

RMON_BOTH_ENGINES(PoolApiTest);

}  // namespace
}  // namespace rmon::pool
