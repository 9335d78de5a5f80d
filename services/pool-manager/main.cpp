// pool-manager: hands out the slots of the runner pools and frees the slot of
// a runner the monitor reports lost. See README.md and docs/PROTOCOL.md.

#include "rmon/service/main.hpp"
#include "pool_service.hpp"

int main(int argc, char** argv) {
  return rmon::run_service_main<rmon::pool::PoolConfig, rmon::pool::PoolManagerService>(
      argc, argv, "pool-manager",
      "Hands out the slots of the runner pools (acquire, release, status) and frees the slot of "
      "a runner the runner-monitor reports lost, or that never reaches it.");
}
