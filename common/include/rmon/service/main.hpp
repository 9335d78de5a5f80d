#pragma once
// The skeleton of every service's main(): settings from flags, environment
// and config file, logging, SIGINT/SIGTERM handling, start, wait, stop.
//
//   Config:  register_settings(Settings&), resolve_defaults(const Settings&)
//            (defaults that depend on other settings: --security's endpoints),
//            validate() -> std::string (empty if ok; exit status 2 if not)
//   Service: Service(Config, const Clock&), start(), stop(), and optionally
//            reload_keys() (SIGHUP: --security curve's clients folder)
//
// A service thread that hits an unexpected exception calls fail_service():
// the process logs it, stops and exits with status 1, so a supervisor
// restarts it; what was committed stays committed.

#include <spdlog/spdlog.h>

#include <csignal>
#include <exception>
#include <functional>
#include <string>

#include "rmon/clock.hpp"
#include "rmon/config.hpp"
#include "rmon/logging.hpp"

namespace rmon {

// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread (and the threads
// it starts afterwards) and returns the set, for wait_for_stop_signal().
sigset_t block_stop_signals();
// Waits for SIGINT or SIGTERM and returns the signal number; each SIGHUP
// meanwhile calls `on_hangup` (reload the keys) and the wait goes on.
int wait_for_stop_signal(const sigset_t& signals, const std::function<void()>& on_hangup = {});
// From any thread: logs `why` as critical and makes the main thread stop the
// service and exit with status 1.
void fail_service(const std::string& why);
// The exit status after wait_for_stop_signal() returned: 0 for a signal, 1
// after fail_service().
int service_exit_status();

template <class Config, class Service>
int run_service_main(int argc, char** argv, const char* name, const char* description) {
  Config config;
  Settings settings(name, description);
  config.register_settings(settings);
  if (auto code = settings.parse(argc, argv)) return *code;
  config.resolve_defaults(settings);
  try {
    init_logging(name, settings.log_level());
    if (std::string err = config.validate(); !err.empty()) {
      spdlog::error("invalid configuration: {}", err);
      return 2;
    }
    const sigset_t signals = block_stop_signals();
    int status = 0;
    {
      Service service(config, SystemClock::instance());
      service.start();
      const int sig = wait_for_stop_signal(signals, [&service] {
        if constexpr (requires { service.reload_keys(); }) {
          service.reload_keys();
        }
      });
      spdlog::info("{} stopping signal={}", name, sig);
      service.stop();
      status = service_exit_status();
    }  // destroyed before logging shuts down: threads it owns (the ZAP handler's) may log
    spdlog::info("{} exiting status={}", name, status);
    spdlog::shutdown();
    return status;
  } catch (const std::exception& e) {
    spdlog::error("{} failed: {}", name, e.what());
    return 1;
  }
}

}  // namespace rmon
