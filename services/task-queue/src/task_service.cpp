#include "task_service.hpp"

#include <stdexcept>

namespace rmon::tq {

TaskQueueService::TaskQueueService(TaskQueueConfig config, const Clock& clock)
    : config_(std::move(config)) {
  if (std::string err = config_.validate(); !err.empty()) throw std::invalid_argument(err);
  if (config_.postgres()) {
    store::PgDb::Options o;
    o.application_name = "rmon-task-queue";
    pg_ = std::make_unique<store::PgDb>(config_.store, o);
    store_ = std::make_unique<TaskStore>(make_postgres_rows(*pg_), clock, config_.store_options());
  } else {
    sqlite_ = std::make_unique<store::Db>(store::open_service_db(
        store::service_db_path(config_.data_dir, "task-queue"), config_.sync_mode(),
        "one task-queue per data folder", kSchemaVersion));
    store_ = std::make_unique<TaskStore>(*sqlite_, clock, config_.store_options());
  }
  domain_ = std::make_unique<TaskApi>(*store_, service_stats_, clock);
  service_ = std::make_unique<ConsumerService>(config_, *domain_, service_stats_, clock);
}

TaskQueueService::~TaskQueueService() { service_.reset(); }

}  // namespace rmon::tq
