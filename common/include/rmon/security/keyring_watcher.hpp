#pragma once
// Reloads a keyring when its directory changes (inotify) and when asked
// (trigger(), e.g. on SIGHUP), on a thread of its own.
//
// Changes are debounced: a burst of events (an operator copying ten files,
// an atomic rename) leads to one reload `debounce` after the last event.
// trigger() reloads at once. If the directory itself is removed or replaced,
// the watch is re-armed at the next trigger() (the reload reports kFailed
// while it is missing).
//
// Wiring: a service blocks SIGHUP with its stop signals, and its signal loop
// calls trigger() when sigwait returns SIGHUP.
//
// Thread-safe: trigger() and reloads() may be called from any thread.

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "rmon/security/keyring.hpp"

namespace rmon::security {

class KeyringWatcher {
 public:
  // Called on the watcher thread after each reload, outside any lock (log,
  // count). The default logs with log_reload().
  using OnReload = std::function<void(const ReloadResult&, std::string_view cause)>;

  // Starts watching. Throws std::system_error when inotify is unavailable or
  // the directory cannot be watched (a start-up error).
  explicit KeyringWatcher(Keyring& keyring, OnReload on_reload = {},
                          std::chrono::milliseconds debounce = std::chrono::milliseconds(200));
  // Stops the thread (a reload in progress finishes first).
  ~KeyringWatcher();
  KeyringWatcher(const KeyringWatcher&) = delete;
  KeyringWatcher& operator=(const KeyringWatcher&) = delete;

  // Requests a reload now. Async-signal-safe (one write to an eventfd).
  void trigger();
  // Reloads done by this watcher so far (tests wait on it).
  uint64_t reloads() const { return reloads_.load(std::memory_order_acquire); }

 private:
  void run();
  bool arm_watch();

  Keyring& keyring_;
  const OnReload on_reload_;
  const std::chrono::milliseconds debounce_;
  int inotify_fd_ = -1;
  int wake_fd_ = -1;  // eventfd written by trigger() and the destructor
  int watch_ = -1;    // the watcher thread's, once started
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> reloads_{0};
  std::thread thread_;
};

}  // namespace rmon::security
