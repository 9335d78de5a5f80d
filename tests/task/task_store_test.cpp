// TaskStore: one test per row of the transition table in task_store.hpp, and
// the ordering, idempotency, backoff, grace and retention rules. Fake clock;
// no sockets.

#include "task_test_support.hpp"

namespace rmon::tq {
namespace {

TEST_P(TaskStoreTest, SubmitQueuesATaskThatLeasesAsAttemptOne) {
  const std::string id = submit("a");
  EXPECT_EQ(state_of(id), TaskState::kQueued);
  EXPECT_EQ(store_->get(id)->attempt, 0u);
  Task t = lease("r-1");
  EXPECT_EQ(t.task_id, id);
  EXPECT_EQ(t.attempt, 1u);
  EXPECT_EQ(t.runner_id, "r-1");
  EXPECT_EQ(t.state, TaskState::kLeased);
  EXPECT_EQ(t.payload, payload("a"));
  EXPECT_FALSE(store_->lease("r-2", std::nullopt).has_value());
}

TEST_P(TaskStoreTest, LeaseTakesHighestPriorityThenSubmissionOrder) {
  const std::string low = submit("low", 0);
  const std::string high1 = submit("high1", 5);
  const std::string high2 = submit("high2", 5);
  EXPECT_EQ(lease().task_id, high1);
  EXPECT_EQ(lease().task_id, high2);
  EXPECT_EQ(lease().task_id, low);
}

TEST_P(TaskStoreTest, DelayedTaskIsLeasableOnlyFromItsTime) {
  const std::string id = submit("later", 0, std::nullopt, 5, 1000);
  EXPECT_FALSE(store_->lease("r", std::nullopt));
  clock_.advance_ms(999);
  EXPECT_FALSE(store_->lease("r", std::nullopt));
  clock_.advance_ms(1);
  EXPECT_EQ(lease().task_id, id);
}

TEST_P(TaskStoreTest, LeaseWithAPoolTakesThatPoolOrNoneWithoutOnlyNone) {
  const std::string gpu = submit("gpu", 0, "gpu");
  const std::string any = submit("any", 0);
  const std::string cpu = submit("cpu", 9, "cpu");
  EXPECT_EQ(lease("r", "gpu").task_id, gpu);
  EXPECT_EQ(lease("r", std::nullopt).task_id, any);
  EXPECT_FALSE(store_->lease("r", std::nullopt));
  EXPECT_FALSE(store_->lease("r", "gpu"));
  EXPECT_EQ(lease("r", "cpu").task_id, cpu);
}

TEST_P(TaskStoreTest, IdempotencyKeyReturnsTheExistingTask) {
  SubmitRequest r;
  r.payload = payload("a");
  r.idempotency_key = "k-1";
  auto first = store_->submit(r);
  r.payload = payload("b");
  auto again = store_->submit(r);
  EXPECT_TRUE(first.created);
  EXPECT_FALSE(again.created);
  EXPECT_EQ(first.task_id, again.task_id);
  EXPECT_EQ(store_->get(first.task_id)->payload, payload("a"));
  EXPECT_EQ(store_->counts()[0], 1u);
}

TEST_P(TaskStoreTest, CompleteTheCurrentAttemptEndsTheTask) {
  const std::string id = submit();
  Task t = lease();
  EXPECT_EQ(store_->complete(id, t.attempt, payload("done")), TaskError::kNone);
  auto done = store_->get(id);
  EXPECT_EQ(done->state, TaskState::kCompleted);
  EXPECT_EQ(done->result, payload("done"));
  EXPECT_FALSE(done->runner_id.has_value());
}

TEST_P(TaskStoreTest, CompleteAnOldAttemptIsStale) {
  const std::string id = submit();
  Task t1 = lease();
  TaskState st{};
  ASSERT_EQ(store_->fail(id, t1.attempt, "boom", true, st), TaskError::kNone);
  clock_.advance_ms(60'000);
  Task t2 = lease("r-2");
  EXPECT_EQ(t2.attempt, 2u);
  EXPECT_EQ(store_->complete(id, 1, std::nullopt), TaskError::kStaleAttempt);
  EXPECT_EQ(state_of(id), TaskState::kLeased);
}

TEST_P(TaskStoreTest, CompleteOrFailAQueuedTaskIsStale) {
  const std::string id = submit();
  TaskState st{};
  EXPECT_EQ(store_->complete(id, 0, std::nullopt), TaskError::kStaleAttempt);
  EXPECT_EQ(store_->fail(id, 0, std::nullopt, true, st), TaskError::kStaleAttempt);
  EXPECT_EQ(state_of(id), TaskState::kQueued);
}

TEST_P(TaskStoreTest, CompleteOrFailAnEndedTaskIsAConflict) {
  const std::string id = submit();
  Task t = lease();
  ASSERT_EQ(store_->complete(id, t.attempt, std::nullopt), TaskError::kNone);
  TaskState st{};
  EXPECT_EQ(store_->complete(id, t.attempt, std::nullopt), TaskError::kConflict);
  EXPECT_EQ(store_->fail(id, t.attempt, std::nullopt, true, st), TaskError::kConflict);
  const std::string other = submit();
  ASSERT_EQ(store_->cancel(other, st), TaskError::kNone);
  EXPECT_EQ(store_->complete(other, 0, std::nullopt), TaskError::kConflict);
}

TEST_P(TaskStoreTest, UnknownTaskIsNotFound) {
  TaskState st{};
  EXPECT_EQ(store_->complete("t-none-1", 1, std::nullopt), TaskError::kNotFound);
  EXPECT_EQ(store_->fail("t-none-1", 1, std::nullopt, true, st), TaskError::kNotFound);
  EXPECT_EQ(store_->cancel("t-none-1", st), TaskError::kNotFound);
  EXPECT_FALSE(store_->get("t-none-1"));
}

TEST_P(TaskStoreTest, FailWithRetryRequeuesAfterABackoffWithinItsBounds) {
  const std::string id = submit();
  Task t = lease();
  TaskState st{};
  const int64_t now = clock_.wall_ms();
  ASSERT_EQ(store_->fail(id, t.attempt, "boom", true, st), TaskError::kNone);
  EXPECT_EQ(st, TaskState::kQueued);
  auto q = store_->get(id);
  EXPECT_EQ(q->last_error, "boom");
  EXPECT_GE(q->available_at_ms, now + 250);  // d = 500 after attempt 1: [250, 500]
  EXPECT_LE(q->available_at_ms, now + 500);
  EXPECT_FALSE(store_->lease("r", std::nullopt));
  clock_.advance_ms(500);
  EXPECT_EQ(lease().attempt, 2u);
}

TEST_P(TaskStoreTest, FailWithoutRetryIsDead) {
  const std::string id = submit();
  Task t = lease();
  TaskState st{};
  ASSERT_EQ(store_->fail(id, t.attempt, "fatal", false, st), TaskError::kNone);
  EXPECT_EQ(st, TaskState::kDead);
  EXPECT_EQ(state_of(id), TaskState::kDead);
}

TEST_P(TaskStoreTest, FailOfTheLastAttemptIsDead) {
  const std::string id = submit("x", 0, std::nullopt, 1);
  Task t = lease();
  TaskState st{};
  ASSERT_EQ(store_->fail(id, t.attempt, "boom", true, st), TaskError::kNone);
  EXPECT_EQ(st, TaskState::kDead);
}

TEST_P(TaskStoreTest, CancelQueuedOrLeasedThenAgainIsOk) {
  const std::string queued = submit();
  const std::string leased = submit();
  TaskState st{};
  (void)lease();  // takes `queued` (first submitted)
  EXPECT_EQ(store_->cancel(leased, st), TaskError::kNone);
  EXPECT_EQ(st, TaskState::kCancelled);
  EXPECT_EQ(store_->cancel(queued, st), TaskError::kNone);
  EXPECT_EQ(store_->cancel(queued, st), TaskError::kNone);
  EXPECT_EQ(st, TaskState::kCancelled);
  EXPECT_EQ(store_->counts()[4], 2u);
  EXPECT_EQ(store_->counts()[1], 0u);
}

TEST_P(TaskStoreTest, CancelCompletedOrDeadIsAConflict) {
  const std::string id = submit();
  Task t = lease();
  ASSERT_EQ(store_->complete(id, t.attempt, std::nullopt), TaskError::kNone);
  TaskState st{};
  EXPECT_EQ(store_->cancel(id, st), TaskError::kConflict);
  EXPECT_EQ(st, TaskState::kCompleted);
}

TEST_P(TaskStoreTest, TimeoutEventRequeuesTheCurrentAttemptOnce) {
  const std::string id = submit();
  Task t = lease();
  EXPECT_EQ(store_->apply_timeout(event("e-1", t)), EventOutcome::kRequeued);
  EXPECT_EQ(state_of(id), TaskState::kQueued);
  EXPECT_EQ(store_->counters().reassigned, 1u);
  EXPECT_EQ(store_->counters().events_applied, 1u);
  // The same event again, and another event for the same attempt: nothing.
  EXPECT_EQ(store_->apply_timeout(event("e-1", t)), EventOutcome::kIgnoredRepeat);
  EXPECT_EQ(store_->apply_timeout(event("e-2", t)), EventOutcome::kIgnoredStale);
  EXPECT_EQ(store_->counters().reassigned, 1u);
  EXPECT_EQ(store_->counters().events_ignored, 2u);
}

TEST_P(TaskStoreTest, TimeoutEventForAnOldAttemptChangesNothing) {
  const std::string id = submit();
  Task t1 = lease();
  ASSERT_EQ(store_->apply_timeout(event("e-1", t1)), EventOutcome::kRequeued);
  clock_.advance_ms(60'000);
  Task t2 = lease("r-2");
  EXPECT_EQ(store_->apply_timeout(event("e-old", t1)), EventOutcome::kIgnoredStale);
  EXPECT_EQ(state_of(id), TaskState::kLeased);
  EXPECT_EQ(store_->get(id)->attempt, t2.attempt);
}

TEST_P(TaskStoreTest, TimeoutEventForAnUnknownTaskChangesNothing) {
  Task ghost;
  ghost.task_id = "t-elsewhere-7";
  ghost.attempt = 1;
  EXPECT_EQ(store_->apply_timeout(event("e-9", ghost)), EventOutcome::kIgnoredUnknown);
  EXPECT_EQ(store_->counters().events_ignored, 1u);
}

TEST_P(TaskStoreTest, TimeoutOfTheLastAttemptMakesTheTaskDead) {
  const std::string id = submit("x", 0, std::nullopt, 2);
  Task t1 = lease();
  ASSERT_EQ(store_->apply_timeout(event("e-1", t1)), EventOutcome::kRequeued);
  clock_.advance_ms(60'000);
  Task t2 = lease();
  EXPECT_EQ(store_->apply_timeout(event("e-2", t2)), EventOutcome::kDead);
  EXPECT_EQ(state_of(id), TaskState::kDead);
  EXPECT_EQ(store_->counters().reassigned, 2u);
}

TEST_P(TaskStoreTest, BackoffCeilingGrowsByTheFactorUpToTheCap) {
  BackoffPolicy p{500, 2.0, 60'000};
  EXPECT_EQ(p.ceiling_ms(1), 500u);
  EXPECT_EQ(p.ceiling_ms(2), 1000u);
  EXPECT_EQ(p.ceiling_ms(3), 2000u);
  EXPECT_EQ(p.ceiling_ms(8), 60'000u);
  EXPECT_EQ(p.ceiling_ms(1000), 60'000u);
  std::mt19937_64 rng(1);
  for (uint64_t n = 1; n < 12; ++n) {
    for (int i = 0; i < 200; ++i) {
      const uint64_t d = p.delay_ms(n, rng);
      EXPECT_GE(d, p.ceiling_ms(n) / 2);
      EXPECT_LE(d, p.ceiling_ms(n));
    }
  }
}

TEST_P(TaskStoreTest, LeaseIsAReconcileCandidateOnlyAfterTheGrace) {
  submit();
  Task t = lease("r-9");
  clock_.advance_ms(29'999);
  EXPECT_TRUE(store_->reconcile_candidates({}, 100).keys.empty());
  clock_.advance_ms(1);
  auto page = store_->reconcile_candidates({}, 100);
  ASSERT_EQ(page.keys.size(), 1u);
  EXPECT_TRUE(page.last);
  EXPECT_EQ(page.keys[0].runner_id, "r-9");
  EXPECT_EQ(page.keys[0].task_id, t.task_id);
  EXPECT_EQ(page.keys[0].attempt, 1u);
}

TEST_P(TaskStoreTest, ReconcileCandidatesPageThroughEveryLeaseAndStayCandidates) {
  for (int i = 0; i < 5; ++i) submit();
  for (int i = 0; i < 5; ++i) lease("r-" + std::to_string(i));
  clock_.advance_ms(30'000);
  std::vector<std::string> seen;
  ReconcileCursor from;
  for (int pages = 0; pages < 10; ++pages) {
    CandidatePage page = store_->reconcile_candidates(from, 2);
    for (const LeaseKey& k : page.keys) seen.push_back(k.runner_id);
    from = page.next;
    from.start = false;
    if (page.last) break;
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"r-0", "r-1", "r-2", "r-3", "r-4"}));
  // A standing rule: the same leases are candidates again next round.
  EXPECT_EQ(store_->reconcile_candidates({}, 100).keys.size(), 5u);
}

TEST_P(TaskStoreTest, EachTakingBackVerdictRequeuesWithItsReasonAsLastError) {
  for (Verdict v : {Verdict::kEnded, Verdict::kTimedOut, Verdict::kGone}) {
    const std::string id = submit();
    Task t = lease("r-9");
    const std::string why = "because " + std::string(to_string(v));
    EXPECT_TRUE(store_->apply_verdict({{"r-9", id, t.attempt}, v, why}));
    auto after = store_->get(id);
    EXPECT_EQ(after->state, TaskState::kQueued);
    EXPECT_EQ(after->last_error, why);
    clock_.advance_ms(120'000);  // past any backoff, so the next lease is a fresh task
    ASSERT_EQ(store_->cancel(id, after->state), TaskError::kNone);
  }
  EXPECT_EQ(store_->counters().reassigned, 3u);
  EXPECT_EQ(store_->counters().reconciled, 3u);
}

TEST_P(TaskStoreTest, KeepingVerdictsChangeNothing) {
  const std::string id = submit();
  Task t = lease("r-9");
  for (Verdict v : {Verdict::kAlive, Verdict::kSettling, Verdict::kUndecided}) {
    EXPECT_FALSE(store_->apply_verdict({{"r-9", id, t.attempt}, v, "x"}));
  }
  EXPECT_EQ(state_of(id), TaskState::kLeased);
  EXPECT_EQ(store_->counters().reconciled, 0u);
}

TEST_P(TaskStoreTest, VerdictForALeaseThatMovedOnChangesNothing) {
  const std::string id = submit();
  Task t = lease("r-9");
  // Another runner's key, another attempt, and a lease that has ended.
  EXPECT_FALSE(store_->apply_verdict({{"r-8", id, t.attempt}, Verdict::kGone, "x"}));
  EXPECT_FALSE(store_->apply_verdict({{"r-9", id, t.attempt + 1}, Verdict::kGone, "x"}));
  ASSERT_EQ(store_->complete(id, t.attempt, std::nullopt), TaskError::kNone);
  EXPECT_FALSE(store_->apply_verdict({{"r-9", id, t.attempt}, Verdict::kGone, "x"}));
  EXPECT_EQ(state_of(id), TaskState::kCompleted);
  EXPECT_EQ(store_->counters().reassigned, 0u);
}

TEST_P(TaskStoreTest, TimeoutEventOfAnotherRunnerOnTheSameAttemptChangesNothing) {
  const std::string id = submit();
  Task t = lease("r-9");
  protocol::TimeoutEvent ev = event("e-1", t);
  ev.runner.runner_id = "r-other";
  EXPECT_EQ(store_->apply_timeout(ev), EventOutcome::kIgnoredStale);
  EXPECT_EQ(state_of(id), TaskState::kLeased);
}

TEST_P(TaskStoreTest, StateAndCountersSurviveReopening) {
  const std::string a = submit();
  const std::string b = submit();
  Task t = lease();
  ASSERT_EQ(store_->apply_timeout(event("e-1", t)), EventOutcome::kRequeued);
  ASSERT_EQ(store_->apply_timeout(event("e-1", t)), EventOutcome::kIgnoredRepeat);
  open(test_options());
  EXPECT_EQ(store_->counts()[0], 2u);
  EXPECT_EQ(store_->counters().reassigned, 1u);
  EXPECT_EQ(store_->counters().events_applied, 1u);
  EXPECT_EQ(store_->counters().events_ignored, 1u);
  EXPECT_EQ(store_->apply_timeout(event("e-1", t)), EventOutcome::kIgnoredRepeat);
  EXPECT_EQ(state_of(a), TaskState::kQueued);
  EXPECT_EQ(state_of(b), TaskState::kQueued);
}

TEST_P(TaskStoreTest, SubmitBeyondTheLiveTaskBoundIsUnavailable) {
  StoreOptions o = test_options();
  o.max_live_tasks = 2;
  open(o);
  submit();
  const std::string second = submit();
  SubmitRequest r;
  r.payload = payload("3");
  EXPECT_EQ(store_->submit(r).error, TaskError::kUnavailable);
  TaskState st{};
  ASSERT_EQ(store_->cancel(second, st), TaskError::kNone);
  EXPECT_EQ(store_->submit(r).error, TaskError::kNone);
}

TEST_P(TaskStoreTest, RetentionDeletesEndedTasksAndIdsAreNeverReused) {
  StoreOptions o = test_options();
  o.retention_ms = 10'000;
  open(o);
  const std::string keep = submit();
  const std::string gone = submit();
  TaskState st{};
  ASSERT_EQ(store_->cancel(gone, st), TaskError::kNone);
  clock_.advance_ms(10'001);
  EXPECT_EQ(store_->prune(), 1u);
  EXPECT_FALSE(store_->get(gone));
  EXPECT_TRUE(store_->get(keep));
  EXPECT_EQ(store_->counts()[4], 0u);
  open(o);
  const std::string next = submit();
  EXPECT_NE(next, gone);
  EXPECT_NE(next, keep);
}

TEST_P(TaskStoreTest, ListPagesInSubmissionOrderWithFilters) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(submit(std::to_string(i), 0, i % 2 ? "odd" : "even"));
  auto p1 = store_->list(std::nullopt, std::nullopt, 2, std::nullopt, 1 << 20);
  ASSERT_EQ(p1.tasks.size(), 2u);
  EXPECT_TRUE(p1.more);
  EXPECT_EQ(p1.tasks[0].task_id, ids[0]);
  auto p2 = store_->list(std::nullopt, std::nullopt, 10, p1.tasks.back().task_id, 1 << 20);
  ASSERT_EQ(p2.tasks.size(), 3u);
  EXPECT_FALSE(p2.more);
  EXPECT_EQ(p2.tasks[0].task_id, ids[2]);
  auto odd = store_->list(std::nullopt, std::string("odd"), 10, std::nullopt, 1 << 20);
  EXPECT_EQ(odd.tasks.size(), 2u);
  (void)lease("r", "even");
  auto leased = store_->list(TaskState::kLeased, std::nullopt, 10, std::nullopt, 1 << 20);
  ASSERT_EQ(leased.tasks.size(), 1u);
  EXPECT_EQ(leased.tasks[0].task_id, ids[0]);
  // A byte budget smaller than one task still returns one, and says more.
  auto tiny = store_->list(std::nullopt, std::nullopt, 10, std::nullopt, 1);
  EXPECT_EQ(tiny.tasks.size(), 1u);
  EXPECT_TRUE(tiny.more);
}

RMON_BOTH_ENGINES(TaskStoreTest);

}  // namespace
}  // namespace rmon::tq
