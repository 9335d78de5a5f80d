// TaskApi through the skeleton's batch policy: requests decoded from bytes,
// replies encoded; every kind of bad request gets bad_request (or
// unknown_op) with a detail and changes nothing.

#include "task_api.hpp"
#include "../support/batch_call.hpp"
#include "rmon/protocol/msgmap.hpp"
#include "rmon/service/batch_policy.hpp"
#include "task_test_support.hpp"

namespace rmon::tq {
namespace {

using protocol::MapBuilder;
using protocol::MapReader;

class TaskApiTest : public TaskStoreTest {
 protected:
  void SetUp() override {
    TaskStoreTest::SetUp();
    api_ = std::make_unique<TaskApi>(*store_, service_, clock_);
    policy_ = std::make_unique<BatchPolicy>(*api_, service_, clock_);
  }
  // One request frame, applied as a batch of its own.
  std::string apply_frame(const std::string& frame) {
    return testing::apply_request(*policy_, frame);
  }
  std::string call(const std::string& op, const MapBuilder& fields = {}) {
    return testing::call_op(*policy_, op, fields);
  }
  // The reply's error code, "" when ok.
  static std::string error_of(const std::string& reply) {
    auto m = MapReader::parse(reply, protocol::kMaxReplyFrame);
    EXPECT_TRUE(m.ok());
    bool ok = false;
    EXPECT_TRUE(m->boolean("ok", ok).ok());
    if (ok) return "";
    std::string e, detail;
    EXPECT_TRUE(m->str("error", e).ok());
    EXPECT_TRUE(m->str("detail", detail, 4096).ok());
    EXPECT_FALSE(detail.empty());
    return e;
  }
  std::string submit_id(const MapBuilder& fields) {
    const std::string reply = call("submit", fields);
    auto m = MapReader::parse(reply);
    std::string id;
    EXPECT_TRUE(m->str("task_id", id).ok());
    return id;
  }

