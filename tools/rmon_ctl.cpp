// rmon-ctl: one command-line client for the whole stack.
//   rmon-ctl runners list|get|count|stats|ping|add|remove|set-state   (runner-monitor)
//   rmon-ctl tasks submit|list|get|cancel|stats                      (task-queue)
//   rmon-ctl pools status|stats                                      (pool-manager)
//   rmon-ctl ping [--service S]                                      (all three, or one)
// Tables for people, --json for machines; exit status 0 ok, 1 a service
// answered an error, 2 usage, 3 no answer in time. The commands live in
// tools/ctl/.

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <iostream>

#include "ctl/ctl.hpp"

int main(int argc, char** argv) {
  namespace ctl = rmon::ctl;
  // The libraries' log lines (a refused key: "key not enrolled: ...") go to
  // stderr, never into the tables or JSON on stdout. Set before any thread.
  auto log = spdlog::stderr_logger_mt("rmon-ctl");
  log->set_pattern("rmon-ctl: %l: %v");
  log->set_level(spdlog::level::warn);
  spdlog::set_default_logger(log);
  CLI::App app("One client for runner-monitor, task-queue and pool-manager", "rmon-ctl");
  ctl::Ctl c(std::cout, std::cerr);
  c.setup(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help, the version or the error
    return rc == 0 ? ctl::kOk : ctl::kUsage;
  }
  if (!c.action) return ctl::kUsage;
  try {
    return c.action();
  } catch (const ctl::UsageError& e) {
    std::cerr << "rmon-ctl: " << e.what() << "\n";
    return ctl::kUsage;
  } catch (const std::exception& e) {
    std::cerr << "rmon-ctl: " << e.what() << "\n";
    return ctl::kServiceError;
  }
}
