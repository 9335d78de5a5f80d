#include "pool_service.hpp"

#include <spdlog/spdlog.h>

#include <stdexcept>

namespace rmon::pool {

namespace {
constexpr std::size_t kMaxOrphansLogged = 20;
}  // namespace

PoolManagerService::PoolManagerService(PoolConfig config, const Clock& clock)
    : config_(std::move(config)) {
  if (std::string err = config_.validate(); !err.empty()) throw std::invalid_argument(err);
  if (config_.postgres()) {
    store::PgDb::Options o;
    o.application_name = "rmon-pool-manager";
    pg_ = std::make_unique<store::PgDb>(config_.store, o);
    store_ = std::make_unique<PoolStore>(make_postgres_rows(*pg_), config_.pool_specs(), clock,
                                         config_.store_options());
  } else {
    const auto path = store::service_db_path(config_.data_dir, "pool-manager");
    store_ =
        std::make_unique<PoolStore>(path, config_.pool_specs(), clock, config_.store_options());
  }
  domain_ = std::make_unique<PoolApi>(*store_, service_stats_, clock);
  service_ = std::make_unique<ConsumerService>(config_, *domain_, service_stats_, clock);
}

PoolManagerService::~PoolManagerService() { service_.reset(); }

void PoolManagerService::start() {
  // Before the loop starts: the store is the loop's from then on.
  const std::vector<Holding> orphans = store_->orphaned_holdings();
  for (std::size_t i = 0; i < orphans.size() && i < kMaxOrphansLogged; ++i) {
    const Holding& h = orphans[i];
    spdlog::warn(
        "holding kept outside the configured pools (release it, or let its timeout free it) "
        "pool={} slot={} runner_id={} task_id={} attempt={}",
        h.pool, h.slot, h.runner_id, h.task_id, h.attempt);
  }
  if (orphans.size() > kMaxOrphansLogged) {
    spdlog::warn("holdings kept outside the configured pools count={} (first {} logged)",
                 orphans.size(), kMaxOrphansLogged);
  }
  service_->start();
}

}  // namespace rmon::pool
