#include "history.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

namespace rmon::console {

History::History(std::size_t capacity, uint64_t interval_ms, SampleFn sample)
    : capacity_(capacity), interval_ms_(interval_ms), sample_(std::move(sample)) {}

History::~History() { stop(); }

void History::start() {
  thread_ = std::thread([this] { run(); });
}

void History::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void History::add(const Sample& s) {
  std::lock_guard lock(mu_);
  samples_.push_back(s);
  while (samples_.size() > capacity_) samples_.pop_front();
}

std::string History::to_json() const {
  std::string out = "{\"interval_ms\":" + std::to_string(interval_ms_) + ",\"samples\":[";
  std::lock_guard lock(mu_);
  bool first = true;
  for (const Sample& s : samples_) {
    if (!first) out += ',';
    first = false;
    out += '[' + std::to_string(s.at_ms) + ',' + std::to_string(s.timeouts) + ',' +
           std::to_string(s.reassigned) + ',' + std::to_string(s.completed) + ',' +
           std::to_string(s.slots_freed) + ']';
  }
  return out + "]}";
}

void History::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    try {
      add(sample_());
    } catch (const std::exception& e) {
      spdlog::warn("console: sampling the services' counters failed: {}", e.what());
    }
    lock.lock();
    cv_.wait_for(lock, std::chrono::milliseconds(interval_ms_), [this] { return stopping_; });
  }
}

}  // namespace rmon::console
