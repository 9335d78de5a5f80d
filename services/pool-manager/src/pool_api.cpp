#include "pool_api.hpp"

#include <spdlog/spdlog.h>

namespace rmon::pool {

using protocol::MapBuilder;
using protocol::MapReader;
using protocol::Reason;
using protocol::Rejection;
using protocol::Status;

namespace {

Outcome outcome_of(AcquireStatus s) {
  switch (s) {
    case AcquireStatus::kAcquired:
    case AcquireStatus::kAlreadyHeld:
      return Outcome::kOk;
    case AcquireStatus::kNotFound:
      return Outcome::kNotFound;
    case AcquireStatus::kStaleAttempt:
      return Outcome::kStaleAttempt;
    case AcquireStatus::kConflict:
      return Outcome::kConflict;
    case AcquireStatus::kPoolFull:
      return Outcome::kPoolFull;
  }
  return Outcome::kUnavailable;
}

std::string encode_holder(const Holding& h) {
  return MapBuilder()
      .u64("slot", h.slot)
      .str("runner_id", h.runner_id)
      .str("task_id", h.task_id)
      .u64("attempt", h.attempt)
      .i64("since_ms", h.since_ms)
      .finish();
}

std::string describe(const Holding& h) {
  return fmt::format("runner_id={} task_id={} attempt={} pool={} slot={}", h.runner_id, h.task_id,
                     h.attempt, h.pool, h.slot);
}

}  // namespace

PoolApi::PoolApi(PoolStore& store, PoolMetrics& metrics, MonitorProbe* probe, const Clock& clock,
                 Millis grace, ApiOptions options)
    : store_(store),
      metrics_(metrics),
      probe_(probe),
      clock_(clock),
      grace_(grace),
      options_(options),
      next_prune_(clock.now()) {
  metrics_.publish(store_);
}

void PoolApi::note(spdlog::level::level_enum level, std::string text) {
  notes_.push_back({level, std::move(text)});
}

void PoolApi::flush_notes() {
  for (const Note& n : notes_) spdlog::log(n.level, "{}", n.text);
  notes_.clear();
}

void PoolApi::storage_error(const char* what, const std::exception& e) {
  uint64_t suppressed = 0;
  if (warn_limit_.allow("storage", clock_.now(), suppressed)) {
    spdlog::error("storage failure, {} error=\"{}\" suppressed={}", what, e.what(), suppressed);
  }
}

bool PoolApi::try_resync() {
  try {
    store_.resync();
    needs_resync_ = false;
  } catch (const std::exception& e) {
    needs_resync_ = true;
    storage_error("reloading slots", e);
  }
  return !needs_resync_;
}

void PoolApi::apply(std::vector<Request>& requests, std::vector<ConsumedEvent>& events) {
  handled_.clear();
  notes_.clear();
  event_done_.assign(events.size(), 0);
  released_.assign(events.size(), 0);
  bool committed = false;
  if (!needs_resync_ || try_resync()) {
    try {
      store::Transaction tx(store_.db());
      // Events first: a slot they free is then free for this batch's acquires.
      for (std::size_t i = 0; i < events.size(); ++i) {
        event_done_[i] = handle_event(events[i].event, released_[i]) ? 1 : 0;
      }
      for (Request& r : requests) handled_.push_back(handle(r));
      tx.commit();
      committed = true;
      if (on_released) {
        const int64_t now = clock_.wall_ms();
        for (std::size_t i = 0; i < events.size(); ++i) {
          if (!released_[i]) continue;
          const auto& ev = events[i].event;
          on_released(ev, now - (ev.last_heartbeat_ms + static_cast<int64_t>(ev.timeout_ms)));
        }
      }
    } catch (const std::exception& e) {
      storage_error("batch answered unavailable, events not acknowledged", e);
      metrics_.count_commit_failure();
      try_resync();
    }
  }
  if (!committed) {
    handled_.resize(requests.size());
    for (std::size_t i = 0; i < requests.size(); ++i) {
      requests[i].reply = protocol::error_reply("unavailable", "storage failure; retry later");
      handled_[i].outcome = Outcome::kUnavailable;
    }
    notes_.clear();
    event_done_.assign(events.size(), 0);
  }
  for (std::size_t i = 0; i < events.size(); ++i) events[i].ack = event_done_[i] != 0;
  flush_notes();
  for (const Handled& h : handled_) metrics_.count_request(h.op, h.outcome);
  metrics_.observe_batch(requests.size() + events.size());
  metrics_.publish(store_);
}

bool PoolApi::handle_event(const protocol::TimeoutEvent& ev, char& released) {
  try {
    store::Savepoint sp(store_.db());
    EventOutcome out = store_.apply_timeout(ev);
    sp.release();
    released = out.released.empty() ? 0 : 1;
    for (const Holding& h : out.released) {
      note(spdlog::level::info,
           "slot released: runner timed out " + describe(h) + " event_id=" + ev.event_id);
    }
    if (out.result != EventResult::kApplied && spdlog::should_log(spdlog::level::debug)) {
      note(spdlog::level::debug,
           fmt::format("timeout event ignored reason={} event_id={} runner_id={} task_id={} "
                       "attempt={}",
                       out.result == EventResult::kRepeated ? "repeated" : "no_holding",
                       ev.event_id, ev.runner.runner_id, ev.runner.task_id, ev.runner.attempt));
    }
    return true;
  } catch (const std::exception& e) {
    // Rolled back to the savepoint; not acknowledged, so the monitor resends it.
    storage_error("timeout event not applied", e);
    store_.resync();
    return false;
  }
}

PoolApi::Handled PoolApi::handle(Request& r) {
  auto parsed = MapReader::parse(r.body_view());
  if (!parsed) return reject(r, ApiOp::kInvalid, parsed.error());
  const MapReader& m = parsed.value();
  if (Status s = m.check_version(); !s) return reject(r, ApiOp::kInvalid, s.error());
  std::string op;
  if (Status s = m.str("op", op, protocol::kMaxShortString); !s) {
    return reject(r, ApiOp::kInvalid, s.error());
  }
  ApiOp api_op = ApiOp::kInvalid;
  if (op == "acquire") api_op = ApiOp::kAcquire;
  if (op == "release") api_op = ApiOp::kRelease;
  if (op == "status") api_op = ApiOp::kStatus;
  if (op == "stats") api_op = ApiOp::kStats;
  if (op == "ping") api_op = ApiOp::kPing;
  try {
    switch (api_op) {
      case ApiOp::kAcquire:
        return acquire(r, m);
      case ApiOp::kRelease:
        return release(r, m);
      case ApiOp::kStatus:
        return status(r, m);
      case ApiOp::kStats:
        return stats(r);
      case ApiOp::kPing:
        r.reply = protocol::ok_reply().u64("version", protocol::kVersion).finish();
        return {ApiOp::kPing, Outcome::kOk};
      case ApiOp::kInvalid:
        break;
    }
  } catch (const std::exception& e) {
    // The request's savepoint has rolled its writes back; the rest of the
    // batch goes on.
    storage_error("request answered unavailable", e);
    store_.resync();
    return fail(r, api_op, Outcome::kUnavailable, "storage failure; retry later");
  }
  return fail(r, ApiOp::kInvalid, Outcome::kUnknownOp, "unknown op '" + op + "'");
}

PoolApi::Handled PoolApi::reject(Request& r, ApiOp op, const Rejection& why) {
  return fail(r, op, Outcome::kBadRequest, why.to_string());
}

PoolApi::Handled PoolApi::fail(Request& r, ApiOp op, Outcome outcome, const std::string& detail) {
  r.reply = protocol::error_reply(outcome_name(outcome), detail);
  if (outcome == Outcome::kBadRequest || outcome == Outcome::kUnknownOp) {
    uint64_t suppressed = 0;
    if (warn_limit_.allow(outcome_name(outcome), clock_.now(), suppressed)) {
      spdlog::warn("request rejected op={} error={} detail=\"{}\" suppressed={}", op_name(op),
                   outcome_name(outcome), detail, suppressed);
    }
  }
  return {op, outcome};
}

PoolApi::Handled PoolApi::acquire(Request& r, const MapReader& m) {
  std::string pool, runner_id, task_id;
  uint64_t attempt = 0;
  Status s = m.str("pool", pool);
  if (s) s = m.str("runner_id", runner_id);
  if (s) s = m.str("task_id", task_id);
  if (s) s = m.u64("attempt", attempt);
  if (s && attempt == 0) s = Rejection{Reason::kBadValue, "attempt"};
  if (!s) return reject(r, ApiOp::kAcquire, s.error());

  store::Savepoint sp(store_.db());
  const AcquireResult res = store_.acquire(pool, runner_id, task_id, attempt);
  sp.release();
  const Outcome outcome = outcome_of(res.status);
  if (outcome != Outcome::kOk) return fail(r, ApiOp::kAcquire, outcome, res.detail);
  r.reply = protocol::ok_reply().u64("slot", res.slot).finish();
  if (res.status == AcquireStatus::kAcquired && spdlog::should_log(spdlog::level::debug)) {
    note(spdlog::level::debug,
         fmt::format("slot acquired runner_id={} task_id={} attempt={} pool={} slot={}", runner_id,
                     task_id, attempt, pool, res.slot));
  }
  return {ApiOp::kAcquire, Outcome::kOk};
}

PoolApi::Handled PoolApi::release(Request& r, const MapReader& m) {
  std::string runner_id;
  std::optional<std::string> pool;
  Status s = m.str("runner_id", runner_id);
  if (s) s = m.opt_str("pool", pool);
  if (!s) return reject(r, ApiOp::kRelease, s.error());

  store::Savepoint sp(store_.db());
  const std::vector<Holding> released = store_.release(runner_id, pool);
  sp.release();
  r.reply = protocol::ok_reply().boolean("released", !released.empty()).finish();
  if (spdlog::should_log(spdlog::level::debug)) {
    for (const Holding& h : released) note(spdlog::level::debug, "slot released " + describe(h));
  }
  return {ApiOp::kRelease, Outcome::kOk};
}

PoolApi::Handled PoolApi::status(Request& r, const MapReader& m) {
  std::optional<std::string> pool;
  if (Status s = m.opt_str("pool", pool); !s) return reject(r, ApiOp::kStatus, s.error());
  std::vector<PoolView> views;
  if (pool) {
    auto v = store_.pool_view(*pool);
    if (!v) return fail(r, ApiOp::kStatus, Outcome::kNotFound, "no pool '" + *pool + "'");
    views.push_back(std::move(*v));
  } else {
    views = store_.pool_views();
  }
  // Every pool's summary is kept; holders stop before the reply's budget.
  // 512 bytes per pool covers its summary keys (a name is at most 128 bytes).
  std::size_t budget = options_.max_reply_bytes > 64 ? options_.max_reply_bytes - 64 : 0;
  budget -= std::min(budget, views.size() * 512);
  bool truncated = false;
  std::vector<std::string> pools;
  pools.reserve(views.size());
  for (const PoolView& v : views) {
    std::vector<std::string> holders;
    if (!truncated) {
      store_.for_each_holder(v.name, [&](const Holding& h) {
        std::string enc = encode_holder(h);
        if (enc.size() + 1 > budget) {
          truncated = true;
          return false;
        }
        budget -= enc.size();
        holders.push_back(std::move(enc));
        return true;
      });
    }
    pools.push_back(MapBuilder()
                        .str("name", v.name)
                        .str("type", v.type)
                        .u64("slots", v.slots)
                        .u64("in_use", v.in_use)
                        .boolean("configured", v.configured)
                        .array("holders", holders)
                        .finish());
  }
  r.reply = protocol::ok_reply().array("pools", pools).boolean("truncated", truncated).finish();
  return {ApiOp::kStatus, Outcome::kOk};
}

PoolApi::Handled PoolApi::stats(Request& r) {
  MapBuilder b = protocol::ok_reply();
  for (std::size_t c = 0; c < kCounterCount; ++c) {
    b.u64(counter_name(static_cast<Counter>(c)), store_.counters()[c]);
  }
  b.u64("pools", store_.pools().size())
      .u64("in_use", store_.holdings_total())
      .u64("rejected_requests", metrics_.rejected_requests());
  r.reply = b.finish();
  return {ApiOp::kStats, Outcome::kOk};
}

void PoolApi::on_probe_results(std::vector<ProbeResult>& results) {
  std::vector<Holding> released;
  bool changes = false;
  for (const ProbeResult& res : results) {
    metrics_.count_probe(res.verdict);
    if (res.verdict == ProbeVerdict::kUnreachable) {
      uint64_t suppressed = 0;
      if (warn_limit_.allow("unreachable", clock_.now(), suppressed)) {
        spdlog::warn(
            "monitor unreachable, first-heartbeat check retried later runner_id={} task_id={} "
            "attempt={} suppressed={}",
            res.key.runner_id, res.key.task_id, res.key.attempt, suppressed);
      }
    } else {
      changes = true;
    }
  }
  if (!changes || (needs_resync_ && !try_resync())) return;
  try {
    store::Transaction tx(store_.db());
    for (const ProbeResult& res : results) {
      auto out = store_.apply_probe(res);
      released.insert(released.end(), std::make_move_iterator(out.begin()),
                      std::make_move_iterator(out.end()));
    }
    tx.commit();
  } catch (const std::exception& e) {
    storage_error("first-heartbeat checks not applied (retried later)", e);
    try_resync();
    return;
  }
  for (const Holding& h : released) {
    spdlog::warn("slot released: runner never reached the monitor {} grace_ms={}", describe(h),
                 grace_.count());
  }
  metrics_.publish(store_);
}

void PoolApi::tick() {
  if (needs_resync_ && !try_resync()) return;
  try {
    if (probe_ && probe_->queued() < options_.max_probe_queue) {
      for (ProbeKey& k : store_.grace_candidates(options_.max_probe_queue - probe_->queued())) {
        probe_->enqueue(std::move(k));
      }
    }
    const MonoTime now = clock_.now();
    if (now >= next_prune_) {
      next_prune_ = now + options_.prune_interval;
      store::Transaction tx(store_.db());
      const std::size_t n = store_.prune_events();
      tx.commit();
      if (n > 0) spdlog::debug("forgot old timeout event ids count={}", n);
    }
  } catch (const std::exception& e) {
    storage_error("periodic work skipped", e);
  }
}

}  // namespace rmon::pool
