#pragma once
// A runner as the monitor saves it across restarts (table_store.hpp): what a
// restored table needs to go on where it stopped, fences included. Times are
// wall-clock milliseconds (monotonic instants mean nothing to the next
// process); the last seq and progress are as of the save.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rmon/protocol/messages.hpp"

namespace rmon::monitor {

struct SavedFence {
  uint64_t task_hash = 0;
  uint64_t attempt = 1;
  bool timed_out = false;
};

struct SavedRunner {
  protocol::RunnerInfo info;  // ids, attempt, pool, pid, container, job, progress
  protocol::RunnerState state = protocol::RunnerState::kRunning;
  uint64_t seq = 0;
  bool has_seq = false;
  bool timed_out = false;
  std::optional<uint64_t> interval_ms;
  uint32_t timeout_ms = 0;
  int64_t last_heard_wall_ms = 0;
  int64_t added_wall_ms = 0;
  std::vector<SavedFence> fences;
};

}  // namespace rmon::monitor
