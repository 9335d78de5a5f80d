#pragma once
// task-queue as a whole: opens its database in the data folder, binds its
// API, connects to the monitor (events, acks, control), serves /metrics and
// runs the batch loop on one thread. Construction opens the database (a
// corrupt or unwritable data folder fails there); start() binds and starts;
// stop() finishes the batch in progress and closes everything. start() and
// stop() are called from one thread; stats() is thread-safe.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "rmon/clock.hpp"
#include "rmon/service/event_consumer.hpp"
#include "rmon/service/monitor_probe.hpp"
#include "rmon/store/sqlite.hpp"
#include "task_api.hpp"
#include "task_config.hpp"
#include "task_metrics.hpp"
#include "task_store.hpp"

namespace rmon::tq {

struct TaskQueueEndpoints {
  std::string api;
  int metrics_port = 0;  // 0 when /metrics is disabled
};

class TaskQueueService {
 public:
  TaskQueueService(TaskQueueConfig config, const Clock& clock);
  ~TaskQueueService();
  TaskQueueService(const TaskQueueService&) = delete;
  TaskQueueService& operator=(const TaskQueueService&) = delete;

  void start();
  void stop();  // idempotent

  const TaskQueueEndpoints& endpoints() const { return endpoints_; }
  const TaskQueueStats& stats() const { return stats_; }
  const EventConsumer& events() const { return *events_; }
  // Benchmarks: called on the loop thread for each task a timeout event took
  // back, with its reassignment lateness in ms. Set before start().
  void on_reassigned(std::function<void(const protocol::TimeoutEvent&, int64_t)> fn) {
    reassigned_hook_ = std::move(fn);
  }

 private:
  const TaskQueueConfig config_;
  const Clock& clock_;
  store::Db db_;
  TaskQueueStats stats_;
  std::unique_ptr<TaskStore> store_;
  zmq::context_t ctx_;
  zmq::socket_t api_;
  std::unique_ptr<EventConsumer> events_;
  std::unique_ptr<MonitorProbe> probe_;
  std::unique_ptr<TaskApi> handler_;
  std::unique_ptr<TaskMetrics> metrics_;
  TaskQueueEndpoints endpoints_;
  std::function<void(const protocol::TimeoutEvent&, int64_t)> reassigned_hook_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace rmon::tq
