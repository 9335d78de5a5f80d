#include "rmon/service/main.hpp"

#include <pthread.h>
#include <unistd.h>

#include <atomic>

namespace rmon {

namespace {
std::atomic<int> g_exit_status{0};
}

sigset_t block_stop_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

int wait_for_stop_signal(const sigset_t& signals, const std::function<void()>& on_hangup) {
  while (true) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig != SIGHUP) return sig;
    spdlog::info("SIGHUP: reloading keys");
    if (on_hangup) on_hangup();
  }
}

void fail_service(const std::string& why) {
  spdlog::critical("service thread failed, stopping: {}", why);
  g_exit_status.store(1);
  ::kill(::getpid(), SIGTERM);
}

int service_exit_status() { return g_exit_status.load(); }

}  // namespace rmon
