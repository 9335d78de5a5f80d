#pragma once
// rmon-console: the web console. Serves the pages (web/, compiled in) and a
// JSON API over the three services' own APIs:
//
//   GET  /api/overview                    monitor stats, task stats, pools, the chart's history
//   GET  /api/runners?state&pool&after&limit   a page of runners (limit ≤ 1000, default 100)
//   GET  /api/runner?id=                  one runner
//   GET  /api/tasks?state&pool&after&limit     a page of tasks
//   GET  /api/task?id=                    one task
//   GET  /api/pools                       every pool's slots and holders
//   POST /api/task/cancel?id=             cancel a queued or leased task
//   POST /api/task/retry?id=              submit a dead task again (same payload, pool,
//                                         priority, attempts), once: a second retry of it
//                                         answers the same new task (created: false)
//   POST /api/brake/release               release the monitor's storm brake
//
// A POST needs the X-Rmon-Console header, which the page sends and a form on
// another site cannot, and must not come from another origin (Origin,
// Sec-Fetch-Site); CORS is off, so a preflight is refused (cross-site request
// forgery). A request whose Host is not a loopback name or an --allowed-host
// is refused, whatever --listen is (DNS rebinding).

#include <memory>
#include <string>

#include "console_config.hpp"
#include "gateway.hpp"
#include "history.hpp"
#include "rmon/clock.hpp"
#include "rmon/http_server.hpp"

namespace rmon::console {

class ConsoleService {
 public:
  ConsoleService(ConsoleConfig config, const Clock& clock);
  ~ConsoleService();

  void start();
  void stop();
  int port() const { return port_; }

  // One request, as the HTTP server hands it over (tests call it directly).
  HttpResponse handle(const HttpRequest& req);

 private:
  HttpResponse api(const HttpRequest& req);
  HttpResponse overview();
  HttpResponse runners(const HttpRequest& req);
  HttpResponse tasks(const HttpRequest& req);
  HttpResponse retry(const std::string& task_id);
  Sample sample();
  bool host_allowed(const std::string& host) const;
  bool cross_site(const HttpRequest& req) const;

  const ConsoleConfig config_;
  const Clock& clock_;
  std::unique_ptr<Gateway> gateway_;
  std::unique_ptr<History> history_;
  std::unique_ptr<HttpServer> http_;
  int port_ = 0;
};

}  // namespace rmon::console
