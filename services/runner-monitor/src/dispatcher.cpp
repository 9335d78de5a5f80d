#include "dispatcher.hpp"

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "rmon/protocol/codec.hpp"
#include "rmon/zmq_util.hpp"

namespace rmon::monitor {

void Dispatcher::tick(std::vector<zmq::socket_t>& push, std::optional<MonoTime> planned) {
  outbox_.take_acks();  // committed by the ack thread
  const MonoTime now = clock_.now();
  const int64_t wall_ms = clock_.wall_ms();
  // Both guards decide every pass (each logs its own transitions).
  const TableCounters c = table_.counters();
  const auto live_count = [&](RunnerState st) {
    return static_cast<uint64_t>(std::max<int64_t>(0, c.by_state[static_cast<std::size_t>(st)]));
  };
  const int64_t drained_ns = stats_.ingest_drained_ns.load(std::memory_order_relaxed);
  std::optional<MonoTime> drained;
  if (drained_ns != 0) drained = MonoTime(std::chrono::nanoseconds(drained_ns));
  const bool stalled = stall_.hold(now, planned, drained, table_);
  const bool braked = brake_.hold(live_count(RunnerState::kRunning),
                                  live_count(RunnerState::kSuspect), now, wall_ms, table_);
  holding_ = stalled || braked;
  expired_.clear();
  table_.sweep(now, wall_ms, expired_, holding_);
  // How many are held: a scan, so at most twice a second and only while held.
  if (!holding_) {
    stats_.brake_held.store(0, std::memory_order_relaxed);
  } else if (now >= next_held_count_) {
    next_held_count_ = now + std::chrono::milliseconds(500);
    stats_.brake_held.store(table_.count_overdue(now), std::memory_order_relaxed);
  }
  if (!expired_.empty()) {
    log_timeouts(now);
    new_events_.clear();
    for (Expired& x : expired_) new_events_.push_back({std::move(x.event), x.deadline});
    outbox_.add(new_events_, now);  // durable before the first send; throws if not
  } else if (timeout_lines_held_ > 0 && now >= timeout_summary_at_) {
    log_timeouts(now);
  }
  outbox_.flush(clock_.now(), [&](std::size_t g, const PendingEvent& e, std::string_view bytes) {
    if (!send_frames(push[g], {bytes})) return false;
    GroupStats& gs = stats_.per_group[g];
    gs.sent.fetch_add(1, std::memory_order_relaxed);
    if (e.delivery == 1) {
      if (metrics_ && e.deadline) {
        const auto late = std::chrono::duration<double>(clock_.now() - *e.deadline).count();
        metrics_->observe_lateness(std::max(0.0, late));
      }
    } else {
      gs.redeliveries.fetch_add(1, std::memory_order_relaxed);
      note_redelivery(g, e);
    }
    return true;
  });
  log_redeliveries(now);
  publish_gauges();
}

void Dispatcher::note_redelivery(std::size_t g, const PendingEvent& e) {
  spdlog::debug("event redelivered group={} event_id={} delivery={}", outbox_.groups()[g],
                e.event->event_id, e.delivery);
  Redelivered& r = redelivered_[g];
  if (r.count++ == 0) r.first_id = e.event->event_id;
  r.max_delivery = std::max(r.max_delivery, e.delivery);
}

void Dispatcher::log_redeliveries(MonoTime now) {
  // A consumer that is down or not acknowledging gets its whole window
  // again every redelivery interval: one line per group per pass, and few
  // of those, not one per event.
  for (std::size_t g = 0; g < redelivered_.size(); ++g) {
    Redelivered& r = redelivered_[g];
    if (r.count == 0) continue;
    uint64_t lines_held = 0;
    if (redelivery_log_.allow(outbox_.groups()[g], now, lines_held)) {
      // held_back: redeliveries of earlier passes whose line was not written.
      spdlog::info(
          "events redelivered (not acknowledged in time) group={} count={} first_event_id={} "
          "max_delivery={} held_back={}",
          outbox_.groups()[g], r.count, r.first_id, r.max_delivery, r.held_back);
      r.held_back = 0;
    } else {
      r.held_back += r.count;
    }
    r.count = 0;
    r.max_delivery = 0;
  }
}

void Dispatcher::log_timeouts(MonoTime now) {
  // A burst of lines a second; past it one line a second says how many were
  // held back (a timeout storm must not flood the log).
  uint64_t suppressed = 0;
  for (const Expired& x : expired_) {
    if (!timeout_log_.allow("timeout", now, suppressed)) {
      if (timeout_lines_held_++ == 0) timeout_summary_at_ = now + std::chrono::seconds(1);
      continue;
    }
    const auto& r = x.event.runner;
    spdlog::warn(
        "runner timed out runner_id={} task_id={} attempt={} pool={} pool_type={} "
        "timeout_ms={} last_seq={} event_id={}",
        r.runner_id, r.task_id, r.attempt, r.pool, protocol::to_string(r.pool_type),
        x.event.timeout_ms, x.event.last_seq, x.event.event_id);
  }
  if (timeout_lines_held_ > 0 && now >= timeout_summary_at_) {
    spdlog::warn(
        "runner timed out lines held back: {} (rate limit {} a second; rmon_timeouts_total "
        "counts every timeout)",
        timeout_lines_held_, opts_.timeout_log_burst);
    timeout_lines_held_ = 0;
  }
}

void Dispatcher::publish_gauges() {
  const auto& groups = outbox_.groups();
  over_backlog_.resize(groups.size(), false);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const uint64_t pending = outbox_.pending(g);
    stats_.per_group[g].pending.store(pending, std::memory_order_relaxed);
    stats_.per_group[g].in_memory.store(outbox_.in_memory(g), std::memory_order_relaxed);
    stats_.per_group[g].unreadable.store(outbox_.quarantined(g), std::memory_order_relaxed);
    const bool over = pending > opts_.backlog_alert;
    if (over && !over_backlog_[g]) {
      stats_.backlog_alerts.fetch_add(1, std::memory_order_relaxed);
      spdlog::error(
          "consumer group is behind: {} events unacknowledged (threshold {}); they wait on disk "
          "and are delivered when it catches up group={}",
          pending, opts_.backlog_alert, groups[g]);
    } else if (!over && over_backlog_[g] && pending <= opts_.backlog_alert / 2) {
      spdlog::warn("consumer group caught up: {} events unacknowledged group={}", pending,
                   groups[g]);
    } else {
      continue;
    }
    over_backlog_[g] = over;
  }
}

