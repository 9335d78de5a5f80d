#include "task_store.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cstdio>
#include <stdexcept>

namespace rmon::tq {

namespace {

constexpr const char* kStateNames[] = {"queued", "leased", "completed", "dead", "cancelled"};

}  // namespace

std::string_view to_string(TaskState s) { return kStateNames[static_cast<int>(s)]; }

std::optional<TaskState> parse_task_state(std::string_view s) {
  for (int i = 0; i < kTaskStateCount; ++i) {
    if (s == kStateNames[i]) return static_cast<TaskState>(i);
  }
  return std::nullopt;
}

std::string_view error_code(TaskError e) {
  switch (e) {
    case TaskError::kNone:
      return "";
    case TaskError::kNotFound:
      return "not_found";
    case TaskError::kStaleAttempt:
      return "stale_attempt";
    case TaskError::kConflict:
      return "conflict";
    case TaskError::kUnavailable:
      return "unavailable";
  }
  return "internal";
}

std::string make_task_id(const std::string& tag, int64_t seq) {
  return "t-" + tag + "-" + std::to_string(seq);
}

std::optional<int64_t> task_seq_of(const std::string& task_id) {
  const auto dash = task_id.rfind('-');
  if (dash == std::string::npos) return std::nullopt;
  int64_t seq = 0;
  const char* b = task_id.data() + dash + 1;
  const char* e = task_id.data() + task_id.size();
  auto [p, ec] = std::from_chars(b, e, seq);
  if (ec != std::errc() || p != e) return std::nullopt;
  return seq;
}

TaskStore::TaskStore(store::Db& db, const Clock& clock, StoreOptions opts)
    : TaskStore(make_sqlite_rows(db), clock, opts) {}

TaskStore::TaskStore(std::unique_ptr<TaskRows> rows, const Clock& clock, StoreOptions opts)
    : rows_(std::move(rows)),
      clock_(clock),
      opts_(opts),
      rng_(opts.seed ? opts.seed : std::random_device{}()) {
  reload();
}

void TaskStore::reload() {
  rows_->reload();
  counts_ = rows_->count_states();
  counters_ = rows_->read_counters();
}

void TaskStore::refresh() {
  if (rows_->shared()) reload();
}

void TaskStore::set_state_count(TaskState from, TaskState to) {
  assert(from != to);
  // Alone on its rows, the counts mirror the table (a task leaves a state it
  // was counted in). With replicas, another's change since the last refresh
  // may not be counted yet: never below zero.
  assert(rows_->shared() || counts_[static_cast<int>(from)] > 0);
  auto& c = counts_[static_cast<int>(from)];
  if (c > 0) --c;
  ++counts_[static_cast<int>(to)];
}

void TaskStore::bump(const char* counter, uint64_t& field) {
  rows_->bump(counter);
  ++field;
}

void TaskStore::fenced(bool applied, const Task& t) {
  if (!applied) {
    throw std::runtime_error("task " + t.task_id + " changed under its row lock (attempt " +
                             std::to_string(t.attempt) + ")");
  }
}

SubmitResult TaskStore::submit(const SubmitRequest& r) {
  SubmitResult out;
  if (r.idempotency_key) {
    if (auto id = rows_->find_key(*r.idempotency_key)) {
      out.task_id = std::move(*id);
      return out;
    }
  }
  const uint64_t live = counts_[0] + counts_[1];
  if (live >= opts_.max_live_tasks) {
    out.error = TaskError::kUnavailable;
    return out;
  }
  out.task_id = rows_->insert(r, clock_.wall_ms(), out.created);
  if (out.created) ++counts_[0];
  return out;
}

std::optional<Task> TaskStore::lease(const std::string& runner_id,
                                     const std::optional<std::string>& pool) {
  auto t = rows_->lease(runner_id, pool, clock_.wall_ms());
  if (t) set_state_count(TaskState::kQueued, TaskState::kLeased);
  return t;
}

TaskError TaskStore::complete(const std::string& task_id, uint64_t attempt,
                              const std::optional<std::string>& result) {
  // The fence is the update's own condition (one statement when it holds);
  // only a refused completion reads the task, to say why.
  if (rows_->set_ended(task_id, {TaskState::kLeased, attempt}, TaskState::kCompleted,
                       clock_.wall_ms(), result, std::nullopt)) {
    set_state_count(TaskState::kLeased, TaskState::kCompleted);
    return TaskError::kNone;
  }
  auto t = rows_->get(task_id, false);
  if (!t) return TaskError::kNotFound;
  if (is_ended(t->state)) return TaskError::kConflict;
  return TaskError::kStaleAttempt;
}

TaskState TaskStore::requeue(const Task& t, const std::string& error) {
  assert(t.state == TaskState::kLeased);  // only a lease is lost or failed
  const int64_t now = clock_.wall_ms();
  const Fence fence{t.state, t.attempt};
  if (t.attempt >= t.max_attempts) {
    fenced(rows_->set_ended(t.task_id, fence, TaskState::kDead, now, std::nullopt, error), t);
    set_state_count(t.state, TaskState::kDead);
    return TaskState::kDead;
  }
  const auto delay = static_cast<int64_t>(opts_.backoff.delay_ms(t.attempt, rng_));
  fenced(rows_->set_queued(t.task_id, fence, now, now + delay, error), t);
  set_state_count(t.state, TaskState::kQueued);
  return TaskState::kQueued;
}

TaskError TaskStore::fail(const std::string& task_id, uint64_t attempt,
                          const std::optional<std::string>& error, bool retry, TaskState& state) {
  auto t = rows_->get(task_id, true);
  if (!t) return TaskError::kNotFound;
  state = t->state;
  if (is_ended(t->state)) return TaskError::kConflict;
  if (t->state != TaskState::kLeased || t->attempt != attempt) return TaskError::kStaleAttempt;
  const std::string why = error.value_or("failed by its runner");
  if (!retry) {
    Task last = *t;
    last.max_attempts = last.attempt;  // no attempts left: dead
    state = requeue(last, why);
  } else {
    state = requeue(*t, why);
  }
  return TaskError::kNone;
}

TaskError TaskStore::cancel(const std::string& task_id, TaskState& state) {
  auto t = rows_->get(task_id, true);
  if (!t) return TaskError::kNotFound;
  state = t->state;
  if (t->state == TaskState::kCancelled) return TaskError::kNone;
  if (t->state == TaskState::kCompleted || t->state == TaskState::kDead) {
    return TaskError::kConflict;
  }
  fenced(rows_->set_cancelled(task_id, {t->state, t->attempt}, clock_.wall_ms()), *t);
  set_state_count(t->state, TaskState::kCancelled);
  state = TaskState::kCancelled;
  return TaskError::kNone;
}

std::optional<Task> TaskStore::get(const std::string& task_id) {
  return rows_->get(task_id, false);
}

ListPage TaskStore::list(std::optional<TaskState> state, const std::optional<std::string>& pool,
                         std::size_t limit, const std::optional<std::string>& after,
                         std::size_t max_bytes) {
  ListPage page;
  int64_t after_seq = 0;
  if (after) after_seq = task_seq_of(*after).value_or(0);
  std::size_t bytes = 0;
  for (Task& t : rows_->list(state, pool, after_seq, limit + 1)) {
    const std::size_t size = t.payload.size() + (t.result ? t.result->size() : 0) + 256;
    if (page.tasks.size() == limit || (!page.tasks.empty() && bytes + size > max_bytes)) {
      page.more = true;
      break;
    }
    bytes += size;
    page.tasks.push_back(std::move(t));
  }
  return page;
}

EventOutcome TaskStore::apply_timeout(const protocol::TimeoutEvent& ev) {
  if (!rows_->remember_event(ev.event_id, clock_.wall_ms())) {
    bump("events_ignored", counters_.events_ignored);
    return EventOutcome::kIgnoredRepeat;
  }
  auto t = rows_->get(ev.runner.task_id, true);
  if (!t) {
    bump("events_ignored", counters_.events_ignored);
    return EventOutcome::kIgnoredUnknown;
  }
  // Fenced by the whole (runner, task, attempt): an event for another
  // runner's lifecycle of this attempt number changes nothing.
  if (t->state != TaskState::kLeased || t->attempt != ev.runner.attempt ||
      t->runner_id != ev.runner.runner_id) {
    bump("events_ignored", counters_.events_ignored);
    return EventOutcome::kIgnoredStale;
  }
  const TaskState next =
      requeue(*t, "runner " + ev.runner.runner_id + " timed out (event " + ev.event_id + ")");
  bump("events_applied", counters_.events_applied);
  bump("reassigned", counters_.reassigned);
  return next == TaskState::kDead ? EventOutcome::kDead : EventOutcome::kRequeued;
}

CandidatePage TaskStore::reconcile_candidates(const ReconcileCursor& from, std::size_t max) {
  const int64_t cutoff = clock_.wall_ms() - static_cast<int64_t>(opts_.first_heartbeat_grace_ms);
  return rows_->candidates(from, cutoff, max);
}

bool TaskStore::apply_verdict(const Judged& j) {
  if (!takes_back(j.verdict)) return false;
  auto t = rows_->get(j.key.task_id, true);
  // Only the very lease that was judged: it may have ended or moved on
  // while the monitors were being asked.
  if (!t || t->state != TaskState::kLeased || t->attempt != j.key.attempt ||
      t->runner_id != j.key.runner_id) {
    return false;
  }
  requeue(*t, j.why);
  bump("reassigned", counters_.reassigned);
  bump("reconciled", counters_.reconciled);
  return true;
}

uint64_t TaskStore::prune() {
  const int64_t now = clock_.wall_ms();
  uint64_t deleted = 0;
  constexpr int64_t kChunk = 5000;
  for (int round = 0; round < 20; ++round) {
    StateCounts gone{};
    const uint64_t n =
        rows_->prune_chunk(now - static_cast<int64_t>(opts_.retention_ms),
                           now - static_cast<int64_t>(opts_.event_retention_ms), kChunk, gone);
    for (int s = 0; s < kTaskStateCount; ++s) counts_[s] -= std::min(counts_[s], gone[s]);
    deleted += n;
    if (n == 0) break;
  }
  return deleted;
}

}  // namespace rmon::tq
