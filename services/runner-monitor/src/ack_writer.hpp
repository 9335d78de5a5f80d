#pragma once
// The ack thread: the outbox's storage work that must not delay a timeout.
// It reads the consumers' acknowledgements from the PULL socket, commits
// them to the OutboxStore in transactions of at most `chunk` acks, and posts
// what each committed to the Outbox's AckMailbox (then wakes the dispatch
// thread, which applies them in memory). Every `prune_every` it forgets done
// events past their retention, `prune_chunk` per transaction, between
// batches of acks.
//
// The dispatch thread thus only sweeps, appends new events (they must be on
// disk before their first send: the at-least-once promise) and sends. The
// store lets its append go ahead of the next chunk here, so a timeout waits
// at most for one chunk already under way.
//
// Owns no socket; run() uses the one it is given, on one thread. The
// counters it keeps are in MonitorStats.

#include <atomic>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <zmq.hpp>

#include "ack_mailbox.hpp"
#include "monitor_stats.hpp"
#include "outbox_store.hpp"
#include "rmon/clock.hpp"
#include "rmon/logging.hpp"
#include "rmon/service/server_security.hpp"

namespace rmon::monitor {

// Transactions stay small because a timeout's append may wait for one: on
// this project's test machine (loaded, --sync normal) 256 acks took 1.2-1.6
// ms, 4096 (the batch the dispatch thread used to commit at once) 13-31 ms,
// and deleting 256 done events about 2 ms.
struct AckWriterOptions {
  std::size_t chunk = 256;                // acks per transaction
  std::size_t batch = 4096;               // frames read from the socket at a time
  std::size_t prune_chunk = 256;          // done events deleted per transaction
  Millis prune_every{10'000};             // how often done events are pruned
  Millis tombstone_retention{1'200'000};  // done events kept (see OutboxStore)
};

class AckWriter {
 public:
  // `on_posted` is called after acks were posted to `mailbox` (the
  // dispatcher's wake-up; cheap and thread-safe).
  AckWriter(OutboxStore& store, AckMailbox& mailbox, MonitorStats& stats, const Clock& clock,
            AckWriterOptions opts, std::function<void()> on_posted = {});

  // Whether the sender of frames[index] may ack `group` (--security curve).
  using AckPermit = std::function<bool(std::size_t index, std::string_view group)>;

  // Decodes acknowledgement frames and commits them, `chunk` per
  // transaction, posting each transaction's. Counts and logs (rate limited)
  // malformed frames and acks of unknown events. An ack `permit` refuses is
  // dropped (the permit counts it).
  void apply(const std::vector<std::string_view>& frames, const AckPermit& permit = {});
  // One transaction of pruning: done events past the retention at `wall_ms`.
  // Returns how many were deleted (fewer than prune_chunk: none are left).
  std::size_t prune_chunk(int64_t wall_ms);
  // Serves `acks` until `stop` is set (checked at least every 100 ms). With a
  // `gate`, each ack must come from a consumer of its group.
  void run(zmq::socket_t& acks, const std::atomic<bool>& stop, MessageGate* gate = nullptr);

 private:
  void commit(std::size_t from, std::size_t to);

  OutboxStore& store_;
  AckMailbox& mailbox_;
  MonitorStats& stats_;
  const Clock& clock_;
  const AckWriterOptions opts_;
  const std::function<void()> on_posted_;
  std::vector<std::pair<std::size_t, std::string>> acks_;  // (group index, event id)
  std::vector<std::pair<std::size_t, std::string>> chunk_;
  std::vector<bool> acked_;
  std::vector<AckedEvent> posted_;
  LogRateLimiter warn_limit_{5, std::chrono::seconds(10)};
};

}  // namespace rmon::monitor
