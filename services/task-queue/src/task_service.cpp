#include "task_service.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include "rmon/service/batch_loop.hpp"
#include "rmon/service/main.hpp"
#include "rmon/zmq_util.hpp"

namespace rmon::tq {

TaskQueueService::TaskQueueService(TaskQueueConfig config, const Clock& clock)
    : config_(std::move(config)),
      clock_(clock),
      db_(store::Db::open_exclusive(store::service_db_path(config_.data_dir, "task-queue"),
                                    config_.sync_mode(), "one task-queue per data folder")) {
  if (std::string err = config_.validate(); !err.empty()) throw std::invalid_argument(err);
  store_ = std::make_unique<TaskStore>(db_, clock_, config_.store_options());
}

TaskQueueService::~TaskQueueService() { stop(); }

void TaskQueueService::start() {
  SocketOptions api_opts;
  api_opts.max_msg_size = static_cast<int64_t>(kMaxRequestFrame);
  api_ = make_socket(ctx_, zmq::socket_type::router, api_opts);
  endpoints_.api = attach(api_, config_.api_endpoint);
  events_ = std::make_unique<EventConsumer>(ctx_, "task-queue", config_.events_endpoint,
                                            config_.ack_endpoint);
  probe_ = std::make_unique<MonitorProbe>(ctx_, config_.monitor_endpoint,
                                          Millis(config_.monitor_timeout_ms));
  handler_ = std::make_unique<TaskApi>(*store_, db_, probe_.get(), stats_, clock_);
  metrics_ = std::make_unique<TaskMetrics>(stats_, *events_);
  handler_->on_commit = [m = metrics_.get()](std::size_t n) { m->observe_batch(n); };
  handler_->on_reassigned = [this](const protocol::TimeoutEvent& ev, int64_t lateness_ms) {
    metrics_->observe_reassign_lateness(static_cast<double>(lateness_ms) / 1000.0);
    if (reassigned_hook_) reassigned_hook_(ev, lateness_ms);
  };
  if (!config_.metrics_address.empty()) {
    endpoints_.metrics_port = metrics_->endpoint().serve(config_.metrics_address);
  }
  // Logged before the loop thread owns the store.
  const auto& c = store_->counts();
  spdlog::info(
      "task-queue started api={} events={} acks={} monitor={} metrics_port={} data={} sync={} "
      "queued={} leased={}",
      endpoints_.api, config_.events_endpoint, config_.ack_endpoint, config_.monitor_endpoint,
      endpoints_.metrics_port, db_.path().string(), config_.sync, c[0], c[1]);
  (void)spdlog::default_logger_raw();
  stop_ = false;
  BatchLoopOptions opts;
  opts.max_batch = config_.max_batch;
  thread_ = std::thread([this, opts] {
    pthread_setname_np(pthread_self(), "tq-loop");
    try {
      run_batch_loop(api_, *events_, probe_.get(), *handler_, clock_, stop_, opts);
    } catch (const std::exception& e) {
      fail_service(std::string("task-queue loop: ") + e.what());
    }
  });
}

void TaskQueueService::stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  thread_.join();
  api_.close();
  probe_.reset();
  events_.reset();
  spdlog::info("task-queue stopped");
}

}  // namespace rmon::tq