  ServiceStats service_;
  std::unique_ptr<TaskApi> api_;
  std::unique_ptr<BatchPolicy> policy_;
};

TEST_P(TaskApiTest, SubmitLeaseCompleteRoundTrip) {
  const std::string payload = MapBuilder().str("cmd", "echo").finish();
  const std::string id = submit_id(MapBuilder().raw("payload", payload).i64("priority", 3));
  ASSERT_FALSE(id.empty());
  const std::string lease_reply = call("lease", MapBuilder().str("runner_id", "r-1"));
  auto lease = MapReader::parse(lease_reply);
  std::optional<MapReader> task;
  ASSERT_TRUE(lease->opt_map("task", task).ok());
  ASSERT_TRUE(task.has_value());
  std::string got_id, state;
  uint64_t attempt = 0;
  int64_t priority = 0;
  std::optional<std::string> got_payload;
  EXPECT_TRUE(task->str("task_id", got_id).ok());
  EXPECT_TRUE(task->str("state", state).ok());
  EXPECT_TRUE(task->u64("attempt", attempt).ok());
  EXPECT_TRUE(task->i64("priority", priority).ok());
  EXPECT_TRUE(task->opt_raw("payload", got_payload, 1 << 20).ok());
  EXPECT_EQ(got_id, id);
  EXPECT_EQ(state, "leased");
  EXPECT_EQ(attempt, 1u);
  EXPECT_EQ(priority, 3);
  EXPECT_EQ(got_payload, payload);
  EXPECT_EQ(error_of(call("complete", MapBuilder().str("task_id", id).u64("attempt", 2))),
            "stale_attempt");
  EXPECT_EQ(error_of(call("complete", MapBuilder().str("task_id", id).u64("attempt", 1))), "");
  EXPECT_EQ(error_of(call("complete", MapBuilder().str("task_id", id).u64("attempt", 1))),
            "conflict");
  EXPECT_EQ(error_of(call("get", MapBuilder().str("task_id", "t-x-1"))), "not_found");
}

TEST_P(TaskApiTest, LeaseWithNothingAvailableAnswersNilTask) {
  const std::string reply = call("lease", MapBuilder().str("runner_id", "r-1"));
  EXPECT_EQ(error_of(reply), "");
  auto m = MapReader::parse(reply);
  std::optional<MapReader> task;
  EXPECT_TRUE(m->opt_map("task", task).ok());
  EXPECT_FALSE(task.has_value());
}

TEST_P(TaskApiTest, FailAndCancelAnswerTheStateAfter) {
  const std::string id = submit_id(MapBuilder().raw("payload", MapBuilder().finish()));
  (void)call("lease", MapBuilder().str("runner_id", "r-1"));
  const std::string fail_reply =
      call("fail", MapBuilder().str("task_id", id).u64("attempt", 1).boolean("retry", false));
  auto fail = MapReader::parse(fail_reply);
  std::string state;
  EXPECT_TRUE(fail->str("state", state).ok());
  EXPECT_EQ(state, "dead");
  EXPECT_EQ(error_of(call("cancel", MapBuilder().str("task_id", id))), "conflict");
}

TEST_P(TaskApiTest, EveryBadRequestIsRejectedWithADetailAndChangesNothing) {
  const std::string big(kMaxPayloadBytes + 1, 'x');
  const std::string payload = MapBuilder().finish();
  struct Case {
    std::string frame;
    std::string error;
  };
  auto req = [](const std::string& op, const MapBuilder& f) {
    MapBuilder m;
    m.u64("v", 1).str("op", op).extend(f);
    return m.finish();
  };
  const std::vector<Case> cases = {
      {"", "bad_request"},
      {"\xc1", "bad_request"},
      {"\x93\x01\x02\x03", "bad_request"},                                    // an array, not a map
      {MapBuilder().str("op", "stats").finish(), "bad_request"},              // no v
      {MapBuilder().u64("v", 2).str("op", "stats").finish(), "bad_request"},  // v 2
      {MapBuilder().u64("v", 1).finish(), "bad_request"},                     // no op
      {MapBuilder().u64("v", 1).u64("op", 3).finish(), "bad_request"},        // op not a str
      {req("launch", {}), "unknown_op"},
      {req("submit", {}), "bad_request"},  // no payload
      {req("submit", MapBuilder().raw("payload", payload).str("priority", "high")), "bad_request"},
      {req("submit", MapBuilder().raw("payload", payload).u64("max_attempts", 0)), "bad_request"},
      {req("submit", MapBuilder().raw("payload", payload).i64("delay_ms", -5)), "bad_request"},
      {req("submit", MapBuilder().str("payload", big)), "bad_request"},  // too large
      {req("submit", MapBuilder().raw("payload", payload).str("pool", "")), "bad_request"},
      {req("submit", MapBuilder().raw("payload", payload).str("pool", std::string(129, 'p'))),
       "bad_request"},
      {req("lease", {}), "bad_request"},
      {req("lease", MapBuilder().u64("runner_id", 7)), "bad_request"},
      {req("complete", MapBuilder().str("task_id", "t")), "bad_request"},
      {req("complete", MapBuilder().str("task_id", "t").i64("attempt", -1)), "bad_request"},
      {req("fail", MapBuilder().str("task_id", "t").u64("attempt", 1).str("retry", "no")),
       "bad_request"},
      {req("cancel", {}), "bad_request"},
      {req("get", MapBuilder().boolean("task_id", true)), "bad_request"},
      {req("list", MapBuilder().str("state", "sleeping")), "bad_request"},
      {req("list", MapBuilder().str("limit", "10")), "bad_request"},
  };
  const std::string id = submit_id(MapBuilder().raw("payload", payload));
  const auto before = store_->counts();
  const uint64_t bad_before = service_.rejected_requests();
  for (const Case& c : cases) {
    SCOPED_TRACE(protocol::to_json(c.frame));
    EXPECT_EQ(error_of(apply_frame(c.frame)), c.error);
  }
  EXPECT_EQ(store_->counts(), before);
  EXPECT_EQ(service_.rejected_requests() - bad_before, cases.size());
  EXPECT_EQ(store_->get(id)->state, TaskState::kQueued);
  EXPECT_EQ(store_->get(id)->attempt, 0u);
}

TEST_P(TaskApiTest, StatsCountTasksByStateAndEvents) {
  for (int i = 0; i < 3; ++i) (void)submit_id(MapBuilder().raw("payload", MapBuilder().finish()));
  (void)call("lease", MapBuilder().str("runner_id", "r-1"));
  const std::string reply = call("stats");
  auto m = MapReader::parse(reply);
  uint64_t queued = 0, leased = 0, reassigned = 1;
  EXPECT_TRUE(m->u64("queued", queued).ok());
  EXPECT_TRUE(m->u64("leased", leased).ok());
  EXPECT_TRUE(m->u64("reassigned", reassigned).ok());
  EXPECT_EQ(queued, 2u);
  EXPECT_EQ(leased, 1u);
  EXPECT_EQ(reassigned, 0u);
}

TEST_P(TaskApiTest, ABatchAppliesRequestsAndEventsInOneCommitAndAcksAfterIt) {
  const std::string id = submit_id(MapBuilder().raw("payload", MapBuilder().finish()));
  Task t = lease("r-1");
  const uint64_t commits = service_.commits.load();
  Batch b;
  b.requests.resize(1);
  MapBuilder m;
  m.u64("v", 1).str("op", "get").str("task_id", id);
  const std::string frame = m.finish();
  b.requests[0].body = zmq::message_t(frame.data(), frame.size());
  b.events.resize(1);
  b.events[0].event = event("e-1", t);
  policy_->apply(b);
  EXPECT_EQ(error_of(b.requests[0].reply), "");
  EXPECT_TRUE(b.events[0].ack);
  EXPECT_EQ(state_of(id), TaskState::kQueued);
  EXPECT_EQ(api_->stats().reassigned.load(), 1u);
  EXPECT_EQ(service_.commits.load(), commits + 1);
  EXPECT_EQ(service_.requests[static_cast<int>(ApiOp::kGet)][0].load(), 1u);
}

TEST_P(TaskApiTest, AStorageErrorInOneItemAnswersItUnavailableAndTheRestOfTheBatchCommits) {
  // A trigger refuses tasks of pool "boom": a storage error in that item
  // only. (PostgreSQL: the batch goes without savepoints first, then again
  // item by item once an item failed.)
  if (GetParam() == Engine::kPostgres) {
    pg_->exec(
        "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.pool = 'boom' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$");
    pg_->exec("CREATE TRIGGER boom BEFORE INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION boom()");
  } else {
    db_->exec(
        "CREATE TRIGGER boom BEFORE INSERT ON tasks WHEN NEW.pool = 'boom' "
        "BEGIN SELECT RAISE(ABORT, 'boom'); END");
  }
  const uint64_t commits = service_.commits.load();
  Batch b;
  b.requests.resize(3);
  for (int i = 0; i < 3; ++i) {
    MapBuilder m;
    m.u64("v", 1).str("op", "submit").raw("payload", MapBuilder().finish());
    if (i == 1) m.str("pool", "boom");
    const std::string frame = m.finish();
    b.requests[i].body = zmq::message_t(frame.data(), frame.size());
  }
  policy_->apply(b);
  EXPECT_EQ(error_of(b.requests[0].reply), "");
  EXPECT_EQ(error_of(b.requests[1].reply), "unavailable");
  EXPECT_EQ(error_of(b.requests[2].reply), "");
  EXPECT_EQ(service_.commits.load(), commits + 1);
  EXPECT_EQ(service_.storage_errors.load(), 1u);
  EXPECT_EQ(store_->counts()[0], 2u);
  store_->reload();
  EXPECT_EQ(store_->counts()[0], 2u) << "exactly the two answered tasks were committed";
}

TEST_P(TaskApiTest, AnotherMonitorsCopyOfALossChangesNothingAndIsCountedAsDuplicate) {
  const std::string id = submit_id(MapBuilder().raw("payload", MapBuilder().finish()));
  Task t = lease("r-1");
  // The pair's two events for the same lost attempt, in one batch: the first
  // applies, the second is acknowledged (to its own monitor) and counted.
  Batch b;
  b.events.resize(2);
  b.events[0].event = event("mon-a-1", t);
  b.events[1].event = event("mon-b-1", t);
  b.events[1].monitor = 1;
  policy_->apply(b);
  EXPECT_TRUE(b.events[0].ack);
  EXPECT_TRUE(b.events[1].ack);
  EXPECT_EQ(b.events[1].monitor, 1u);
  EXPECT_EQ(api_->stats().reassigned.load(), 1u);
  EXPECT_EQ(service_.events_duplicate.load(), 1u);
  // A later batch: the second monitor redelivers its copy.
  Batch again;
  again.events.resize(1);
  again.events[0].event = event("mon-b-1", t);
  policy_->apply(again);
  EXPECT_TRUE(again.events[0].ack);
  EXPECT_EQ(service_.events_duplicate.load(), 2u);
  // An event that changes nothing for another reason (a runner that never
  // held this task) is not a duplicate.
  Batch other;
  other.events.resize(1);
  other.events[0].event = event("mon-a-2", t);
  other.events[0].event.runner.runner_id = "r-never";
  policy_->apply(other);
  EXPECT_TRUE(other.events[0].ack);
  EXPECT_EQ(service_.events_duplicate.load(), 2u);
  EXPECT_EQ(api_->stats().reassigned.load(), 1u);
  EXPECT_EQ(state_of(id), TaskState::kQueued);
}

TEST(RecentLosses, RemembersTheLatestKeysUpToItsCapacity) {
  RecentLosses recent(2);
  protocol::RunnerInfo a, b, c;
  a.runner_id = "r-a";
  a.task_id = "t-1";
  b = a;
  b.attempt = 2;  // the same task's next attempt is another loss
  c.runner_id = "r-c";
  c.task_id = "t-1";
  recent.add(a);
  recent.add(a);  // once
  EXPECT_EQ(recent.size(), 1u);
  EXPECT_FALSE(recent.contains(b));
  recent.add(b);
  recent.add(c);  // the oldest, a, goes
  EXPECT_EQ(recent.size(), 2u);
  EXPECT_FALSE(recent.contains(a));
  EXPECT_TRUE(recent.contains(b));
  EXPECT_TRUE(recent.contains(c));
}

RMON_BOTH_ENGINES(TaskApiTest);

}  // namespace
}  // namespace rmon::tq
