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
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

int wait_for_stop_signal(const sigset_t& signals) {
  int sig = 0;
  sigwait(&signals, &sig);
  return sig;
}

void fail_service(const std::string& why) {
  spdlog::critical("service thread failed, stopping: {}", why);
  g_exit_status.store(1);
  ::kill(::getpid(), SIGTERM);
}

int service_exit_status() { return g_exit_status.load(); }

}  // namespace rmon
