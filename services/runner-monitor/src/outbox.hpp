#pragma once
// The outbox: timeout events waiting for each consumer group's
// acknowledgement.
//
// Durable: `add` writes a batch of events to the OutboxStore (one
// transaction, committed: with --sync normal it then survives a crash of the
// process, with --sync full, which fsyncs the commit, a power loss too)
// before any of them can be sent, and an event leaves the store only when
// every group has acknowledged it. After a crash the store hands back what
// was pending, with the same event ids.
//
// Acknowledgements are committed to the store by the ack thread
// (AckWriter), not here, and reach this object through its AckMailbox:
// `take_acks` applies what was posted (the event is not resent, the group's
// count drops). `ack` does both at once, for tests and tools.
//
// Bounded: each group keeps at most `window` pending events in memory; the
// rest wait on disk and are read back, oldest first, as acknowledgements
// make room. A group that is down or slow costs disk, never memory, and
// never holds up another group.
//
// `flush` hands due entries to a send function (non-blocking: it returns
// false when the socket would block, and the group is retried after a short
// backoff without counting a delivery). A sent entry is due again after the
// redelivery interval with `delivery` incremented, until acknowledged.
// Because the interval is one constant, sent entries become due in the order
// they were last sent, so each group's schedule is two FIFO queues (fresh,
// resend): no per-entry timer structure.
//
// Not thread-safe: owned by the monitor's dispatch thread, but for acks() and
// store(), which are, and which the ack thread uses.

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ack_mailbox.hpp"
#include "outbox_store.hpp"
#include "rmon/clock.hpp"
#include "rmon/protocol/codec.hpp"

namespace rmon::monitor {

struct OutboxOptions {
  std::vector<std::string> groups = {"task-queue", "pool-manager"};
  Millis redelivery_interval{5000};
  Millis blocked_backoff{50};  // retry delay for a group whose socket would block
  std::size_t window = 4096;   // pending events per group held in memory
};

struct PendingEvent {
  std::shared_ptr<const protocol::TimeoutEvent> event;  // shared by every group
  std::optional<MonoTime> deadline;  // the deadline the runner missed (unknown once restored)
  int64_t seq = 0;                   // in the store
  uint64_t delivery = 0;             // sends so far
  int64_t due_ns = 0;                // when to send next (monotonic)
  bool acked = false;
};

// A new event and the deadline its runner missed.
struct NewEvent {
  protocol::TimeoutEvent event;
  MonoTime deadline;
};

enum class AckResult : uint8_t { kAcked, kUnknownGroup, kUnknownEvent };

class Outbox {
 public:
  // Without a store the outbox keeps its events in an SQLite database in
  // memory (tests). Events the store holds are pending from the start: due
  // at once, with delivery counted from 1 (they may have been sent before).
  explicit Outbox(OutboxOptions opts, std::unique_ptr<OutboxStore> store = nullptr);

  const std::vector<std::string>& groups() const { return opts_.groups; }

  // Writes `events` durably (one transaction; throws if the disk refuses),
  // then queues each for every group, due now.
  void add(std::vector<NewEvent>& events, MonoTime now);
  void add(protocol::TimeoutEvent event, MonoTime deadline, MonoTime now);

  // Sends every entry due at `now`. `send(group, entry, bytes)` returns true
  // when the socket took the message; `entry.delivery` is already the number
  // this send carries. Returns the number of messages sent.
  template <class SendFn>
  std::size_t flush(MonoTime now, SendFn&& send);

  // Applies the acknowledgements the ack thread committed and posted to
  // acks() since the last call.
  void take_acks();
  // Commits acknowledgements (group name, event id) in one transaction and
  // applies them at once, as the ack thread and take_acks() would; `out[i]`
  // says what became of acks[i]. `wall_ms` dates done events.
  void ack(const std::vector<std::pair<std::string, std::string>>& acks, int64_t wall_ms,
           std::vector<AckResult>& out);
  AckResult ack(std::string_view group, std::string_view event_id, int64_t wall_ms = 0);

  // Events group g has not acknowledged (on disk; its backlog).
  uint64_t pending(std::size_t group) const { return groups_[group].pending; }
  uint64_t pending_total() const;
  // Of those, how many are held in memory.
  std::size_t in_memory(std::size_t group) const { return groups_[group].by_id.size(); }
  uint64_t redeliveries(std::size_t group) const { return groups_[group].redeliveries; }
  // Stored events group g met unreadable, quarantined by the store (no longer
  // pending; OutboxStore), since this object was built.
  uint64_t quarantined(std::size_t group) const { return groups_[group].quarantined; }
  // The earliest instant an entry becomes due (drops acked entries it passes).
  std::optional<MonoTime> next_due();

  OutboxStore& store() { return *store_; }
  AckMailbox& acks() { return acks_; }

 private:
  struct Group {
    std::unordered_map<std::string, std::shared_ptr<PendingEvent>> by_id;  // in memory
    // Never sent (in this process), in seq order.
    std::deque<std::shared_ptr<PendingEvent>> fresh;
    // Sent, in due order (due = last send + the constant interval). Acked
    // entries stay until they reach the front and are dropped there.
    std::deque<std::shared_ptr<PendingEvent>> resend;
    uint64_t pending = 0;     // on disk, in memory or not
    int64_t loaded_upto = 0;  // every pending event up to this seq is in memory
    int64_t blocked_until_ns = 0;
    uint64_t redeliveries = 0;
    uint64_t quarantined = 0;
  };
  static int64_t ns(MonoTime t) { return t.time_since_epoch().count(); }
  // Reads group g's oldest events not yet in memory, while there is room.
  void refill(std::size_t g, MonoTime now);
  void queue(Group& grp, std::shared_ptr<PendingEvent> e);
  std::optional<std::size_t> group_index(std::string_view name) const;

  const OutboxOptions opts_;
  std::unique_ptr<OutboxStore> store_;
  AckMailbox acks_;
  std::vector<Group> groups_;
  int64_t restored_upto_ = 0;  // events up to this seq were on file at start
  std::string scratch_;
  std::vector<std::pair<std::size_t, std::string>> ack_batch_;
  std::vector<bool> acked_;
  std::vector<AckedEvent> taken_;
};

template <class SendFn>
std::size_t Outbox::flush(MonoTime now, SendFn&& send) {
  const int64_t now_ns = ns(now);
  const int64_t interval_ns = std::chrono::nanoseconds(opts_.redelivery_interval).count();
  std::size_t sent = 0;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    Group& grp = groups_[g];
    if (grp.blocked_until_ns > now_ns) continue;
    refill(g, now);
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
