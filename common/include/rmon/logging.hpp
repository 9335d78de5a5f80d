#pragma once
// Logging setup (spdlog) and small helpers for structured, rate-limited logs.
//
// Messages carry context as `key=value` pairs after the text, e.g.
//   runner timed out runner_id=r-7 task_id=t-1 pool=gpu timeout_ms=60000

#include <spdlog/spdlog.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace rmon {

// Lines the log queue holds; past that the oldest are dropped (counted).
inline constexpr std::size_t kLogQueueLines = 8192;

// Installs the default logger named `service`: asynchronous (a bounded queue,
// one writer thread), to stderr without ever blocking a service thread (see
// rmon/log_sink.hpp). `level` is one of trace, debug, info, warn, error,
// critical, off; throws std::invalid_argument on anything else (a start-up
// error). Call once, before the service's threads start.
void init_logging(std::string_view service, std::string_view level);

// Parses a level name; nullopt when unknown.
std::optional<spdlog::level::level_enum> parse_log_level(std::string_view level);

// Lets through at most `burst` events per key per `period`, and reports how
// many were held back when the next one passes. Thread-safe.
class LogRateLimiter {
 public:
  LogRateLimiter(int burst, std::chrono::milliseconds period) : burst_(burst), period_(period) {}

  // True when an event with `key` should be logged now; `suppressed` is set to
  // the number dropped for this key since the last one logged.
  bool allow(std::string_view key, std::chrono::steady_clock::time_point now, uint64_t& suppressed);

 private:
  struct Window {
    std::chrono::steady_clock::time_point start;
    int used = 0;
    uint64_t dropped = 0;
  };
  const int burst_;
  const std::chrono::milliseconds period_;
  std::mutex mu_;
  std::unordered_map<std::string, Window> windows_;  // guarded by mu_
};

}  // namespace rmon
