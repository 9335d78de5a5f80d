#pragma once
// task-queue as a whole: its database (SQLite in the data folder, or the
// PostgreSQL of --store, shared with other replicas), its store and
// domain (TaskApi), on the consumer-service skeleton (sockets, monitor
// client, loop thread, batch policy, /metrics). Construction opens the
// database (a corrupt or unwritable data folder fails there); start() binds
// and starts; stop() finishes the batch in progress and closes everything.
// start() and stop() are called from one thread; stats() is thread-safe.

#include <memory>
#include <string>

#include "rmon/clock.hpp"
#include "rmon/service/consumer_service.hpp"
#include "rmon/store/postgres.hpp"
#include "rmon/store/sqlite.hpp"
#include "task_api.hpp"
#include "task_config.hpp"
#include "task_store.hpp"

namespace rmon::tq {

class TaskQueueService {
 public:
  TaskQueueService(TaskQueueConfig config, const Clock& clock);
  ~TaskQueueService();
  TaskQueueService(const TaskQueueService&) = delete;
  TaskQueueService& operator=(const TaskQueueService&) = delete;

  void start() { service_->start(); }
  void stop() { service_->stop(); }                // idempotent
  void reload_keys() { service_->reload_keys(); }  // SIGHUP

  const ServiceEndpoints& endpoints() const { return service_->endpoints(); }
  const TaskQueueStats& stats() const { return domain_->stats(); }
  const ServiceStats& service_stats() const { return service_stats_; }
  std::string render_metrics() const { return service_->render_metrics(); }
  // Benchmarks: called on the loop thread for each task a timeout event took
  // back, with its reassignment lateness in ms. Set before start().
  void on_reassigned(std::function<void(const protocol::TimeoutEvent&, int64_t)> fn) {
    domain_->on_reassigned = std::move(fn);
  }

 private:
  const TaskQueueConfig config_;
  std::unique_ptr<store::Db> sqlite_;  // one of these two
  std::unique_ptr<store::PgDb> pg_;
  ServiceStats service_stats_;
  std::unique_ptr<TaskStore> store_;
  std::unique_ptr<TaskApi> domain_;
  std::unique_ptr<ConsumerService> service_;  // stopped and destroyed first
};

}  // namespace rmon::tq
