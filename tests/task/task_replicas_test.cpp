// task-queue replicas on one PostgreSQL database: two stores on two
// connections (as two replicas are) lease different tasks without waiting
// (SKIP LOCKED), a transition waits for the other's row lock and then sees
// its outcome (the fence holds across replicas), an idempotency key raced by
// two replicas names one task, reconciliation runs on one replica at a time,
// and migrations apply once. Then PostgreSQL going away under a running
// service: requests are answered `unavailable` quickly, events stay
// unacknowledged, and once it is back the service reconnects and nothing
// answered was lost; /readyz says so meanwhile.

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "../support/api_client.hpp"
#include "../support/batch_call.hpp"
#include "../support/heartbeats.hpp"
#include "../support/http_get.hpp"
#include "../support/postgres.hpp"
#include "../support/stack.hpp"
#include "../support/wait.hpp"
#include "rmon/protocol/codec.hpp"
#include "service.hpp"
#include "task_api.hpp"
#include "task_service.hpp"
#include "task_test_support.hpp"

namespace rmon::tq {
namespace {

using namespace std::chrono_literals;
using protocol::MapBuilder;
using protocol::MapReader;
using rmon::testing::ApiClient;
using rmon::testing::Postgres;
using rmon::testing::wait_until;

// One replica: its own connection and store over the shared database.
struct Replica {
  explicit Replica(const std::string& url, const Clock& clock)
      : db(url), store(make_postgres_rows(db), clock, test_options()) {}
  store::PgDb db;
  TaskStore store;
};

class TaskReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = Postgres::shared().fresh_database();
    a_ = std::make_unique<Replica>(url_, clock_);
    b_ = std::make_unique<Replica>(url_, clock_);
  }
  std::string submit(TaskStore& s, std::optional<std::string> key = std::nullopt) {
    SubmitRequest r;
    r.payload = protocol::MapBuilder().str("job", "x").finish();
    r.idempotency_key = std::move(key);
    return s.submit(r).task_id;
  }

  FakeClock clock_;
  std::string url_;
  std::unique_ptr<Replica> a_, b_;
};

TEST_F(TaskReplicasTest, TwoReplicasLeasingAtOnceTakeDifferentTasksWithoutWaiting) {
  const std::string t1 = submit(a_->store);
  const std::string t2 = submit(a_->store);
  store::Transaction ta(a_->db);
  auto la = a_->store.lease("r-a", std::nullopt);
  ASSERT_TRUE(la);
  EXPECT_EQ(la->task_id, t1);
  // A holds t1's row: B skips it rather than waiting for A's commit.
  store::Transaction tb(b_->db);
  const auto start = std::chrono::steady_clock::now();
  auto lb = b_->store.lease("r-b", std::nullopt);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  ASSERT_TRUE(lb);
  EXPECT_EQ(lb->task_id, t2);
  EXPECT_FALSE(b_->store.lease("r-c", std::nullopt)) << "both rows are taken";
  tb.commit();
  ta.commit();
  EXPECT_EQ(a_->store.get(t1)->runner_id, "r-a");
  EXPECT_EQ(a_->store.get(t2)->runner_id, "r-b");
}

TEST_F(TaskReplicasTest, ATransitionWaitsForTheOtherReplicasRowLockThenSeesItsOutcome) {
  const std::string id = submit(a_->store);
  const uint64_t attempt = a_->store.lease("r-1", std::nullopt)->attempt;
  store::Transaction ta(a_->db);
  ASSERT_EQ(a_->store.complete(id, attempt, std::nullopt), TaskError::kNone);
  // B completes the same attempt while A's commit is pending: it waits for
  // A's row lock, then finds the task completed. Exactly one completion.
  auto other = std::async(std::launch::async, [&] {
    store::Transaction tb(b_->db);
    const TaskError e = b_->store.complete(id, attempt, std::nullopt);
    tb.commit();
    return e;
  });
  EXPECT_EQ(other.wait_for(200ms), std::future_status::timeout) << "B did not wait for A's lock";
  ta.commit();
  EXPECT_EQ(other.get(), TaskError::kConflict);
  EXPECT_EQ(b_->store.get(id)->state, TaskState::kCompleted);
}

