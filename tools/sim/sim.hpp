#pragma once
// runner-sim: N simulated runners playing the real protocol against the
// real services. Each runner leases a task, acquires a slot in its pool,
// heartbeats while it works, then completes the task and releases the slot.
// A share of the runners crash once (stop heartbeating, abandon task and
// slot) and come back under a new id; some of those first return as zombies
// that try to complete their old attempt, which must be refused.

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "rmon/clock.hpp"
#include "rmon/security/client.hpp"

namespace rmon::sim {

// --security curve: the keys of each connection, per side (nullopt with off).
// The runners use a runner key; submitting and observing need an admin (or
// a key that may submit and read).
struct SimKeys {
  std::optional<security::ClientKeys> runner_monitor, runner_tasks, runner_pools;
  std::optional<security::ClientKeys> operator_monitor, operator_tasks, operator_pools;
};

struct SimOptions {
  // Every monitor the runners publish to (a pair: both).
  std::vector<std::string> heartbeat_endpoints = {"tcp://127.0.0.1:5555"};
  // Lists: a monitor pair, replicas of each service (the clients go to the
  // next when one does not answer).
  std::vector<std::string> monitor_endpoint = {"tcp://127.0.0.1:5559"};
  std::vector<std::string> task_queue_endpoint = {"tcp://127.0.0.1:5560"};
  std::vector<std::string> pool_manager_endpoint = {"tcp://127.0.0.1:5561"};
  std::size_t runners = 50;
  std::size_t submit = 0;  // tasks to submit before the runners start
  std::vector<std::string> pools = {"local:local-process", "docker:docker",
                                    "kubernetes:kubernetes"};
  uint64_t work_min_ms = 200;
  uint64_t work_max_ms = 800;
  uint64_t interval_ms = 200;
  uint64_t timeout_ms = 1000;
  double crash_fraction = 0.2;   // of the runners, each crashing once
  double zombie_fraction = 0.3;  // of the crashed runners
  uint64_t restart_delay_ms = 300;
  uint64_t duration_s = 0;      // 0: until the workload is done (or SIGINT/SIGTERM)
  uint64_t settle_ms = 15'000;  // at the end, wait this long at most for events and slots
  uint64_t seed = 1;
  std::string summary_file;  // also write the JSON summary here
  bool status = true;        // a status line per second
  SimKeys keys;
};

// What the runners did, from their side. Thread-safe.
struct SimStats {
  std::atomic<uint64_t> submitted{0}, leases{0}, completions{0}, crashes{0}, zombies{0},
      stale_refused{0}, zombie_accepted{0}, complete_errors{0}, pool_full_waits{0},
      slot_failures{0}, client_errors{0}, failovers{0};
  void completed(const std::string& task_id) {
    std::lock_guard lock(mu);
    if (!completed_once.insert(task_id).second) ++completed_twice;
  }
  uint64_t twice() {
    std::lock_guard lock(mu);
    return completed_twice;
  }

  std::mutex mu;
  std::set<std::string> completed_once;  // guarded by mu
  uint64_t completed_twice = 0;          // guarded by mu
};

// Runs runner `index` until `stop`, or until the workload is done.
void run_runner(const SimOptions& o, std::size_t index, bool crashes, bool zombie, SimStats& stats,
                const std::atomic<bool>& stop, const std::atomic<bool>& done);

}  // namespace rmon::sim
