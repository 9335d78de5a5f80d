// rmon-console: the operators' web console (src/console_service.hpp).
#include "rmon/service/main.hpp"
#include "console_service.hpp"

int main(int argc, char** argv) {
  return rmon::run_service_main<rmon::console::ConsoleConfig, rmon::console::ConsoleService>(
      argc, argv, "rmon-console",
      "Web console for runner-monitor, task-queue and pool-manager (http://127.0.0.1:8080/)");
}
