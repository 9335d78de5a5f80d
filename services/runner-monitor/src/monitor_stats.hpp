#pragma once
// Counters the monitor's threads update and the `stats` op and /metrics read.
// Thread-safe (atomics, relaxed: each is a statistic, not a synchronisation).

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rmon/protocol/result.hpp"

namespace rmon::monitor {

struct GroupStats {
  std::atomic<uint64_t> pending{0};  // gauge, published by the dispatch thread
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> redeliveries{0};
  std::atomic<uint64_t> acks{0};
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
};

}  // namespace rmon::monitor
