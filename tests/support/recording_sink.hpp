#pragma once
// A spdlog sink that keeps every message it is given (payload only), and a
// guard that routes the default logger to one for a test's duration: tests
// of what a component logs, without stderr.

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace rmon::testing {

class RecordingSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::string> lines() {
    std::lock_guard lock(mutex_);
    return lines_;
  }
  // Lines that start with `start`.
  std::size_t count(const std::string& start) {
    std::size_t n = 0;
    for (const std::string& l : lines()) n += l.rfind(start, 0) == 0 ? 1 : 0;
    return n;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    lines_.emplace_back(msg.payload.data(), msg.payload.size());
  }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;  // guarded by the base sink's mutex_
};

// While it lives, the default logger writes to `sink` (synchronously, at
// `level` and above).
class RecordDefaultLog {
 public:
  explicit RecordDefaultLog(std::shared_ptr<RecordingSink> sink,
                            spdlog::level::level_enum level = spdlog::level::info)
      : saved_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>("test", std::move(sink));
    logger->set_level(level);
    spdlog::set_default_logger(logger);
  }
  ~RecordDefaultLog() { spdlog::set_default_logger(saved_); }
  RecordDefaultLog(const RecordDefaultLog&) = delete;
  RecordDefaultLog& operator=(const RecordDefaultLog&) = delete;

 private:
  std::shared_ptr<spdlog::logger> saved_;
};

}  // namespace rmon::testing
