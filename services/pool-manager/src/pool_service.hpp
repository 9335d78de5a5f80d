#pragma once
// pool-manager as a whole: its database (SQLite in the data folder, or the
// PostgreSQL of --store, shared with other replicas; opened in the
// constructor, so a corrupt or unwritable data folder or an unreachable
// server fails before anything binds), its store
// and domain (PoolApi), on the consumer-service skeleton (sockets, monitor
// client, loop thread, batch policy, /metrics).
//
// start() and stop() are called from one thread; endpoints() after start();
// metrics() and render_metrics() are thread-safe. The destructor stops the
// service.

#include <functional>
#include <memory>
#include <string>

#include "pool_api.hpp"
#include "pool_config.hpp"
#include "pool_store.hpp"
#include "rmon/clock.hpp"
#include "rmon/service/consumer_service.hpp"
#include "rmon/store/postgres.hpp"

namespace rmon::pool {

class PoolManagerService {
 public:
  // Validates `config` (std::invalid_argument) and opens the database
  // (std::runtime_error, store::SqliteError with a clear message).
  PoolManagerService(PoolConfig config, const Clock& clock);
  ~PoolManagerService();
  PoolManagerService(const PoolManagerService&) = delete;
  PoolManagerService& operator=(const PoolManagerService&) = delete;

  // Binds, connects and starts the loop; throws on a bad endpoint.
  void start();
  // Finishes the batch in progress, stops the loop, closes the sockets.
  // Idempotent.
  void stop() { service_->stop(); }
  void reload_keys() { service_->reload_keys(); }  // SIGHUP

  const ServiceEndpoints& endpoints() const { return service_->endpoints(); }
  // Benchmarks: called on the loop thread for each timeout event that freed
  // a slot, with its release lateness in ms. Set before start().
  void on_released(std::function<void(const protocol::TimeoutEvent&, int64_t)> fn) {
    domain_->on_released = std::move(fn);
  }
  const PoolMetrics& metrics() const { return domain_->metrics(); }
  const ServiceStats& service_stats() const { return service_stats_; }
  std::string render_metrics() const { return service_->render_metrics(); }

 private:
  const PoolConfig config_;
  ServiceStats service_stats_;
  std::unique_ptr<store::PgDb> pg_;  // --store postgresql://; else SQLite in the data folder
  std::unique_ptr<PoolStore> store_;
  std::unique_ptr<PoolApi> domain_;
  std::unique_ptr<ConsumerService> service_;  // stopped and destroyed first
};

}  // namespace rmon::pool