TEST_F(TaskReplicasTest, ATimeoutEventAppliedByBothReplicasRequeuesOnce) {
  const std::string id = submit(a_->store);
  Task t = *a_->store.lease("r-1", std::nullopt);
  protocol::TimeoutEvent ev;
  ev.event_id = "m1-1";
  ev.runner.runner_id = "r-1";
  ev.runner.task_id = t.task_id;
  ev.runner.attempt = t.attempt;
  ev.runner.pool = "p";
  protocol::TimeoutEvent copy = ev;
  copy.event_id = "m2-1";  // the pair's other monitor
  store::Transaction ta(a_->db);
  EXPECT_EQ(a_->store.apply_timeout(ev), EventOutcome::kRequeued);
  auto other = std::async(std::launch::async, [&] {
    store::Transaction tb(b_->db);
    const EventOutcome o = b_->store.apply_timeout(copy);
    tb.commit();
    return o;
  });
  ta.commit();
  EXPECT_EQ(other.get(), EventOutcome::kIgnoredStale);
  a_->store.reload();
  EXPECT_EQ(a_->store.counters().reassigned, 1u);
  EXPECT_EQ(a_->store.get(id)->state, TaskState::kQueued);
}

TEST_F(TaskReplicasTest, AnIdempotencyKeyRacedByTwoReplicasNamesOneTask) {
  store::Transaction ta(a_->db);
  const std::string first = submit(a_->store, "k-1");
  auto other = std::async(std::launch::async, [&] {
    store::Transaction tb(b_->db);
    const std::string id = submit(b_->store, "k-1");
    tb.commit();
    return id;
  });
  EXPECT_EQ(other.wait_for(200ms), std::future_status::timeout) << "B did not wait for A's key";
  ta.commit();
  EXPECT_EQ(other.get(), first);
  b_->store.reload();
  EXPECT_EQ(b_->store.counts()[0], 1u);
}

TEST_F(TaskReplicasTest, ReconciliationRunsOnOneReplicaAtATime) {
  submit(a_->store);
  (void)a_->store.lease("r-1", std::nullopt);
  clock_.advance_ms(test_options().first_heartbeat_grace_ms + 1);
  const CandidatePage pa = a_->store.reconcile_candidates({}, 100);
  EXPECT_EQ(pa.keys.size(), 1u);
  const CandidatePage pb = b_->store.reconcile_candidates({}, 100);
  EXPECT_TRUE(pb.keys.empty()) << "A holds the reconciliation lock";
  EXPECT_TRUE(pb.last);
  a_.reset();  // A's connection ends: its lock is released
  EXPECT_TRUE(wait_until([&] { return b_->store.reconcile_candidates({}, 100).keys.size() == 1; }));
}

// A client waiting for the queue to drain asks whichever replica answers:
// stats include the other replica's changes of a second ago, not only this
// replica's own (its counts are otherwise re-read every 30 s).
TEST_F(TaskReplicasTest, StatsOnOneReplicaIncludeTheOthersChangesOfASecondAgo) {
  ServiceStats service;
  TaskApi api_b(b_->store, service, clock_);
  BatchPolicy policy_b(api_b, service, clock_);
  auto stat = [&](const char* key) {
    return rmon::testing::reply_u64(rmon::testing::call_op(policy_b, "stats"), key);
  };
  EXPECT_EQ(stat("queued"), 0u);
  submit(a_->store);
  submit(a_->store);
  {
    store::Transaction t(a_->db);
    ASSERT_TRUE(a_->store.lease("r-1", std::nullopt));
    t.commit();
  }
  EXPECT_EQ(stat("queued"), 0u) << "read less than a second ago";
  clock_.advance_ms(1000);
  EXPECT_EQ(stat("queued"), 1u);
  EXPECT_EQ(stat("leased"), 1u);
}

TEST_F(TaskReplicasTest, MigrationsApplyOnceAndANewerSchemaIsRefused) {
  store::PgDb db(url_);
  const pqxx::result r =
      db.exec("SELECT count(*) FROM schema_migrations WHERE component = 'task-queue'");
  EXPECT_EQ(r[0][0].as<int>(), 1) << "two replicas opened it; version 1 applied once";
  db.exec("INSERT INTO schema_migrations(component, version) VALUES('task-queue', 99)");
  try {
    Replica newer(url_, clock_);
    FAIL() << "a schema from newer code was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("version 99"), std::string::npos) << e.what();
  }
}

