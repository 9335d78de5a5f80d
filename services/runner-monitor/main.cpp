// runner-monitor: watches runner heartbeats and reports silent runners to
// every consumer group. See README.md and docs/PROTOCOL.md.

#include <spdlog/spdlog.h>

#include <csignal>
#include <exception>

#include "service.hpp"

int main(int argc, char** argv) {
  rmon::monitor::MonitorConfig config;
  rmon::Settings settings("runner-monitor",
                          "Detects silent runners from their heartbeats and sends one timeout "
                          "event per lost task attempt to every consumer group.");
  config.register_settings(settings);
  if (auto code = settings.parse(argc, argv)) return *code;

  try {
    rmon::init_logging("runner-monitor", settings.log_level());
    if (std::string err = config.validate(); !err.empty()) {
      spdlog::error("invalid configuration: {}", err);
      return 2;
    }
    // Block SIGINT/SIGTERM in every thread; the main thread waits for them.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    rmon::monitor::MonitorService service(config, rmon::SystemClock::instance());
    service.start();
    int sig = 0;
    sigwait(&signals, &sig);
    spdlog::info("signal received signal={}, stopping", sig);
    service.stop();
    return 0;
  } catch (const std::exception& e) {
    spdlog::error("runner-monitor failed: {}", e.what());
    return 1;
  }
}
