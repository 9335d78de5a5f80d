#include "rmon/runner/heartbeat_publisher.hpp"

#include <exception>
#include <memory>
#include <random>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "rmon/clock.hpp"
#include "rmon/protocol/codec.hpp"
#include "rmon/zmq_util.hpp"

namespace rmon::runner {

namespace {
void check_id(const std::string& v, const char* what) {
  if (v.empty() || v.size() > protocol::kMaxIdBytes) {
    throw std::invalid_argument(std::string(what) + " must be 1 to 128 bytes");
  }
}
}  // namespace

HeartbeatPublisher::HeartbeatPublisher(zmq::context_t& ctx, HeartbeatOptions opts)
    : ctx_(ctx),
      opts_(std::move(opts)),
      endpoints_(opts_.endpoints.empty() ? std::vector<std::string>{opts_.endpoint}
                                         : opts_.endpoints),
      uncaught_at_start_(std::uncaught_exceptions()) {
  check_id(opts_.runner.runner_id, "runner_id");
  check_id(opts_.runner.task_id, "task_id");
  check_id(opts_.runner.pool, "pool");
  if (endpoints_.size() > kMaxMonitorEndpoints) {
    throw std::invalid_argument("endpoints must list 1 to 16 monitors");
  }
  for (const std::string& e : endpoints_) {
    if (std::string why = endpoint_problem(e); !why.empty()) throw std::invalid_argument(why);
  }
  if (opts_.interval_ms == 0) throw std::invalid_argument("interval_ms must be positive");
  if (!(opts_.jitter >= 0 && opts_.jitter < 1)) throw std::invalid_argument("jitter is in [0, 1)");
  progress_ = opts_.runner.progress;
  thread_ = std::thread([this] { run(); });
}

HeartbeatPublisher::~HeartbeatPublisher() {
  if (!thread_.joinable()) return;
  finish(std::uncaught_exceptions() > uncaught_at_start_ ? protocol::RunnerState::kFailed
                                                         : protocol::RunnerState::kCompleted);
}

void HeartbeatPublisher::set_progress(std::optional<std::string> progress) {
  std::lock_guard lock(mu_);
  progress_ = std::move(progress);
}

uint64_t HeartbeatPublisher::sent() const {
  std::lock_guard lock(mu_);
  return sent_;
}

void HeartbeatPublisher::finish(protocol::RunnerState state) {
  {
    std::lock_guard lock(mu_);
    if (!terminal_ && !stop_) terminal_ = state;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void HeartbeatPublisher::abandon() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void HeartbeatPublisher::run() {
  SocketOptions o;
  o.send_hwm = 100;
  std::vector<std::unique_ptr<security::ClientSocket>> pubs;
  for (const std::string& endpoint : endpoints_) {
    pubs.push_back(std::make_unique<security::ClientSocket>(ctx_, zmq::socket_type::pub, o,
                                                            endpoint, opts_.curve));
  }
  protocol::Heartbeat hb;
  hb.runner = opts_.runner;
  hb.timeout_ms = opts_.timeout_ms;
  hb.interval_ms = opts_.interval_ms;
  const std::string topic = protocol::heartbeat_topic(hb.runner.runner_id);
  std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> spread(1.0 - opts_.jitter, 1.0 + opts_.jitter);
  std::string payload;
  auto send = [&](protocol::RunnerState state, const std::optional<std::string>& progress) {
    hb.state = state;
    hb.runner.progress = progress;
    ++hb.seq;
    hb.sent_at_ms = SystemClock::instance().wall_ms();
    protocol::encode_heartbeat(hb, payload);
    // Each monitor on its own: one that fails does not silence the others.
    for (auto& pub : pubs) {
      try {
        (void)pub->maintain();  // a refused key: logged, and retried with backoff
        (void)send_frames(pub->socket(), {topic, payload});
      } catch (const std::exception& e) {
        spdlog::warn("heartbeat not sent runner_id={} endpoint={} error=\"{}\"",
                     hb.runner.runner_id, pub->endpoint(), e.what());
      }
    }
  };
  std::unique_lock lock(mu_);
  for (;;) {
    if (stop_) return;
    if (terminal_) {
      const protocol::RunnerState state = *terminal_;
      const auto progress = progress_;
      lock.unlock();
      for (int i = 0; i < opts_.terminal_repeats; ++i) {
        if (i > 0) std::this_thread::sleep_for(Millis(opts_.terminal_spacing_ms));
        send(state, progress);
      }
      lock.lock();
      sent_ += static_cast<uint64_t>(opts_.terminal_repeats);
      stop_ = true;
      return;
    }
    const auto progress = progress_;
    lock.unlock();
    send(protocol::RunnerState::kRunning, progress);
    lock.lock();
    ++sent_;
    const auto period = std::chrono::duration<double, std::milli>(
        static_cast<double>(opts_.interval_ms) * spread(rng));
    cv_.wait_for(lock, period, [&] { return stop_ || terminal_.has_value(); });
  }
}

}  // namespace rmon::runner
