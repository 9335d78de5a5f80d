#pragma once
// The outbox: timeout events waiting for each consumer group's
// acknowledgement.
//
// Every event is queued once per group. `flush` hands due entries to a send
// function (non-blocking: it returns false when the socket would block, and
// the group is retried after a short backoff without counting a delivery).
// A sent entry is due again after the redelivery interval with `delivery`
// incremented, until `ack` removes it. Because the interval is one constant,
// sent entries become due in the order they were last sent, so each group's
// schedule is two FIFO queues (fresh, resend): no per-entry timer structure.
//
// In memory only (durability across restarts is a later layer). Not
// thread-safe: owned by the monitor's dispatch thread.

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "rmon/clock.hpp"
#include "rmon/protocol/codec.hpp"

namespace rmon::monitor {

struct OutboxOptions {
  std::vector<std::string> groups = {"task-queue", "pool-manager"};
  Millis redelivery_interval{5000};
  Millis blocked_backoff{50};  // retry delay for a group whose socket would block
};

struct PendingEvent {
  std::shared_ptr<const protocol::TimeoutEvent> event;  // shared by every group
  MonoTime deadline;                                    // the deadline the runner missed
  uint64_t delivery = 0;                                // sends so far
  int64_t due_ns = 0;                                   // when to send next (monotonic)
  bool acked = false;
};

enum class AckResult : uint8_t { kAcked, kUnknownGroup, kUnknownEvent };

class Outbox {
 public:
  explicit Outbox(OutboxOptions opts);

  const std::vector<std::string>& groups() const { return opts_.groups; }

  // Queues `event` for every group, due now.
  void add(protocol::TimeoutEvent event, MonoTime deadline, MonoTime now);

  // Sends every entry due at `now`. `send(group, entry, bytes)` returns true
  // when the socket took the message; `entry.delivery` is already the number
  // this send carries. Returns the number of messages sent.
  template <class SendFn>
  std::size_t flush(MonoTime now, SendFn&& send);

  AckResult ack(std::string_view group, std::string_view event_id);

  std::size_t pending(std::size_t group) const { return groups_[group].by_id.size(); }
  std::size_t pending_total() const;
  uint64_t redeliveries(std::size_t group) const { return groups_[group].redeliveries; }
  // The earliest instant an entry becomes due (drops acked entries it passes).
  std::optional<MonoTime> next_due();

 private:
  struct Group {
    std::unordered_map<std::string, std::shared_ptr<PendingEvent>> by_id;
    // Never sent, due now, in arrival order.
    std::deque<std::shared_ptr<PendingEvent>> fresh;
    // Sent, in due order (due = last send + the constant interval). Acked
    // entries stay until they reach the front and are dropped there.
    std::deque<std::shared_ptr<PendingEvent>> resend;
    int64_t blocked_until_ns = 0;
    uint64_t redeliveries = 0;
  };
  static int64_t ns(MonoTime t) { return t.time_since_epoch().count(); }

  const OutboxOptions opts_;
  std::vector<Group> groups_;
  std::string scratch_;
};

template <class SendFn>
std::size_t Outbox::flush(MonoTime now, SendFn&& send) {
  const int64_t now_ns = ns(now);
  const int64_t interval_ns = std::chrono::nanoseconds(opts_.redelivery_interval).count();
  std::size_t sent = 0;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    Group& grp = groups_[g];
    if (grp.blocked_until_ns > now_ns) continue;
    // New events first, then redeliveries that are due.
    for (auto* queue : {&grp.fresh, &grp.resend}) {
      while (!queue->empty()) {
        std::shared_ptr<PendingEvent> e = queue->front();
        if (e->acked) {
          queue->pop_front();
          continue;
        }
        if (e->due_ns > now_ns) break;
        protocol::TimeoutEvent ev = *e->event;
        ev.delivery = e->delivery + 1;
        scratch_ = protocol::encode_timeout_event(ev);
        ++e->delivery;
        if (!send(g, *e, std::string_view(scratch_))) {
          --e->delivery;
          grp.blocked_until_ns = now_ns + std::chrono::nanoseconds(opts_.blocked_backoff).count();
          break;
        }
        ++sent;
        if (e->delivery > 1) ++grp.redeliveries;
        queue->pop_front();
        e->due_ns = now_ns + interval_ns;
        grp.resend.push_back(std::move(e));
      }
      if (grp.blocked_until_ns > now_ns) break;
    }
  }
  return sent;
}

}  // namespace rmon::monitor
