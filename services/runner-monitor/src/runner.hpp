#pragma once
// One tracked runner, as stored in a shard. Kept small on purpose (the scale
// target is <= 256 bytes per runner, map slot and index entry included, with
// 36-byte runner and task ids): a runner is one allocation holding its fixed
// fields and, right after them, its id and its task id (RunnerSet allocates
// it); the pool name is interned per shard; fields most runners lack live
// behind one pointer.

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "deadline_index.hpp"
#include "rmon/protocol/messages.hpp"

namespace rmon::monitor {

using protocol::PoolType;
using protocol::RunnerState;

// A lifecycle that had ended (completed, failed or timed out) when the runner
// left it for another task or a later attempt of the same one. Until
// `until_ns`, a heartbeat for that task at `attempt` or an earlier one is
// ignored (late for the very attempt when it timed out, else stale), never a
// new lifecycle: a stray or zombie heartbeat cannot bring an ended attempt
// back, nor time it out a second time.
// Lifecycles left while still running are not fenced, so the runner's real
// current task can never be shut out by one. The task is kept as its 64-bit
// hash (a fence is 32 bytes); two task ids colliding is a 2^-64 chance.
struct Fence {
  uint64_t task_hash = 0;
  uint64_t attempt = 1;
  int64_t until_ns = 0;  // monotonic; a retention after it was left or last named
  bool timed_out = false;
};
inline constexpr std::size_t kMaxFences = 4;

struct RunnerExtra {
  std::optional<std::string> container_id;
  std::optional<std::string> job_name;
  std::optional<std::string> progress;  // raw MessagePack
  std::vector<Fence> fences;            // at most kMaxFences
};

// The index arms a RUNNING runner at its suspect time, a SUSPECT one at its
// deadline, and a terminal one at the end of its retention. A heartbeat only
// moves `last_heard_ns`; the node is re-armed when its old due time pops
// (lazily), unless the new due time is earlier.
//
// The id (`id_len` bytes) and then room for `task_cap` bytes of task id follow
// the struct in the same allocation; only RunnerSet creates runners.
struct Runner : TimedNode {
  uint32_t pool = UINT32_MAX;  // id in the shard's PoolNames (kNone until set)
  uint64_t attempt = 1;
  uint64_t seq = 0;
  uint64_t pid = 0;           // when has_pid
  uint64_t interval_ms = 0;   // when has_interval
  int64_t last_heard_ns = 0;  // monotonic, at receipt
  int64_t last_heard_wall_ms = 0;
  int64_t added_wall_ms = 0;
  std::unique_ptr<RunnerExtra> extra;
  uint32_t timeout_ms = 0;  // after clamping (<= 24 h fits)
  PoolType pool_type = PoolType::kLocalProcess;
  RunnerState state = RunnerState::kRunning;
  bool has_pid = false;
  bool has_interval = false;
  bool has_seq = false;    // false for a runner added by the control `add`
  bool timed_out = false;  // FAILED because of a timeout, for this attempt
  uint16_t id_len = 0;
  uint16_t task_len = 0;  // 0 until the first lifecycle starts
  uint16_t task_cap = 0;

  std::string_view id() const { return {chars(), id_len}; }
  std::string_view task_id() const { return {chars() + id_len, task_len}; }
  bool has_task() const { return task_len > 0; }
  // Copies `task` in place; the caller (RunnerSet) checks it fits task_cap.
  void write_task(std::string_view task) {
    if (!task.empty()) std::memcpy(chars() + id_len, task.data(), task.size());
    task_len = static_cast<uint16_t>(task.size());
  }
  char* chars() { return reinterpret_cast<char*>(this + 1); }
  const char* chars() const { return reinterpret_cast<const char*>(this + 1); }
};

}  // namespace rmon::monitor
