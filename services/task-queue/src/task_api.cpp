#include "task_api.hpp"

#include <spdlog/spdlog.h>

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

std::optional<ApiOp> parse_op(std::string_view s) {
  for (int i = 0; i < kApiOpCount; ++i) {
    if (s == kOpNames[i]) return static_cast<ApiOp>(i);
  }
  return std::nullopt;
}

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

std::string failure(TaskError e, std::string_view detail) {
  return protocol::error_reply(error_code(e), detail);
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

std::string_view to_string(ApiOp op) { return kOpNames[static_cast<int>(op)]; }

TaskApi::TaskApi(TaskStore& store, store::Db& db, MonitorProbe* probe, TaskQueueStats& stats,
                 const Clock& clock)
    : store_(store), db_(db), probe_(probe), stats_(stats), clock_(clock) {
  publish();
}

std::string TaskApi::bad_request(const Rejection& r, std::string detail) {
  stats_.bad_requests.fetch_add(1, std::memory_order_relaxed);
  uint64_t suppressed = 0;
  if (detail.empty()) detail = r.to_string();
  if (warn_limit_.allow("bad_request", std::chrono::steady_clock::now(), suppressed)) {
    spdlog::warn("request rejected reason={} suppressed={}", detail, suppressed);
  }
  return protocol::error_reply(r.reason == Reason::kUnknownOp ? "unknown_op" : "bad_request",
                               detail);
}

std::string TaskApi::handle(std::string_view frame) {
  auto m = MapReader::parse(frame, kMaxRequestFrame);
  if (!m) return bad_request(m.error());
  if (Status v = m->check_version(); !v) return bad_request(v.error());
  std::string op_name;
  if (Status s = m->str("op", op_name); !s) return bad_request(s.error());
  const auto op = parse_op(op_name);
  if (!op) return bad_request({Reason::kUnknownOp, "op"}, "unknown op '" + op_name + "'");
  std::string reply = dispatch(*op, m.value());
  // Replies that start {ok: false} were counted as bad requests or errors.
  return reply;
}

std::string TaskApi::dispatch(ApiOp op, const MapReader& m) {
  auto ok = [&] {
    stats_.ok[static_cast<int>(op)].fetch_add(1, std::memory_order_relaxed);
    return protocol::ok_reply();
  };
  auto fail = [&](TaskError e, std::string_view detail) {
    stats_.errors[static_cast<int>(op)].fetch_add(1, std::memory_order_relaxed);
    return failure(e, detail);
  };
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
      spdlog::debug("task submitted task_id={} created={}", res.task_id, res.created);
      return ok().str("task_id", res.task_id).boolean("created", res.created).finish();
    }
    case ApiOp::kLease: {
      std::string runner_id;
      std::optional<std::string> pool;
      Keys k{m, {}};
      k([&](auto& x) { return x.str("runner_id", runner_id); })(
          [&](auto& x) { return x.opt_str("pool", pool); });
      if (!k.s) return bad_request(k.s.error());
      auto t = store_.lease(runner_id, pool);
      if (!t) return ok().nil("task").finish();
      spdlog::debug("task leased task_id={} attempt={} runner_id={}", t->task_id, t->attempt,
                    runner_id);
      return ok().raw("task", encode_task(*t)).finish();
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
        spdlog::debug("task completed task_id={} attempt={}", task_id, attempt);
        return ok().finish();
      }
      spdlog::info("task failed by its runner task_id={} attempt={} state={}", task_id, attempt,
                   to_string(state));
      return ok().str("state", to_string(state)).finish();
    }
    case ApiOp::kCancel:
    case ApiOp::kGet: {
      std::string task_id;
      if (Status s = m.str("task_id", task_id); !s) return bad_request(s.error());
      if (op == ApiOp::kGet) {
        auto t = store_.get(task_id);
        if (!t) return fail(TaskError::kNotFound, "no task '" + task_id + "'");
        return ok().raw("task", encode_task(*t)).finish();
      }
      TaskState state = TaskState::kQueued;
      const TaskError e = store_.cancel(task_id, state);
      if (e == TaskError::kNotFound) return fail(e, "no task '" + task_id + "'");
      if (e == TaskError::kConflict) {
        return fail(e, "task '" + task_id + "' is " + std::string(to_string(state)));
      }
      spdlog::info("task cancelled task_id={}", task_id);
      return ok().str("state", to_string(state)).finish();
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
      return ok().array("tasks", tasks).boolean("more", page.more).finish();
    }
    case ApiOp::kStats: {
      const auto& c = store_.counts();
      const Counters& n = store_.counters();
      return ok()
          .u64("queued", c[0])
          .u64("leased", c[1])
          .u64("completed", c[2])
          .u64("dead", c[3])
          .u64("cancelled", c[4])
          .u64("reassigned", n.reassigned)
          .u64("events_applied", n.events_applied)
          .u64("events_ignored", n.events_ignored)
          .finish();
    }
    case ApiOp::kPing:
      return ok().u64("version", protocol::kVersion).finish();
  }
  return protocol::error_reply("internal", "unhandled op");
}

