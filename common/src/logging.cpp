#include "rmon/logging.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <stdexcept>

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

void init_logging(std::string_view service, std::string_view level) {
  auto lvl = parse_log_level(level);
  if (!lvl) throw std::invalid_argument("unknown log level '" + std::string(level) + "'");
  auto logger = spdlog::stderr_color_mt(std::string(service));
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%-5l%$ %n: %v");
  logger->set_level(*lvl);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
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