TEST(PgDbTest, ABadUrlOrAMissingServerIsAClearErrorAtOnce) {
  const auto start = std::chrono::steady_clock::now();
  try {
    store::PgDb db("postgresql:///none?host=/nonexistent-folder&user=postgres");
    FAIL() << "connected to nothing";
  } catch (const store::PgUnavailable& e) {
    EXPECT_NE(std::string(e.what()).find("unreachable"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(store::redact_url("postgresql://rmon:s3cret@db:5432/rmon"),
            "postgresql://rmon:***@db:5432/rmon");
  EXPECT_EQ(store::redact_url("postgresql://db/rmon"), "postgresql://db/rmon");
}

// A task-queue on its own PostgreSQL server, which is stopped and started
// under it; each commit flushed (the default), or with the flush pipelined
// (--pg-pipelined-commits: store::PgSyncer).
class TaskStoreOutageTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    monitor_ = std::make_unique<monitor::MonitorService>(rmon::testing::loopback_monitor_config(),
                                                         SystemClock::instance());
    monitor_->start();
    auto c = rmon::testing::loopback_consumer_config<TaskQueueConfig>(dir_.str());
    rmon::testing::connect_to_monitor(c, monitor_->endpoints(), 0);
    c.store = pg_.url();
    c.pg_pipelined_commits = GetParam();
    c.metrics_address = "127.0.0.1:0";
    c.backoff_base_ms = 1;
    c.backoff_cap_ms = 1;
    tq_ = std::make_unique<TaskQueueService>(std::move(c), SystemClock::instance());
    tq_->start();
    client_ = std::make_unique<ApiClient>(ctx_, tq_->endpoints().api);
  }
  std::string call(const std::string& op, const MapBuilder& fields = {}) {
    return client_->call(op, fields);
  }
  static std::string error_of(const std::string& reply) {
    auto m = MapReader::parse(reply);
    std::string e;
    if (m) (void)m->str("error", e);
    return e;
  }

  Postgres pg_;  // its own: stopped mid-test
  rmon::testing::TempDir dir_;
  zmq::context_t ctx_;
  std::unique_ptr<monitor::MonitorService> monitor_;
  std::unique_ptr<TaskQueueService> tq_;
  std::unique_ptr<ApiClient> client_;
};

TEST_P(TaskStoreOutageTest, RequestsGetUnavailableQuicklyAndTheServiceReconnectsLosingNothing) {
  const std::string reply =
      call("submit", MapBuilder().raw("payload", MapBuilder().str("k", "v").finish()));
  std::string id;
  ASSERT_TRUE(MapReader::parse(reply)->str("task_id", id).ok()) << protocol::to_json(reply);

  pg_.stop();
  // Answered, and quickly: the first request finds the connection cut, the
  // next ones the reconnect backoff.
  for (int i = 0; i < 5; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const std::string r = call("get", MapBuilder().str("task_id", id));
    EXPECT_EQ(error_of(r), "unavailable") << protocol::to_json(r);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  }
  EXPECT_GT(tq_->service_stats().storage_errors.load(), 0u);

  pg_.start();
  // Back: the service reconnects by itself; the task answered before the
  // outage is still there.
  std::string state, last;
  ASSERT_TRUE(wait_until([&] {
    last = call("get", MapBuilder().str("task_id", id));
    auto m = MapReader::parse(last);
    std::optional<MapReader> task;
    return m && m->opt_map("task", task).ok() && task && task->str("state", state).ok();
  })) << protocol::to_json(last);
  EXPECT_EQ(state, "queued");
  const std::string lease = call("lease", MapBuilder().str("runner_id", "r-1"));
  EXPECT_EQ(error_of(lease), "") << protocol::to_json(lease);
}

TEST_P(TaskStoreOutageTest, ReadyzFollowsTheStoreAndTheMonitorsHealthzTheProcess) {
  using rmon::testing::http_request;
  const int port = tq_->endpoints().metrics_port;
  rmon::testing::HttpReply r;
  auto readyz_is = [&](int status, const std::string& says) {
    return wait_until([&] {
      r = http_request(port, "/readyz");
      return r.status == status && r.body.find(says) != std::string::npos;
    });
  };
  EXPECT_TRUE(readyz_is(200, "store reachable; monitors answering 1 of 1")) << r.body;
  EXPECT_EQ(http_request(port, "/healthz").status, 200);
  EXPECT_NE(http_request(port, "/metrics").body.find("rmon_"), std::string::npos);
  EXPECT_EQ(http_request(port, "/nothing").status, 404);

  pg_.stop();
  EXPECT_TRUE(readyz_is(503, "store unreachable")) << r.body;
  EXPECT_EQ(http_request(port, "/healthz").status, 200) << "alive, only not ready";
  pg_.start();
  EXPECT_TRUE(readyz_is(200, "store reachable")) << r.body;

  monitor_->stop();  // its sockets close: pings go unanswered
  EXPECT_TRUE(readyz_is(503, "monitors answering 0 of 1")) << r.body;
}

INSTANTIATE_TEST_SUITE_P(CommitFlush, TaskStoreOutageTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? "Pipelined" : "EachFlushed";
                         });

}  // namespace
}  // namespace rmon::tq
