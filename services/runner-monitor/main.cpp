// runner-monitor: watches runner heartbeats and reports silent runners to
// every consumer group. See README.md and docs/PROTOCOL.md.

#include "rmon/service/main.hpp"
#include "service.hpp"

int main(int argc, char** argv) {
  return rmon::run_service_main<rmon::monitor::MonitorConfig, rmon::monitor::MonitorService>(
      argc, argv, "runner-monitor",
      "Detects silent runners from their heartbeats and sends one timeout event per lost task "
      "attempt to every consumer group.");
}
