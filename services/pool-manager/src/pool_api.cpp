#include "pool_api.hpp"

#include <spdlog/spdlog.h>

#include "rmon/protocol/codec.hpp"

namespace rmon::pool {

using protocol::MapBuilder;
using protocol::MapReader;
using protocol::Reason;
using protocol::Rejection;
using protocol::Status;

namespace {

constexpr std::string_view kOpNames[] = {"acquire", "release", "status", "stats", "ping"};

// The error code of a refused acquire; "" when it succeeded.
std::string_view error_code(AcquireStatus s) {
  switch (s) {
    case AcquireStatus::kAcquired:
    case AcquireStatus::kAlreadyHeld:
      return "";
    case AcquireStatus::kNotFound:
      return "not_found";
    case AcquireStatus::kStaleAttempt:
      return "stale_attempt";
    case AcquireStatus::kConflict:
      return "conflict";
    case AcquireStatus::kPoolFull:
      return "pool_full";
  }
  return "internal";
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

std::string describe_holding(const Holding& h) {
  return fmt::format("runner_id={} task_id={} attempt={} pool={} slot={}", h.runner_id, h.task_id,
                     h.attempt, h.pool, h.slot);
}

}  // namespace

PoolApi::PoolApi(PoolStore& store, const ServiceStats& service, const Clock& clock,
                 ApiOptions options)
    : store_(store),
      service_(service),
      clock_(clock),
      options_(options),
      metrics_(store.pools()),
      next_prune_(clock.now()) {
  metrics_.publish(store_);
}

std::span<const std::string_view> PoolApi::ops() const { return kOpNames; }

RequestScope PoolApi::request_scope(std::size_t op, const MapReader& m) {
  const auto o = static_cast<ApiOp>(op);
  return o == ApiOp::kAcquire || o == ApiOp::kRelease ? runner_id_scope(m) : RequestScope{};
}

Reply PoolApi::handle(std::size_t op, const MapReader& m, Notes& notes) {
  switch (static_cast<ApiOp>(op)) {
    case ApiOp::kAcquire:
      return acquire(m, notes);
    case ApiOp::kRelease:
      return release(m, notes);
    case ApiOp::kStatus:
      return status(m);
    case ApiOp::kStats:
      return stats();
    case ApiOp::kPing:
      return ok(protocol::ok_reply().u64("version", protocol::kVersion));
  }
  return error("internal", "unhandled op");
}

bool PoolApi::apply_event(const protocol::TimeoutEvent& ev, Notes& notes) {
  EventOutcome out = store_.apply_timeout(ev);
  for (const Holding& h : out.released) {
    notes.add(spdlog::level::info, "slot released: runner timed out " + describe_holding(h) +
                                       " event_id=" + ev.event_id);
  }
  if (out.result != EventResult::kApplied && notes.enabled(spdlog::level::debug)) {
    notes.add(spdlog::level::debug,
              fmt::format("timeout event ignored reason={} event_id={} runner_id={} task_id={} "
                          "attempt={}",
                          out.result == EventResult::kRepeated ? "repeated" : "no_holding",
                          ev.event_id, ev.runner.runner_id, ev.runner.task_id, ev.runner.attempt));
  }
  return !out.released.empty();
}

bool PoolApi::apply_verdict(const Judged& j, Notes& notes) {
  const std::vector<Holding> released = store_.apply_verdict(j);
  for (const Holding& h : released) {
    notes.add(spdlog::level::warn,
              fmt::format("slot released by reconciliation verdict={} {} why=\"{}\"",
                          to_string(j.verdict), describe_holding(h), j.why));
  }
  return !released.empty();
}

CandidatePage PoolApi::reconcile_candidates(const ReconcileCursor& from, std::size_t max) {
  return store_.reconcile_candidates(from, max);
}

void PoolApi::on_event_committed(const protocol::TimeoutEvent& ev, int64_t now_wall_ms) {
  if (on_released) {
    on_released(ev, now_wall_ms - (ev.last_heartbeat_ms + static_cast<int64_t>(ev.timeout_ms)));
  }
}

void PoolApi::maintain(Notes& notes) {
  refresh_counts(store::kSharedRefreshEvery);
  const MonoTime now = clock_.now();
  if (now < next_prune_) return;
  next_prune_ = now + options_.prune_interval;
  // Bounded chunks, each its own transaction, until none is left.
  std::size_t total = 0;
  for (int round = 0; round < 100; ++round) {
    store::Transaction tx(store_.db());
    const std::size_t n = store_.prune_events();
    tx.commit();
    total += n;
    if (n == 0) break;
  }
  if (total > 0 && notes.enabled(spdlog::level::debug)) {
    notes.add(spdlog::level::debug, "forgot old timeout event ids count=" + std::to_string(total));
  }
}

std::string PoolApi::describe() const {
  std::string pools;
  for (const PoolSpec& p : store_.pools()) {
    pools += (pools.empty() ? "" : ",") + p.name + "=" + std::string(protocol::to_string(p.type)) +
             ":" + std::to_string(p.slots);
  }
  return fmt::format("pools={} holdings={}", pools, store_.holdings_total());
}

Reply PoolApi::acquire(const MapReader& m, Notes& notes) {
  std::string pool, runner_id, task_id;
  uint64_t attempt = 0;
  Status s = m.str("pool", pool);
  if (s) s = m.str("runner_id", runner_id);
  if (s) s = m.str("task_id", task_id);
  if (s) s = m.u64("attempt", attempt);
  if (s && attempt == 0) s = Rejection{Reason::kBadValue, "attempt"};
  if (!s) return error("bad_request", s.error().to_string());

  const AcquireResult res = store_.acquire(pool, runner_id, task_id, attempt);
  if (const std::string_view code = error_code(res.status); !code.empty()) {
    return error(code, res.detail);
  }
  if (res.status == AcquireStatus::kAcquired && notes.enabled(spdlog::level::debug)) {
    notes.add(spdlog::level::debug,
              fmt::format("slot acquired runner_id={} task_id={} attempt={} pool={} slot={}",
                          runner_id, task_id, attempt, pool, res.slot));
  }
  return ok(protocol::ok_reply().u64("slot", res.slot));
}

Reply PoolApi::release(const MapReader& m, Notes& notes) {
  std::string runner_id;
  std::optional<std::string> pool;
  Status s = m.str("runner_id", runner_id);
  if (s) s = m.opt_str("pool", pool);
  if (!s) return error("bad_request", s.error().to_string());

  const std::vector<Holding> released = store_.release(runner_id, pool);
  if (notes.enabled(spdlog::level::debug)) {
    for (const Holding& h : released)
      notes.add(spdlog::level::debug, "slot released " + describe_holding(h));
  }
  return ok(protocol::ok_reply().boolean("released", !released.empty()));
}

Reply PoolApi::status(const MapReader& m) {
  std::optional<std::string> pool;
  if (Status s = m.opt_str("pool", pool); !s) return error("bad_request", s.error().to_string());
  std::vector<PoolView> views;
  if (pool) {
    auto v = store_.pool_view(*pool);
    if (!v) return error("not_found", "no pool '" + *pool + "'");
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
  return ok(protocol::ok_reply().array("pools", pools).boolean("truncated", truncated));
}

void PoolApi::refresh_counts(std::chrono::steady_clock::duration max_age) {
  if (refresh_due_(clock_.now(), max_age)) store_.refresh();
}

Reply PoolApi::stats() {
  refresh_counts(store::kSharedStatsFresh);
  MapBuilder b = protocol::ok_reply();
  for (std::size_t c = 0; c < kCounterCount; ++c) {
    b.u64(counter_name(static_cast<Counter>(c)), store_.counters()[c]);
  }
  b.u64("pools", store_.pools().size())
      .u64("in_use", store_.holdings_total())
      .u64("rejected_requests", service_.rejected_requests())
      .u64("undecided", service_.undecided())
      .u64("events_duplicate", service_.events_duplicate.load(std::memory_order_relaxed));
  return ok(b);
}

}  // namespace rmon::pool