void Dispatcher::run(std::vector<zmq::socket_t>& push, const std::atomic<bool>& stop,
                     Millis max_sleep,
                     const std::function<void(std::vector<zmq::socket_t>&)>& before_pass) {
  // The sleep also polls every PUSH socket (for input, which a PUSH socket
  // never has): zmq_poll processes a socket's pending commands, and nothing
  // else would while no event is sent. Without it, connections that an
  // unbind closed (before_pass) stay open until the next send: their pipes'
  // termination waits for this thread.
  std::vector<zmq::pollitem_t> items;
  std::optional<MonoTime> planned;
  while (!stop.load(std::memory_order_relaxed)) {
    table_.plan_wake(std::nullopt);  // awake: nobody needs to signal
    if (before_pass) before_pass(push);
    tick(push, planned);
    const MonoTime now = clock_.now();
    MonoTime wake = now + max_sleep;
    if (auto t = outbox_.next_due()) wake = std::min(wake, *t);
    if (auto t = table_.next_due()) wake = std::min(wake, *t);
    // While a guard holds, runners past their deadline are re-armed a check
    // later: no need to look sooner than that.
    if (holding_) wake = std::max(wake, now + RunnerTable::kCheckGrid / 2);
    // Publish the plan, then look again: anything armed from here on that is
    // earlier signals us, and anything armed before is seen now.
    table_.plan_wake(wake);
    if (auto t = table_.next_due()) {
      if (!holding_) wake = std::min(wake, *t);
    }
    planned = wake;
    // Round up: waking a little early would only spin.
    const auto wait_us = std::chrono::duration_cast<std::chrono::microseconds>(wake - now).count();
    const long timeout_ms = wait_us <= 0 ? 0 : (wait_us + 999) / 1000;
    items.assign(1, zmq::pollitem_t{nullptr, wake_.fd(), ZMQ_POLLIN, 0});
    for (auto& socket : push) items.push_back({socket.handle(), 0, ZMQ_POLLIN, 0});
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(timeout_ms));
    if ((items[0].revents & ZMQ_POLLIN) == 0) continue;
    planned.reset();  // woken early: not late
    wake_.drain();
  }
  table_.plan_wake(std::nullopt);
}

}  // namespace rmon::monitor
