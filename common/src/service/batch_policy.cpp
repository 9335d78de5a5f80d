#include "rmon/service/batch_policy.hpp"

#include <algorithm>

namespace rmon {

using protocol::MapReader;
using protocol::Reason;
using protocol::Status;

std::string RecentLosses::key(const protocol::RunnerInfo& r) {
  // Each id length-prefixed: no two (runner, task, attempt) share a key.
  std::string k;
  k.reserve(r.runner_id.size() + r.task_id.size() + 32);
  k.append(std::to_string(r.runner_id.size())).append(":").append(r.runner_id);
  k.append(std::to_string(r.task_id.size())).append(":").append(r.task_id);
  k.append(std::to_string(r.attempt));
  return k;
}

void RecentLosses::add(const protocol::RunnerInfo& r) {
  auto [it, added] = keys_.insert(key(r));
  if (!added) return;
  order_.push_back(&*it);
  if (order_.size() > capacity_) {
    keys_.erase(keys_.find(*order_.front()));
    order_.pop_front();
  }
}

bool RecentLosses::contains(const protocol::RunnerInfo& r) const { return keys_.count(key(r)) > 0; }

BatchPolicy::BatchPolicy(ServiceDomain& domain, ServiceStats& stats, const Clock& clock,
                         prometheus::Histogram* batch_size, MessageGate* gate)
    : domain_(domain), stats_(stats), clock_(clock), batch_size_(batch_size), gate_(gate) {}

template <class Fn>
bool BatchPolicy::item(const char* what, Fn&& fn) {
  if (optimistic_) {
    // No savepoint: a failure aborts the whole attempt, which apply() then
    // makes again with one savepoint per item.
    try {
      fn();
      return true;
    } catch (...) {
      item_failed_ = true;
      throw;
    }
  }
  try {
    store::Savepoint sp(domain_.db());
    fn();
    sp.release();
    return true;
  } catch (const std::exception& e) {
    // The savepoint rolled this item's writes back; the reload (inside the
    // batch's transaction) undoes its in-memory effects. If the reload fails
    // too, it throws and the whole batch rolls back.
    storage_error(what, e);
    domain_.reload();
    return false;
  }
}

void BatchPolicy::apply(Batch& b) {
  count_verdicts(b.verdicts);
  if (needs_reload_ && !reload()) {
    reset(b);
    answer_unavailable(b, "storage failure; retry later");
    return;
  }
  // Where a savepoint costs a round trip to a server (PostgreSQL), the batch
  // is first tried without them; only if an item fails is it rolled back
  // and applied again with one savepoint per item.
  optimistic_ = !domain_.db().cheap_savepoints();
  item_failed_ = false;
  bool committed = attempt(b);
  if (!committed && optimistic_ && item_failed_) {
    optimistic_ = false;
    committed = reload() && attempt(b);
    if (!committed && needs_reload_ && !item_failed_) {
      stats_.commit_failures.fetch_add(1, std::memory_order_relaxed);  // the reload failed
    }
  }
  optimistic_ = false;
  if (!committed) {
    // Nothing of the attempt stands, but each request keeps its op (the
    // requests counter counts it as that op's `unavailable`).
    b.notes.clear();
    b.took_back.clear();
    errors_.assign(b.requests.size(), {});
    answer_unavailable(b, "storage failure; retry later");
    reload();
    return;
  }
  b.committed = true;
  stats_.commits.fetch_add(1, std::memory_order_relaxed);
  count_duplicates(b);
  if (batch_size_)
    batch_size_->Observe(
        static_cast<double>(b.events.size() + b.verdicts.size() + b.requests.size()));
  for (std::size_t i = 0; i < b.requests.size(); ++i) {
    stats_.requests[ops_[i]][outcome_index(errors_[i])].fetch_add(1, std::memory_order_relaxed);
  }
  domain_.publish();
}

void BatchPolicy::reset(Batch& b) {
  b.notes.clear();
  b.took_back.clear();
  ops_.assign(b.requests.size(), ServiceStats::kMaxOps);
  errors_.assign(b.requests.size(), {});
  for (ConsumedEvent& e : b.events) e.ack = false;
}

bool BatchPolicy::attempt(Batch& b) {
  reset(b);
  bool committed = false;
  try {
    store::Transaction txn(domain_.db());
    for (std::size_t i = 0; i < b.events.size(); ++i) {
      ConsumedEvent& e = b.events[i];
      bool took = false;
      e.ack = item("timeout event not applied (the monitor redelivers it)",
                   [&] { took = domain_.apply_event(e.event, b.notes); });
      if (took) b.took_back.push_back(i);
    }
    for (const Judged& j : b.verdicts) {
      if (!takes_back(j.verdict)) continue;
      item("verdict not applied (retried next round)", [&] { domain_.apply_verdict(j, b.notes); });
    }
    const auto ops = domain_.ops();
    for (std::size_t i = 0; i < b.requests.size(); ++i) {
      Request& r = b.requests[i];
      Reply reply;
      auto m = MapReader::parse(r.body_view(), domain_.max_request_frame());
      Status s = m ? m->check_version() : Status(m.error());
      std::string op;
      if (s) s = m->str("op", op, protocol::kMaxShortString);
      if (!s) {
        const auto& why = s.error();
        reply =
            error(why.reason == Reason::kUnknownOp ? "unknown_op" : "bad_request", why.to_string());
      } else if (auto it = std::find(ops.begin(), ops.end(), op); it == ops.end()) {
        reply = error("unknown_op", "unknown op '" + op + "'");
      } else {
        ops_[i] = static_cast<std::size_t>(it - ops.begin());
        // The scope check may read the store: inside the item, like handle().
        if (!item("request answered unavailable", [&] {
              reply = allowed(r, ops_[i], op, m.value())
                          ? domain_.handle(ops_[i], m.value(), b.notes)
                          : error("forbidden", gate_->detail());
            })) {
          reply = error("unavailable", "storage failure; retry later");
        }
      }
      if (reply.error == "bad_request" || reply.error == "unknown_op") {
        uint64_t suppressed = 0;
        if (warn_limit_.allow("bad_request", clock_.now(), suppressed)) {
          spdlog::warn("{} request rejected op={} error={} suppressed={}", domain_.name(),
                       op.empty() ? "?" : op, reply.error, suppressed);
        }
      }
      r.reply = std::move(reply.frame);
      errors_[i] = reply.error;
    }
    txn.commit();
    committed = true;
  } catch (const std::exception& e) {
    if (optimistic_ && item_failed_) {
      // Not yet a failure anyone sees: the item by item pass counts and logs
      // the item that fails again.
      spdlog::debug("{} batch rolled back, applied again item by item error=\"{}\"", domain_.name(),
                    e.what());
    } else {
      storage_error("batch rolled back", e);
      stats_.commit_failures.fetch_add(1, std::memory_order_relaxed);
      needs_reload_ = true;
    }
  }
  return committed;
}

void BatchPolicy::release(Batch& b) {
  b.notes.flush();
  if (b.took_back.empty()) return;
  const int64_t now = clock_.wall_ms();
  for (std::size_t i : b.took_back) domain_.on_event_committed(b.events[i].event, now);
}

void BatchPolicy::lost(Batch& b) {
  for (Request& r : b.requests) {
    r.reply = protocol::error_reply("unavailable",
                                    "storage failure (the commit may not be durable); retry later");
  }
  for (ConsumedEvent& e : b.events) e.ack = false;
  b.notes.clear();
  b.took_back.clear();
  stats_.commits_lost.fetch_add(1, std::memory_order_relaxed);
  needs_reload_ = true;
}

void BatchPolicy::refuse(Batch& b, std::string_view detail) {
  reset(b);
  const auto ops = domain_.ops();
  for (std::size_t i = 0; i < b.requests.size(); ++i) {
    auto m = MapReader::parse(b.requests[i].body_view(), domain_.max_request_frame());
    std::string op;
    if (m && m->str("op", op, protocol::kMaxShortString)) {
      if (auto it = std::find(ops.begin(), ops.end(), op); it != ops.end()) {
        ops_[i] = static_cast<std::size_t>(it - ops.begin());
      }
    }
  }
  answer_unavailable(b, detail);
}

bool BatchPolicy::allowed(const Request& r, std::size_t op_index, std::string_view op,
                          const MapReader& m) {
  if (gate_ == nullptr) return true;
  const RequestScope scope = domain_.request_scope(op_index, m);
  return gate_->allow(
      r.body, op,
      scope.runner_id ? std::optional<std::string_view>(*scope.runner_id) : std::nullopt,
      scope.unowned);
}

void BatchPolicy::answer_unavailable(Batch& b, std::string_view detail) {
  for (std::size_t i = 0; i < b.requests.size(); ++i) {
    b.requests[i].reply = protocol::error_reply("unavailable", detail);
    stats_.requests[ops_[i]][outcome_index("unavailable")].fetch_add(1, std::memory_order_relaxed);
  }
  for (ConsumedEvent& e : b.events) e.ack = false;
}

bool BatchPolicy::reload() {
  try {
    domain_.reload();
    needs_reload_ = false;
  } catch (const std::exception& e) {
    needs_reload_ = true;
    storage_error("reloading state", e);
  }
  domain_.publish();
  return !needs_reload_;
}

void BatchPolicy::maintain() {
  if (needs_reload_ && !reload()) return;
  try {
    domain_.maintain(notes_);
    notes_.flush();
  } catch (const std::exception& e) {
    notes_.clear();
    storage_error("periodic work skipped", e);
    reload();
  }
  domain_.publish();
}

void BatchPolicy::count_verdicts(const std::vector<Judged>& verdicts) {
  uint64_t undecided = 0;
  for (const Judged& j : verdicts) {
    stats_.verdicts[static_cast<std::size_t>(j.verdict)].fetch_add(1, std::memory_order_relaxed);
    if (j.verdict == Verdict::kUndecided) ++undecided;
  }
  uint64_t suppressed = 0;
  if (undecided > 0 && warn_limit_.allow("undecided", clock_.now(), suppressed)) {
    spdlog::warn(
        "{} reconciliation undecided: a monitor did not answer, nothing taken back for these "
        "count={} suppressed={}",
        domain_.name(), undecided, suppressed);
  }
}

void BatchPolicy::count_duplicates(const Batch& b) {
  std::size_t next_took = 0;  // b.took_back is in event order
  for (std::size_t i = 0; i < b.events.size(); ++i) {
    const protocol::RunnerInfo& r = b.events[i].event.runner;
    if (next_took < b.took_back.size() && b.took_back[next_took] == i) {
      ++next_took;
      recent_losses_.add(r);
    } else if (b.events[i].ack && recent_losses_.contains(r)) {
      stats_.events_duplicate.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

void BatchPolicy::storage_error(const char* what, const std::exception& e) {
  stats_.storage_errors.fetch_add(1, std::memory_order_relaxed);
  uint64_t suppressed = 0;
  if (warn_limit_.allow("storage", clock_.now(), suppressed)) {
    spdlog::error("{} storage failure, {} error=\"{}\" suppressed={}", domain_.name(), what,
                  e.what(), suppressed);
  }
}

}  // namespace rmon
