#include "outbox.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>

namespace rmon::monitor {

Outbox::Outbox(OutboxOptions opts, std::unique_ptr<OutboxStore> store)
    : opts_(std::move(opts)), store_(std::move(store)), groups_(opts_.groups.size()) {
  if (opts_.groups.empty()) throw std::invalid_argument("at least one consumer group is needed");
  if (opts_.redelivery_interval.count() <= 0) {
    throw std::invalid_argument("redelivery interval must be positive");
  }
  if (opts_.window == 0) throw std::invalid_argument("outbox window must be at least 1");
  if (!store_) store_ = OutboxStore::in_memory(opts_.groups);
  if (store_->groups() != opts_.groups) {
    throw std::invalid_argument("outbox store and options name different groups");
  }
  const std::vector<uint64_t> counts = store_->pending_counts();
  for (std::size_t g = 0; g < groups_.size(); ++g) groups_[g].pending = counts[g];
  restored_upto_ = std::numeric_limits<int64_t>::max();  // until the first append
}

std::optional<std::size_t> Outbox::group_index(std::string_view name) const {
  for (std::size_t i = 0; i < opts_.groups.size(); ++i) {
    if (opts_.groups[i] == name) return i;
  }
  return std::nullopt;
}

void Outbox::queue(Group& grp, std::shared_ptr<PendingEvent> e) {
  grp.loaded_upto = std::max(grp.loaded_upto, e->seq);
  grp.by_id.emplace(e->event->event_id, e);
  grp.fresh.push_back(std::move(e));
}

void Outbox::add(std::vector<NewEvent>& events, MonoTime now) {
  if (events.empty()) return;
  std::vector<StoredEvent> stored;
  stored.reserve(events.size());
  for (NewEvent& n : events) stored.push_back({0, std::move(n.event)});
  store_->append(stored);  // durable before anything is sent
  if (restored_upto_ == std::numeric_limits<int64_t>::max())
    restored_upto_ = stored.front().seq - 1;
  for (std::size_t i = 0; i < stored.size(); ++i) {
    auto shared = std::make_shared<const protocol::TimeoutEvent>(std::move(stored[i].event));
    for (Group& grp : groups_) {
      // In memory only when nothing older waits on disk and there is room;
      // otherwise refill reads it back in its turn.
      const bool caught_up = grp.by_id.size() == grp.pending;
      ++grp.pending;
      if (!caught_up || grp.by_id.size() >= opts_.window) continue;
      auto e = std::make_shared<PendingEvent>();
      e->event = shared;
      e->deadline = events[i].deadline;
      e->seq = stored[i].seq;
      e->due_ns = ns(now);
      queue(grp, std::move(e));
    }
  }
}

void Outbox::add(protocol::TimeoutEvent event, MonoTime deadline, MonoTime now) {
  std::vector<NewEvent> one;
  one.push_back({std::move(event), deadline});
  add(one, now);
}

void Outbox::refill(std::size_t g, MonoTime now) {
  Group& grp = groups_[g];
  if (grp.by_id.size() >= opts_.window || grp.by_id.size() >= grp.pending) return;
  std::size_t quarantined = 0;
  std::vector<StoredEvent> loaded =
      store_->load(g, grp.loaded_upto, opts_.window - grp.by_id.size(), quarantined);
  // Unreadable rows the store quarantined: no longer pending.
  grp.pending -= std::min<uint64_t>(grp.pending, quarantined);
  grp.quarantined += quarantined;
  for (StoredEvent& s : loaded) {
    auto e = std::make_shared<PendingEvent>();
    // An event from before this start may have been sent already: count it
    // as sent once, so its next send says it is a redelivery.
    e->delivery = s.seq <= restored_upto_ ? 1 : 0;
    e->seq = s.seq;
    e->due_ns = ns(now);
    e->event = std::make_shared<const protocol::TimeoutEvent>(std::move(s.event));
    queue(grp, std::move(e));
  }
  // Nothing more on disk but the count says there is: trust the disk,
  // unless acknowledgements are under way, which the disk may show already
  // and our count not yet. (Unreadable rows no longer get here: quarantined
  // above, counted once.)
  if (loaded.empty() && acks_.settled()) grp.pending = grp.by_id.size();
}

void Outbox::take_acks() {
  acks_.take(taken_);
  for (const AckedEvent& a : taken_) {
    Group& grp = groups_[a.group];
    if (grp.pending > 0) --grp.pending;
    auto it = grp.by_id.find(a.event_id);
    if (it == grp.by_id.end()) continue;  // still on disk only
    it->second->acked = true;             // the queues drop it lazily
    grp.by_id.erase(it);
  }
  taken_.clear();
}

void Outbox::ack(const std::vector<std::pair<std::string, std::string>>& acks, int64_t wall_ms,
                 std::vector<AckResult>& out) {
  out.assign(acks.size(), AckResult::kUnknownEvent);
  ack_batch_.clear();
  std::vector<std::size_t> index;  // into acks
  for (std::size_t i = 0; i < acks.size(); ++i) {
    const auto g = group_index(acks[i].first);
    if (!g) {
      out[i] = AckResult::kUnknownGroup;
      continue;
    }
    ack_batch_.emplace_back(*g, acks[i].second);
    index.push_back(i);
  }
  acks_.begin();
  try {
    store_->ack(ack_batch_, wall_ms, acked_);
  } catch (...) {
    acks_.abandon();
    throw;
  }
  std::vector<AckedEvent> posted;
  for (std::size_t k = 0; k < ack_batch_.size(); ++k) {
    if (!acked_[k]) continue;
    out[index[k]] = AckResult::kAcked;
    posted.push_back({ack_batch_[k].first, ack_batch_[k].second});
  }
  acks_.post(posted);
  take_acks();
}

AckResult Outbox::ack(std::string_view group, std::string_view event_id, int64_t wall_ms) {
  std::vector<AckResult> out;
  ack({{std::string(group), std::string(event_id)}}, wall_ms, out);
  return out[0];
}

uint64_t Outbox::pending_total() const {
  uint64_t n = 0;
  for (const Group& g : groups_) n += g.pending;
  return n;
}

std::optional<MonoTime> Outbox::next_due() {
  std::optional<int64_t> best;
  for (Group& g : groups_) {
    // Events waiting on disk with room to read them are due now.
    if (g.by_id.size() < g.pending && g.by_id.size() < opts_.window) {
      best = std::min(best.value_or(g.blocked_until_ns), g.blocked_until_ns);
    }
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
