#pragma once
// A task as the task-queue stores and serves it (docs/PROTOCOL.md, "Task").

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rmon::tq {

// Stored as these integers: do not renumber.
enum class TaskState : uint8_t {
  kQueued = 0,
  kLeased = 1,
  kCompleted = 2,
  kDead = 3,
  kCancelled = 4
};
inline constexpr int kTaskStateCount = 5;

std::string_view to_string(TaskState s);
std::optional<TaskState> parse_task_state(std::string_view s);
inline bool is_ended(TaskState s) { return s >= TaskState::kCompleted; }

struct Task {
  std::string task_id;
  TaskState state = TaskState::kQueued;
  uint64_t attempt = 0;  // 0 before the first lease, +1 at each lease
  uint64_t max_attempts = 5;
  int64_t priority = 0;
  std::string payload;                   // one encoded MessagePack value
  std::optional<std::string> runner_id;  // while leased
  std::optional<std::string> pool;
  std::optional<std::string> idempotency_key;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  int64_t available_at_ms = 0;
  std::optional<std::string> last_error;
  std::optional<std::string> result;  // one encoded MessagePack value, from complete
};

}  // namespace rmon::tq
