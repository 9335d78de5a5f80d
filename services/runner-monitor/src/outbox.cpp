#include "outbox.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>

namespace rmon::monitor {

Outbox::Outbox(OutboxOptions opts) : opts_(std::move(opts)), groups_(opts_.groups.size()) {
  if (opts_.groups.empty()) throw std::invalid_argument("at least one consumer group is needed");
  if (opts_.redelivery_interval.count() <= 0) {
    throw std::invalid_argument("redelivery interval must be positive");
  }
}

void Outbox::add(protocol::TimeoutEvent event, MonoTime deadline, MonoTime now) {
  auto shared = std::make_shared<const protocol::TimeoutEvent>(std::move(event));
  for (Group& g : groups_) {
    auto e = std::make_shared<PendingEvent>();
    e->event = shared;
    e->deadline = deadline;
    e->due_ns = ns(now);
    g.fresh.push_back(e);
    g.by_id.emplace(shared->event_id, std::move(e));
  }
}

AckResult Outbox::ack(std::string_view group, std::string_view event_id) {
  for (std::size_t i = 0; i < groups_.size(); ++i) {
    if (opts_.groups[i] != group) continue;
    Group& g = groups_[i];
    auto it = g.by_id.find(std::string(event_id));
    if (it == g.by_id.end()) return AckResult::kUnknownEvent;
    it->second->acked = true;  // the queue drops it lazily
    g.by_id.erase(it);
    return AckResult::kAcked;
  }
  return AckResult::kUnknownGroup;
}

std::size_t Outbox::pending_total() const {
  std::size_t n = 0;
  for (const Group& g : groups_) n += g.by_id.size();
  return n;
}

std::optional<MonoTime> Outbox::next_due() {
  std::optional<int64_t> best;
  for (Group& g : groups_) {
    for (auto* queue : {&g.fresh, &g.resend}) {
      // Acked entries are dropped lazily, here and in flush.
      while (!queue->empty() && queue->front()->acked) queue->pop_front();
      if (queue->empty()) continue;
      const int64_t due = std::max(queue->front()->due_ns, g.blocked_until_ns);
      if (!best || due < *best) best = due;
    }
  }
  if (!best) return std::nullopt;
  return MonoTime(std::chrono::nanoseconds(*best));
}

}  // namespace rmon::monitor