bool TaskApi::apply_event(ConsumedEvent& e) {
  const auto& ev = e.event;
  switch (store_.apply_timeout(ev)) {
    case EventOutcome::kRequeued:
    case EventOutcome::kDead: {
      const auto t = store_.get(ev.runner.task_id);
      spdlog::warn(
          "task reassigned: runner timed out task_id={} attempt={} runner_id={} event_id={} "
          "state={}",
          ev.runner.task_id, ev.runner.attempt, ev.runner.runner_id, ev.event_id,
          t ? to_string(t->state) : "?");
      return true;
    }
    case EventOutcome::kIgnoredRepeat:
      spdlog::debug("timeout event repeated event_id={}", ev.event_id);
      break;
    case EventOutcome::kIgnoredStale:
    case EventOutcome::kIgnoredUnknown:
      spdlog::info("timeout event changes nothing task_id={} attempt={} event_id={}",
                   ev.runner.task_id, ev.runner.attempt, ev.event_id);
      break;
  }
  return false;
}

void TaskApi::apply(std::vector<Request>& requests, std::vector<ConsumedEvent>& events) {
  reassigned_.clear();
  try {
    store::Transaction txn(db_);
    for (Request& r : requests) {
      store::Savepoint sp(db_);
      try {
        r.reply = handle(r.body_view());
        sp.release();
      } catch (const store::SqliteError&) {
        throw;  // the batch cannot commit
      } catch (const std::exception& e) {
        // A bug, not bad input: this request's writes roll back, the rest go on.
        spdlog::error("request failed error={}", e.what());
        r.reply = protocol::error_reply("internal", e.what());
      }
    }
    for (ConsumedEvent& e : events) {
      store::Savepoint sp(db_);
      if (apply_event(e)) reassigned_.push_back(&e);
      sp.release();
    }
    txn.commit();
    for (ConsumedEvent& e : events) e.ack = true;
    if (on_reassigned && !reassigned_.empty()) {
      const int64_t now = clock_.wall_ms();
      for (const ConsumedEvent* e : reassigned_) {
        const auto& ev = e->event;
        on_reassigned(ev, now - (ev.last_heartbeat_ms + static_cast<int64_t>(ev.timeout_ms)));
      }
    }
    stats_.commits.fetch_add(1, std::memory_order_relaxed);
    if (on_commit) on_commit(requests.size() + events.size());
  } catch (const std::exception& e) {
    // Nothing of this batch happened: say so to every client, ack nothing
    // (the monitor redelivers), and forget the in-memory effects.
    stats_.commit_failures.fetch_add(1, std::memory_order_relaxed);
    spdlog::error("batch rolled back requests={} events={} error={}", requests.size(),
                  events.size(), e.what());
    for (Request& r : requests) {
      r.reply = protocol::error_reply("unavailable", std::string("storage failed: ") + e.what());
    }
    for (ConsumedEvent& ev : events) ev.ack = false;
    try {
      store_.reload();
    } catch (const std::exception& again) {
      spdlog::error("reloading state failed error={}", again.what());
    }
  }
  publish();
}

void TaskApi::on_probe_results(std::vector<ProbeResult>& results) {
  uint64_t unreachable = 0;
  try {
    store::Transaction txn(db_);
    for (const ProbeResult& r : results) {
      switch (r.verdict) {
        case ProbeVerdict::kSeen:
          stats_.probes_seen.fetch_add(1, std::memory_order_relaxed);
          break;
        case ProbeVerdict::kNotSeen:
          stats_.probes_not_seen.fetch_add(1, std::memory_order_relaxed);
          break;
        case ProbeVerdict::kUnreachable:
          stats_.probes_unreachable.fetch_add(1, std::memory_order_relaxed);
          ++unreachable;
          break;
      }
      (void)store_.apply_probe(r);
    }
    txn.commit();
  } catch (const std::exception& e) {
    spdlog::error("first-heartbeat checks rolled back error={}", e.what());
    store_.reload();
  }
  uint64_t suppressed = 0;
  if (unreachable > 0 &&
      warn_limit_.allow("monitor_unreachable", std::chrono::steady_clock::now(), suppressed)) {
    spdlog::warn(
        "monitor unreachable: first-heartbeat checks postponed, nothing requeued checks={} "
        "suppressed={}",
        unreachable, suppressed);
  }
  publish();
}

void TaskApi::tick() {
  try {
    if (probe_) {
      for (ProbeKey& k : store_.due_for_probe(1000)) probe_->enqueue(std::move(k));
    }
    const auto now = std::chrono::steady_clock::now();
    if (now - last_prune_ >= kPruneEvery) {
      last_prune_ = now;
      const uint64_t n = store_.prune();
      if (n > 0) {
        stats_.pruned.fetch_add(n, std::memory_order_relaxed);
        spdlog::info("retention: deleted ended tasks and old event ids rows={}", n);
      }
    }
  } catch (const std::exception& e) {
    spdlog::error("periodic work failed error={}", e.what());
    try {
      store_.reload();
    } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): logged above
    }
  }
  publish();
}

void TaskApi::publish() {
  const auto& c = store_.counts();
  for (int i = 0; i < kTaskStateCount; ++i) stats_.tasks[i].store(c[i], std::memory_order_relaxed);
  const Counters& n = store_.counters();
  stats_.reassigned.store(n.reassigned, std::memory_order_relaxed);
  stats_.events_applied.store(n.events_applied, std::memory_order_relaxed);
  stats_.events_ignored.store(n.events_ignored, std::memory_order_relaxed);
}

}  // namespace rmon::tq
