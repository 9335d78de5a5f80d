#include "pool_config.hpp"

namespace rmon::pool {

PoolConfig::PoolConfig() {
  set_api_port(5561);
  events_endpoints = {"tcp://127.0.0.1:5557"};
  metrics_address = default_metrics_address(9466);
}

void PoolConfig::register_settings(Settings& s) {
  ConsumerServiceConfig::register_settings(s);
  s.add("pool", pools,
        "A pool as name=type:slots (type local-process, docker or kubernetes; 1 to 100000 "
        "slots); repeat the flag, or separate with commas")
      ->delimiter(',');
  s.add("event-retention-ms", event_retention_ms,
        "How long applied timeout event ids are remembered (repeats within it are ignored)");
}

std::string PoolConfig::validate() const {
  if (std::string err = ConsumerServiceConfig::validate(); !err.empty()) return err;
  std::vector<PoolSpec> specs;
  if (std::string err = parse_pool_specs(pools, specs); !err.empty()) return err;
  if (event_retention_ms < 60'000 || event_retention_ms > 30ULL * 86'400'000) {
    return "--event-retention-ms must be within 60000..2592000000 (1 min to 30 days)";
  }
  return {};
}

std::vector<PoolSpec> PoolConfig::pool_specs() const {
  std::vector<PoolSpec> specs;
  (void)parse_pool_specs(pools, specs);
  return specs;
}

StoreOptions PoolConfig::store_options() const {
  StoreOptions o;
  o.sync = sync_mode();
  o.first_heartbeat_grace = Millis(first_heartbeat_grace_ms);
  o.event_retention = Millis(event_retention_ms);
  return o;
}

}  // namespace rmon::pool
