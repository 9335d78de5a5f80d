#include "dispatcher.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "rmon/protocol/codec.hpp"
#include "rmon/zmq_util.hpp"

namespace rmon::monitor {

WakeSignal::WakeSignal() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

WakeSignal::~WakeSignal() { ::close(fd_); }

void WakeSignal::signal() {
  const uint64_t one = 1;
  // EAGAIN only when the counter is saturated: a wake-up is pending anyway.
  (void)!::write(fd_, &one, sizeof one);
}

void WakeSignal::drain() {
  uint64_t count;
  (void)!::read(fd_, &count, sizeof count);
}

void Dispatcher::tick(std::vector<zmq::socket_t>& push) {
  const MonoTime now = clock_.now();
  expired_.clear();
  table_.sweep(now, clock_.wall_ms(), expired_);
  for (Expired& x : expired_) {
    const auto& r = x.event.runner;
    spdlog::warn(
        "runner timed out runner_id={} task_id={} attempt={} pool={} pool_type={} "
        "timeout_ms={} last_seq={} event_id={}",
        r.runner_id, r.task_id, r.attempt, r.pool, protocol::to_string(r.pool_type),
        x.event.timeout_ms, x.event.last_seq, x.event.event_id);
    outbox_.add(std::move(x.event), x.deadline, now);
  }
  outbox_.flush(clock_.now(), [&](std::size_t g, const PendingEvent& e, std::string_view bytes) {
    if (!send_frames(push[g], {bytes})) return false;
    GroupStats& gs = stats_.per_group[g];
    gs.sent.fetch_add(1, std::memory_order_relaxed);
    if (e.delivery == 1) {
      if (metrics_) {
        const auto late = std::chrono::duration<double>(clock_.now() - e.deadline).count();
        metrics_->observe_lateness(std::max(0.0, late));
      }
    } else {
      gs.redeliveries.fetch_add(1, std::memory_order_relaxed);
      spdlog::info("event redelivered group={} event_id={} delivery={}", outbox_.groups()[g],
                   e.event->event_id, e.delivery);
    }
    return true;
  });
  publish_gauges();
}

void Dispatcher::handle_ack(std::string_view frame) {
  auto ack = protocol::decode_ack(frame);
  uint64_t suppressed = 0;
  if (!ack) {
    stats_.ack_frames_rejected.fetch_add(1, std::memory_order_relaxed);
    if (warn_limit_.allow("ack", clock_.now(), suppressed)) {
      spdlog::warn("ack rejected reason={} suppressed={}", ack.error().to_string(), suppressed);
    }
    return;
  }
  switch (outbox_.ack(ack->group, ack->event_id)) {
    case AckResult::kAcked: {
      const auto& groups = outbox_.groups();
      const auto g = std::find(groups.begin(), groups.end(), ack->group) - groups.begin();
      stats_.per_group[g].acks.fetch_add(1, std::memory_order_relaxed);
      spdlog::debug("event acknowledged group={} event_id={}", ack->group, ack->event_id);
      break;
    }
    case AckResult::kUnknownGroup:
    case AckResult::kUnknownEvent:
      // A repeated ack, or one for an event this monitor never sent: harmless.
      stats_.acks_unknown.fetch_add(1, std::memory_order_relaxed);
      if (warn_limit_.allow("ack_unknown", clock_.now(), suppressed)) {
        spdlog::warn("ack for unknown event group={} event_id={} suppressed={}", ack->group,
                     ack->event_id, suppressed);
      }
      break;
  }
  publish_gauges();
}

void Dispatcher::publish_gauges() {
  for (std::size_t g = 0; g < outbox_.groups().size(); ++g) {
    stats_.per_group[g].pending.store(outbox_.pending(g), std::memory_order_relaxed);
  }
}

void Dispatcher::run(std::vector<zmq::socket_t>& push, zmq::socket_t& acks,
                     const std::atomic<bool>& stop, Millis max_sleep) {
  std::vector<zmq::message_t> frames;
  zmq::pollitem_t items[2] = {{acks.handle(), 0, ZMQ_POLLIN, 0},
                              {nullptr, wake_.fd(), ZMQ_POLLIN, 0}};
  while (!stop.load(std::memory_order_relaxed)) {
    table_.plan_wake(std::nullopt);  // awake: nobody needs to signal
    tick(push);
    const MonoTime now = clock_.now();
    MonoTime wake = now + max_sleep;
    if (auto t = outbox_.next_due()) wake = std::min(wake, *t);
    if (auto t = table_.next_due()) wake = std::min(wake, *t);
    // Publish the plan, then look again: anything armed from here on that is
    // earlier signals us, and anything armed before is seen now.
    table_.plan_wake(wake);
    if (auto t = table_.next_due()) wake = std::min(wake, *t);
    // Round up: waking a little early would only spin.
    const auto wait_us = std::chrono::duration_cast<std::chrono::microseconds>(wake - now).count();
    const long timeout_ms = wait_us <= 0 ? 0 : (wait_us + 999) / 1000;
    if (zmq::poll(items, 2, std::chrono::milliseconds(timeout_ms)) == 0) continue;
    if (items[1].revents & ZMQ_POLLIN) wake_.drain();
    if (items[0].revents & ZMQ_POLLIN) {
      while (recv_frames(acks, frames, zmq::recv_flags::dontwait)) {
        if (frames.size() != 1) {
          stats_.ack_frames_rejected.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        handle_ack(frames[0].to_string_view());
      }
    }
  }
  table_.plan_wake(std::nullopt);
}

}  // namespace rmon::monitor
