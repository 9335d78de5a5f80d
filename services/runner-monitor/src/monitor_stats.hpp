#pragma once
// Counters the monitor's threads update and the `stats` op and /metrics read.
// Thread-safe (atomics, relaxed: each is a statistic, not a synchronisation).
// Only counters and gauges: a request from one thread to another is a
// mailbox of its own (e.g. BrakeReleaseRequest, guards.hpp), never a field
// here.

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rmon/protocol/result.hpp"

namespace rmon::monitor {

struct GroupStats {
  std::atomic<uint64_t> pending{0};    // gauge, published by the dispatch thread: on disk
  std::atomic<uint64_t> in_memory{0};  // gauge: of those, held in memory
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> redeliveries{0};
  std::atomic<uint64_t> acks{0};
  std::atomic<uint64_t> unreadable{0};  // stored events unreadable, quarantined (outbox_store.hpp)
};

struct MonitorStats {
  explicit MonitorStats(std::vector<std::string> group_names)
      : groups(std::move(group_names)), per_group(new GroupStats[groups.size()]) {}

  uint64_t rejected_total() const {
    uint64_t n = 0;
    for (const auto& r : rejected) n += r.load(std::memory_order_relaxed);
    return n;
  }
  void reject(protocol::Reason r) {
    rejected[static_cast<std::size_t>(r)].fetch_add(1, std::memory_order_relaxed);
  }

  const std::vector<std::string> groups;
  std::unique_ptr<GroupStats[]> per_group;    // one per group, same order
  std::atomic<uint64_t> heartbeat_frames{0};  // every message on the heartbeat socket
  std::array<std::atomic<uint64_t>, protocol::kReasonCount> rejected{};  // heartbeats
  std::atomic<uint64_t> ack_frames_rejected{0};
  std::atomic<uint64_t> acks_unknown{0};
  std::atomic<uint64_t> control_requests{0};
  std::atomic<uint64_t> control_errors{0};
  std::atomic<uint64_t> lookups{0};     // `lookup` requests answered
  std::atomic<uint64_t> lookup_ids{0};  // runner ids they asked about

  // Ingest: when its loop last found its socket empty (monotonic ns); the
  // stall guard compares it with the time.
  std::atomic<int64_t> ingest_drained_ns{0};

  // Self-protection (guards.hpp), published by the dispatch thread.
  std::atomic<bool> brake_engaged{false};
  std::atomic<int64_t> brake_since_ms{0};  // wall time it engaged (0: not engaged)
  std::atomic<uint64_t> brake_held{0};     // runners past their deadline held (while held)
  std::atomic<uint64_t> brake_engagements{0};
  std::atomic<uint64_t> brake_operator_releases{0};
  std::atomic<bool> stalled{false};
  std::atomic<uint64_t> stalls{0};
  std::atomic<uint64_t> last_stall_ms{0};       // how long the last stall lasted before it was seen
  std::atomic<uint64_t> stall_hold_expired{0};  // stalls that held past the max hold: convicted
  std::atomic<uint64_t> backlog_alerts{0};      // groups that crossed the backlog threshold
  std::atomic<uint64_t> outbox_pruned{0};
};

}  // namespace rmon::monitor
