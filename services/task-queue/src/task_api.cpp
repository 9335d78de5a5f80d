#include "task_api.hpp"

#include <spdlog/spdlog.h>

#include "rmon/service/metrics_endpoint.hpp"

#include "rmon/protocol/msgmap.hpp"

namespace rmon::tq {

using protocol::MapBuilder;
using protocol::MapReader;
using protocol::Reason;
using protocol::Rejection;
using protocol::Status;

namespace {

constexpr std::string_view kOpNames[] = {"submit", "lease", "complete", "fail", "cancel",
                                         "get",    "list",  "stats",    "ping"};
constexpr uint64_t kMaxDelayMs = 30ull * 86'400'000;
constexpr auto kPruneEvery = std::chrono::seconds(60);

std::string encode_task(const Task& t) {
  MapBuilder b;
  b.str("task_id", t.task_id)
      .str("state", to_string(t.state))
      .u64("attempt", t.attempt)
      .u64("max_attempts", t.max_attempts)
      .i64("priority", t.priority)
      .raw("payload", t.payload)
      .opt_str("runner_id", t.runner_id)
      .opt_str("pool", t.pool)
      .opt_str("idempotency_key", t.idempotency_key)
      .i64("created_at_ms", t.created_at_ms)
      .i64("updated_at_ms", t.updated_at_ms)
      .i64("available_at_ms", t.available_at_ms)
      .opt_str("last_error", t.last_error)
      .opt_raw("result", t.result);
  return b.finish();
}

// Reads the keys of one request; the first rejection wins.
struct Keys {
  const MapReader& m;
  Status s;
  template <class Fn>
  Keys& operator()(Fn&& fn) {
    if (s) s = fn(m);
    return *this;
  }
};

}  // namespace

std::span<const std::string_view> TaskApi::ops() const { return kOpNames; }

TaskApi::TaskApi(TaskStore& store, const ServiceStats& service, const Clock& clock)
    : store_(store), service_(service), clock_(clock) {
  publish();
}

RequestScope TaskApi::request_scope(std::size_t op_index, const MapReader& m) {
  switch (static_cast<ApiOp>(op_index)) {
    case ApiOp::kLease:
      return runner_id_scope(m);
    case ApiOp::kComplete:
    case ApiOp::kFail: {
      // The runner the task is leased to now; a task not leased belongs to
      // no runner (the answer can only be not_found, stale_attempt or
      // conflict).
      std::string task_id;
      if (!m.str("task_id", task_id)) return {};
      auto t = store_.get(task_id);
      if (!t || t->state != TaskState::kLeased) return {std::nullopt, true};
      return {std::move(t->runner_id), false};  // a lease without a runner: nobody's (closed)
    }
    default:
      return {};
  }
}

Reply TaskApi::handle(std::size_t op_index, const MapReader& m, Notes& notes) {
  const auto op = static_cast<ApiOp>(op_index);
  auto ok = [] { return protocol::ok_reply(); };
  auto fail = [](TaskError e, std::string_view detail) { return error(error_code(e), detail); };
  auto bad_request = [](const Rejection& r) { return error("bad_request", r.to_string()); };
  switch (op) {
    case ApiOp::kSubmit: {
      SubmitRequest r;
      std::optional<std::string> payload;
      std::optional<int64_t> priority;
      std::optional<uint64_t> max_attempts, delay;
      Keys k{m, {}};
      k([&](auto& x) { return x.opt_raw("payload", payload, kMaxPayloadBytes); })([&](auto& x) {
        return x.opt_i64("priority", priority);
      })([&](auto& x) { return x.opt_u64("max_attempts", max_attempts); })(
          [&](auto& x) { return x.opt_str("pool", r.pool); })([&](auto& x) {
        return x.opt_str("idempotency_key", r.idempotency_key, protocol::kMaxShortString);
      })([&](auto& x) { return x.opt_u64("delay_ms", delay); });
      if (!k.s) return bad_request(k.s.error());
      if (!payload) return bad_request({Reason::kMissingField, "payload"});
      if (max_attempts && (*max_attempts < 1 || *max_attempts > kMaxAttemptsLimit)) {
        return bad_request({Reason::kBadValue, "max_attempts"});
      }
      if (delay && *delay > kMaxDelayMs) return bad_request({Reason::kBadValue, "delay_ms"});
      r.payload = std::move(*payload);
      r.priority = priority.value_or(0);
      r.max_attempts = max_attempts.value_or(5);
      r.delay_ms = delay.value_or(0);
      SubmitResult res = store_.submit(r);
      if (res.error != TaskError::kNone) {
        return fail(res.error, "the queue holds its maximum of live tasks; try again later");
      }
      if (notes.enabled(spdlog::level::debug)) {
        notes.add(spdlog::level::debug,
                  fmt::format("task submitted task_id={} created={}", res.task_id, res.created));
      }
      return rmon::ok(ok().str("task_id", res.task_id).boolean("created", res.created));
    }
    case ApiOp::kLease: {
      std::string runner_id;
      std::optional<std::string> pool;
      Keys k{m, {}};
      k([&](auto& x) { return x.str("runner_id", runner_id); })(
          [&](auto& x) { return x.opt_str("pool", pool); });
      if (!k.s) return bad_request(k.s.error());
      auto t = store_.lease(runner_id, pool);
      if (!t) return rmon::ok(ok().nil("task"));
      if (notes.enabled(spdlog::level::debug)) {
        notes.add(spdlog::level::debug,
                  fmt::format("task leased task_id={} attempt={} runner_id={}", t->task_id,
                              t->attempt, runner_id));
      }
      return rmon::ok(ok().raw("task", encode_task(*t)));
    }
    case ApiOp::kComplete:
    case ApiOp::kFail: {
      std::string task_id;
      uint64_t attempt = 0;
      std::optional<std::string> result, error;
      std::optional<bool> retry;
      Keys k{m, {}};
      k([&](auto& x) { return x.str("task_id", task_id); })(
          [&](auto& x) { return x.u64("attempt", attempt); });
      if (op == ApiOp::kComplete) {
        k([&](auto& x) { return x.opt_raw("result", result, kMaxPayloadBytes); });
      } else {
        k([&](auto& x) { return x.opt_str("error", error, kMaxErrorBytes); })(
            [&](auto& x) { return x.opt_bool("retry", retry); });
      }
      if (!k.s) return bad_request(k.s.error());
      TaskState state = TaskState::kQueued;
      const TaskError e = op == ApiOp::kComplete
                              ? store_.complete(task_id, attempt, result)
                              : store_.fail(task_id, attempt, error, retry.value_or(true), state);
      switch (e) {
        case TaskError::kNone:
          break;
        case TaskError::kNotFound:
          return fail(e, "no task '" + task_id + "'");
        case TaskError::kConflict:
          return fail(e, "task '" + task_id + "' has already ended");
        case TaskError::kStaleAttempt:
          return fail(e, "attempt " + std::to_string(attempt) + " of task '" + task_id +
                             "' is not its current leased attempt");
        case TaskError::kUnavailable:
          return fail(e, "unavailable");
      }
      if (op == ApiOp::kComplete) {
        if (notes.enabled(spdlog::level::debug)) {
          notes.add(spdlog::level::debug,
                    fmt::format("task completed task_id={} attempt={}", task_id, attempt));
        }
        return rmon::ok(ok());
      }
      notes.add(spdlog::level::info,
                fmt::format("task failed by its runner task_id={} attempt={} state={}", task_id,
                            attempt, to_string(state)));
      return rmon::ok(ok().str("state", to_string(state)));
    }
    case ApiOp::kCancel:
    case ApiOp::kGet: {
      std::string task_id;
      if (Status s = m.str("task_id", task_id); !s) return bad_request(s.error());
      if (op == ApiOp::kGet) {
        auto t = store_.get(task_id);
        if (!t) return fail(TaskError::kNotFound, "no task '" + task_id + "'");
        return rmon::ok(ok().raw("task", encode_task(*t)));
      }
      TaskState state = TaskState::kQueued;
      const TaskError e = store_.cancel(task_id, state);
      if (e == TaskError::kNotFound) return fail(e, "no task '" + task_id + "'");
      if (e == TaskError::kConflict) {
        return fail(e, "task '" + task_id + "' is " + std::string(to_string(state)));
      }
      notes.add(spdlog::level::info, "task cancelled task_id=" + task_id);
      return rmon::ok(ok().str("state", to_string(state)));
    }
    case ApiOp::kList: {
      std::optional<std::string> state_name, pool, after;
      std::optional<uint64_t> limit;
      Keys k{m, {}};
      k([&](auto& x) { return x.opt_str("state", state_name); })([&](auto& x) {
        return x.opt_str("pool", pool);
      })([&](auto& x) { return x.opt_u64("limit", limit); })(
          [&](auto& x) { return x.opt_str("after", after); });
      if (!k.s) return bad_request(k.s.error());
      std::optional<TaskState> state;
      if (state_name) {
        state = parse_task_state(*state_name);
        if (!state) return bad_request({Reason::kBadValue, "state"});
      }
      const std::size_t n = std::min(limit.value_or(kDefaultListLimit), kMaxListLimit);
      ListPage page = store_.list(state, pool, n, after, protocol::kMaxListReplyBytes);
      std::vector<std::string> tasks;
      tasks.reserve(page.tasks.size());
      for (const Task& t : page.tasks) tasks.push_back(encode_task(t));
      return rmon::ok(ok().array("tasks", tasks).boolean("more", page.more));
    }
    case ApiOp::kStats: {
      refresh_counts(store::kSharedStatsFresh);
      const auto& c = store_.counts();
      const Counters& n = store_.counters();
      return rmon::ok(
          ok().u64("queued", c[0])
              .u64("leased", c[1])
              .u64("completed", c[2])
              .u64("dead", c[3])
              .u64("cancelled", c[4])
              .u64("reassigned", n.reassigned)
              .u64("reconciled", n.reconciled)
              .u64("undecided", service_.undecided())
              .u64("events_applied", n.events_applied)
              .u64("events_ignored", n.events_ignored)
              .u64("events_duplicate", service_.events_duplicate.load(std::memory_order_relaxed)));
    }
    case ApiOp::kPing:
      return rmon::ok(ok().u64("version", protocol::kVersion));
  }
  return error("internal", "unhandled op");
}

bool TaskApi::apply_event(const protocol::TimeoutEvent& ev, Notes& notes) {
  switch (store_.apply_timeout(ev)) {
    case EventOutcome::kRequeued:
    case EventOutcome::kDead: {
      const auto t = store_.get(ev.runner.task_id);
      notes.add(spdlog::level::warn,
                fmt::format("task reassigned: runner timed out task_id={} attempt={} runner_id={} "
                            "event_id={} state={}",
                            ev.runner.task_id, ev.runner.attempt, ev.runner.runner_id, ev.event_id,
                            t ? to_string(t->state) : "?"));
      return true;
    }
    case EventOutcome::kIgnoredRepeat:
      if (notes.enabled(spdlog::level::debug)) {
        notes.add(spdlog::level::debug, "timeout event repeated event_id=" + ev.event_id);
      }
      break;
    case EventOutcome::kIgnoredStale:
    case EventOutcome::kIgnoredUnknown:
      notes.add(
          spdlog::level::info,
          fmt::format("timeout event changes nothing runner_id={} task_id={} attempt={} "
                      "event_id={}",
                      ev.runner.runner_id, ev.runner.task_id, ev.runner.attempt, ev.event_id));
      break;
  }
  return false;
}

bool TaskApi::apply_verdict(const Judged& j, Notes& notes) {
  if (!store_.apply_verdict(j)) return false;
  const auto t = store_.get(j.key.task_id);
  notes.add(spdlog::level::warn,
            fmt::format("task reassigned by reconciliation verdict={} task_id={} attempt={} "
                        "runner_id={} state={} why=\"{}\"",
                        to_string(j.verdict), j.key.task_id, j.key.attempt, j.key.runner_id,
                        t ? to_string(t->state) : "?", j.why));
  return true;
}

CandidatePage TaskApi::reconcile_candidates(const ReconcileCursor& from, std::size_t max) {
  return store_.reconcile_candidates(from, max);
}

void TaskApi::on_event_committed(const protocol::TimeoutEvent& ev, int64_t now_wall_ms) {
  const int64_t lateness =
      now_wall_ms - (ev.last_heartbeat_ms + static_cast<int64_t>(ev.timeout_ms));
  if (lateness_) lateness_->Observe(std::max(0.0, static_cast<double>(lateness) / 1000.0));
  if (on_reassigned) on_reassigned(ev, lateness);
}

void TaskApi::refresh_counts(std::chrono::steady_clock::duration max_age) {
  if (refresh_due_(clock_.now(), max_age)) store_.refresh();
}

void TaskApi::maintain(Notes& notes) {
  refresh_counts(store::kSharedRefreshEvery);
  const MonoTime now = clock_.now();
  if (now - last_prune_ < kPruneEvery) return;
  last_prune_ = now;
  // Chunked: each chunk is its own transaction (TaskStore::prune).
  const uint64_t n = store_.prune();
  if (n > 0) {
    stats_.pruned.fetch_add(n, std::memory_order_relaxed);
    notes.add(spdlog::level::info,
              "retention: deleted ended tasks and old event ids rows=" + std::to_string(n));
  }
}

void TaskApi::publish() {
  const auto& c = store_.counts();
  for (int i = 0; i < kTaskStateCount; ++i) stats_.tasks[i].store(c[i], std::memory_order_relaxed);
  const Counters& n = store_.counters();
  stats_.reassigned.store(n.reassigned, std::memory_order_relaxed);
  stats_.reconciled.store(n.reconciled, std::memory_order_relaxed);
  stats_.events_applied.store(n.events_applied, std::memory_order_relaxed);
  stats_.events_ignored.store(n.events_ignored, std::memory_order_relaxed);
}

std::string TaskApi::describe() const {
  const auto& c = store_.counts();
  return fmt::format("store=\"{}\" queued={} leased={}", store_.rows().describe(), c[0], c[1]);
}

}  // namespace rmon::tq
