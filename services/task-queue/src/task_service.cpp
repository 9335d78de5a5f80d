#include "task_service.hpp"

#include <stdexcept>

namespace rmon::tq {

TaskQueueService::TaskQueueService(TaskQueueConfig config, const Clock& clock)
    : config_(std::move(config)),
      db_(store::open_service_db(store::service_db_path(config_.data_dir, "task-queue"),
                                 config_.sync_mode(), "one task-queue per data folder",
                                 kSchemaVersion)) {
  if (std::string err = config_.validate(); !err.empty()) throw std::invalid_argument(err);
  store_ = std::make_unique<TaskStore>(db_, clock, config_.store_options());
  domain_ = std::make_unique<TaskApi>(*store_, db_, service_stats_, clock);
  service_ = std::make_unique<ConsumerService>(config_, *domain_, service_stats_, clock);
}

TaskQueueService::~TaskQueueService() { service_.reset(); }

}  // namespace rmon::tq
