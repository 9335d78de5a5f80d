#include "rmon/logging.hpp"

#include <spdlog/async.h>
#include <spdlog/async_logger.h>
#include <unistd.h>

#include <csignal>
#include <stdexcept>

#include "rmon/log_sink.hpp"

namespace rmon {

std::optional<spdlog::level::level_enum> parse_log_level(std::string_view level) {
  static constexpr std::pair<std::string_view, spdlog::level::level_enum> kLevels[] = {
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},   {"warn", spdlog::level::warn},
      {"error", spdlog::level::err},   {"critical", spdlog::level::critical},
      {"off", spdlog::level::off}};
  for (const auto& [name, lvl] : kLevels) {
    if (name == level) return lvl;
  }
  return std::nullopt;
}

namespace {
std::shared_ptr<FdSink> g_sink;  // set once by init_logging
}  // namespace

void init_logging(std::string_view service, std::string_view level) {
  auto lvl = parse_log_level(level);
  if (!lvl) throw std::invalid_argument("unknown log level '" + std::string(level) + "'");
  // A reader that went away must not kill the process on the next line.
  std::signal(SIGPIPE, SIG_IGN);
  spdlog::init_thread_pool(kLogQueueLines, 1);
  g_sink = std::make_shared<FdSink>(STDERR_FILENO);
  auto logger =
      std::make_shared<spdlog::async_logger>(std::string(service), g_sink, spdlog::thread_pool(),
                                             spdlog::async_overflow_policy::overrun_oldest);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %-5l %n: %v");
  logger->set_level(*lvl);
  spdlog::set_default_logger(std::move(logger));
}

uint64_t log_lines_dropped() {
  if (!g_sink) return 0;
  auto pool = spdlog::thread_pool();
  return g_sink->dropped() + (pool ? pool->overrun_counter() : 0);
}

bool LogRateLimiter::allow(std::string_view key, std::chrono::steady_clock::time_point now,
                           uint64_t& suppressed) {
  std::lock_guard lock(mu_);
  auto it = windows_.find(std::string(key));
  if (it == windows_.end()) it = windows_.emplace(std::string(key), Window{now, 0, 0}).first;
  Window& w = it->second;
  if (now - w.start >= period_) {
    w.start = now;
    w.used = 0;
  }
  if (w.used >= burst_) {
    ++w.dropped;
    return false;
  }
  ++w.used;
  suppressed = w.dropped;
  w.dropped = 0;
  return true;
}

}  // namespace rmon
