#pragma once
// A client of the task-queue's API (docs/PROTOCOL.md, "Dispatcher services"):
// every op, typed. Payloads and results are encoded MessagePack values (build
// them with protocol::MapBuilder, or any MessagePack encoder).
// Not thread-safe: one client per thread.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "rmon/runner/api_client.hpp"

namespace rmon::runner {

inline constexpr char kDefaultTaskQueueEndpoint[] = "tcp://127.0.0.1:5560";

struct TaskInfo {
  std::string task_id;
  std::string state;  // queued, leased, completed, dead, cancelled
  uint64_t attempt = 0;
  uint64_t max_attempts = 0;
  int64_t priority = 0;
  std::string payload;  // encoded MessagePack
  std::optional<std::string> runner_id;
  std::optional<std::string> pool;
  std::optional<std::string> idempotency_key;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  int64_t available_at_ms = 0;
  std::optional<std::string> last_error;
  std::optional<std::string> result;  // encoded MessagePack
};

struct SubmitOptions {
  int64_t priority = 0;
  uint64_t max_attempts = 5;
  std::optional<std::string> pool;
  std::optional<std::string> idempotency_key;
  uint64_t delay_ms = 0;
};

struct Submitted {
  std::string task_id;
  bool created = false;
};

struct TaskPage {
  std::vector<TaskInfo> tasks;
  bool more = false;
};

struct TaskFilter {
  std::optional<std::string> state;
  std::optional<std::string> pool;
  uint64_t limit = 100;
  std::optional<std::string> after;
};

class TaskQueueClient {
 public:
  // `keys`: a CURVE client (ApiClient).
  TaskQueueClient(zmq::context_t& ctx, std::string endpoint = kDefaultTaskQueueEndpoint,
                  int timeout_ms = 5000, std::optional<security::ClientKeys> keys = std::nullopt)
      : api_(ctx, std::move(endpoint), timeout_ms, std::move(keys)) {}
  // Replicas of the service: a request unanswered in time goes to the next
  // (ApiClient).
  TaskQueueClient(zmq::context_t& ctx, std::vector<std::string> endpoints, int timeout_ms = 5000,
                  std::optional<security::ClientKeys> keys = std::nullopt)
      : api_(ctx, std::move(endpoints), timeout_ms, std::move(keys)) {}

  Outcome<Submitted> submit(const std::string& payload, const SubmitOptions& o = {});
  // nullopt when no task is available.
  Outcome<std::optional<TaskInfo>> lease(const std::string& runner_id,
                                         const std::optional<std::string>& pool = std::nullopt);
  Outcome<Done> complete(const std::string& task_id, uint64_t attempt,
                         const std::optional<std::string>& result = std::nullopt);
  // The task's state afterwards: queued (retried after a backoff) or dead.
  Outcome<std::string> fail(const std::string& task_id, uint64_t attempt,
                            const std::optional<std::string>& error = std::nullopt,
                            bool retry = true);
  Outcome<std::string> cancel(const std::string& task_id);
  Outcome<TaskInfo> get(const std::string& task_id);
  Outcome<TaskPage> list(const TaskFilter& f = {});
  Outcome<std::map<std::string, uint64_t>> stats();
  Outcome<Done> ping();
  // Replicas: requests moved to the next endpoint so far.
  uint64_t failovers() const { return api_.failovers(); }

 private:
  ApiClient api_;
};

// Decodes a task map (as in replies and in `list`).
protocol::Status read_task(const protocol::MapReader& m, TaskInfo& t);
// Every unsigned counter of a reply map, by key (for `stats`).
std::map<std::string, uint64_t> read_counters(std::string_view frame);

}  // namespace rmon::runner
