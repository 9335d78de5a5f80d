#pragma once
// pool-manager as a whole: opens the database (in the constructor, so a
// corrupt or unwritable data folder fails before anything binds), binds the
// API, connects to the monitor's event, ack and control endpoints, serves
// /metrics and runs the batch loop on one thread ("pm-loop").
//
// start() and stop() are called from one thread; endpoints() after start();
// metrics() and render_metrics() are thread-safe. The destructor stops the
// service.

#include <zmq.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "pool_api.hpp"
#include "pool_config.hpp"
#include "pool_metrics.hpp"
#include "pool_store.hpp"
#include "rmon/clock.hpp"
#include "rmon/service/event_consumer.hpp"
#include "rmon/service/metrics_endpoint.hpp"
#include "rmon/service/monitor_probe.hpp"

namespace rmon::pool {

struct PoolEndpoints {
  std::string api;       // bound (wildcard port resolved) or connected
  int metrics_port = 0;  // 0 when /metrics is disabled
};

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
  void stop();

  const PoolEndpoints& endpoints() const { return endpoints_; }
  // Benchmarks: called on the loop thread for each timeout event that freed
  // a slot, with its release lateness in ms. Set before start().
  void on_released(std::function<void(const protocol::TimeoutEvent&, int64_t)> fn) {
    released_hook_ = std::move(fn);
  }
  const PoolMetrics& metrics() const { return *metrics_; }
  std::string render_metrics() const { return endpoint_->render(); }

 private:
  const PoolConfig config_;
  const Clock& clock_;
  std::unique_ptr<PoolStore> store_;  // used by the loop thread once started
  std::unique_ptr<MetricsEndpoint> endpoint_;
  std::unique_ptr<PoolMetrics> metrics_;

  zmq::context_t ctx_;
  zmq::socket_t api_;
  std::unique_ptr<EventConsumer> events_;
  std::unique_ptr<MonitorProbe> probe_;
  std::unique_ptr<PoolApi> handler_;
  PoolEndpoints endpoints_;

  std::function<void(const protocol::TimeoutEvent&, int64_t)> released_hook_;
  std::atomic<bool> stop_{false};
  std::thread loop_;
};

}  // namespace rmon::pool
