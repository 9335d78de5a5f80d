#pragma once
// pool-manager settings: the consumer services' shared settings (data folder,
// sync, endpoints, grace; rmon/service/consumer_config.hpp) with
// pool-manager's defaults, plus the pools. Each is a flag, an RMON_*
// environment variable and a config-file key; `pool-manager --help` lists them.

#include <cstdint>
#include <string>
#include <vector>

#include "pool_spec.hpp"
#include "pool_store.hpp"
#include "rmon/service/consumer_config.hpp"

namespace rmon::pool {

struct PoolConfig : ConsumerServiceConfig {
  PoolConfig();

  // "name=type:slots"; --pool repeated, or comma separated (RMON_POOL).
  std::vector<std::string> pools = {"local=local-process:8", "docker=docker:8",
                                    "kubernetes=kubernetes:8"};
  uint64_t event_retention_ms = 86'400'000;  // applied event ids are remembered this long

  void register_settings(Settings& s);
  std::string validate() const;  // empty when consistent

  std::vector<PoolSpec> pool_specs() const;  // parsed `pools`; valid after validate()
  StoreOptions store_options() const;
};

}  // namespace rmon::pool
