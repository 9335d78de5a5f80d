#pragma once
// task-queue settings: the shared consumer-service settings with this
// service's defaults (API port 5560 on loopback unless --security curve, events from the monitor's
// task-queue group, /metrics on 9465), plus backoff, bounds and retention. Each is a flag, an
// RMON_* environment variable and a config-file key.

#include <cstdint>

#include "rmon/service/consumer_config.hpp"
#include "task_store.hpp"

namespace rmon::tq {

struct TaskQueueConfig : ConsumerServiceConfig {
  TaskQueueConfig();

  uint64_t backoff_base_ms = 500;
  double backoff_factor = 2.0;
  uint64_t backoff_cap_ms = 60'000;
  uint64_t max_tasks = 1'000'000;  // live (queued + leased)
  uint64_t retention_ms = 7ull * 86'400'000;
  uint64_t event_retention_ms = 86'400'000;

  void register_settings(Settings& s);
  std::string validate() const;
  StoreOptions store_options() const;
};

}  // namespace rmon::tq
