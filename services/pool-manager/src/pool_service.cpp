#include "pool_service.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <stdexcept>

#include "rmon/service/main.hpp"
#include "rmon/zmq_util.hpp"

namespace rmon::pool {

namespace {

constexpr std::size_t kMaxOrphansLogged = 20;

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : ",") + p;
  return out;
}

}  // namespace

PoolManagerService::PoolManagerService(PoolConfig config, const Clock& clock)
    : config_(std::move(config)), clock_(clock) {
  if (std::string err = config_.validate(); !err.empty()) throw std::invalid_argument(err);
  const auto path = store::service_db_path(config_.data_dir, "pool-manager");
  store_ = std::make_unique<PoolStore>(path, config_.pool_specs(), clock_, config_.store_options());
  endpoint_ = std::make_unique<MetricsEndpoint>();
  metrics_ = std::make_unique<PoolMetrics>(config_.pool_specs(), *endpoint_);
  metrics_->publish(*store_);
}

PoolManagerService::~PoolManagerService() {
  stop();
  endpoint_.reset();  // no scrape reads metrics_ after this
}

void PoolManagerService::start() {
  if (loop_.joinable()) return;
  SocketOptions api_opts;
  // Frames past the protocol's limit get bad_request (too_large); only far
  // larger ones make libzmq drop the sender's connection.
  api_opts.max_msg_size = static_cast<int64_t>(4 * protocol::kMaxFrame);
  api_ = make_socket(ctx_, zmq::socket_type::router, api_opts);
  endpoints_.api = attach(api_, config_.api_endpoint);
  events_ = std::make_unique<EventConsumer>(ctx_, "pool-manager", config_.events_endpoint,
                                            config_.ack_endpoint);
  probe_ = std::make_unique<MonitorProbe>(ctx_, config_.monitor_endpoint,
                                          Millis(config_.monitor_timeout_ms));
  metrics_->set_events_rejected([e = events_.get()] { return e->rejected(); });
  if (!config_.metrics_address.empty()) {
    endpoints_.metrics_port = endpoint_->serve(config_.metrics_address);
  }
  handler_ = std::make_unique<PoolApi>(*store_, *metrics_, probe_.get(), clock_,
                                       Millis(config_.first_heartbeat_grace_ms));
  handler_->on_released = released_hook_;

  std::vector<std::string> pools;
  for (const PoolSpec& p : store_->pools()) {
    pools.push_back(p.name + "=" + std::string(protocol::to_string(p.type)) + ":" +
                    std::to_string(p.slots));
  }
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

  // Logged before the loop starts: the store is the loop's from then on.
  spdlog::info(
      "pool-manager started api={} events={} ack={} monitor={} metrics_port={} data_dir={} "
      "sync={} pools={} holdings={} first_heartbeat_grace_ms={}",
      endpoints_.api, config_.events_endpoint, config_.ack_endpoint, config_.monitor_endpoint,
      endpoints_.metrics_port, config_.data_dir, config_.sync, join(pools),
      store_->holdings_total(), config_.first_heartbeat_grace_ms);
  (void)spdlog::default_logger_raw();
  stop_ = false;
  loop_ = std::thread([this, opts = config_.loop_options()] {
    pthread_setname_np(pthread_self(), "pm-loop");
    try {
      run_batch_loop(api_, *events_, probe_.get(), *handler_, clock_, stop_, opts);
    } catch (const std::exception& e) {
      fail_service(std::string("pool-manager loop: ") + e.what());
    }
  });
}

void PoolManagerService::stop() {
  if (!loop_.joinable()) return;
  stop_ = true;
  loop_.join();
  const uint64_t rejected = events_->rejected();
  metrics_->set_events_rejected([rejected] { return rejected; });
  handler_.reset();
  probe_.reset();
  events_.reset();
  api_.close();
  spdlog::info("pool-manager loop stopped, sockets closed holdings={}", store_->holdings_total());
}

}  // namespace rmon::pool
