#pragma once
// The HTTP port every service serves (--metrics-address), on the common
// HttpServer:
//   GET /metrics   the Prometheus text format (prometheus-cpp's serializer),
//                  built at scrape time from the service's own counters (one
//                  source of truth, shared with its `stats` op);
//   GET /healthz   200 while the process serves (liveness);
//   GET /readyz    200 when the service can do its work, 503 with the reason
//                  when not (readiness: set_readiness()).
// Thread-safe.

#include <prometheus/client_metric.h>
#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace rmon {

class HttpServer;

// What /readyz answers: ready, and a line saying what was checked (or why not).
struct Readiness {
  bool ready = true;
  std::string detail;
};

class MetricsEndpoint {
 public:
  using CollectFn = std::function<std::vector<prometheus::MetricFamily>()>;

  MetricsEndpoint();
  ~MetricsEndpoint();

  // For prometheus-cpp metrics a service updates itself (histograms).
  prometheus::Registry& registry() { return *registry_; }
  // `fn` is called at every scrape; it must be thread-safe.
  void add_collector(CollectFn fn);

  // /readyz's check, called for each probe from an HTTP thread (it must be
  // thread-safe and quick). Without one, a serving process is ready.
  void set_readiness(std::function<Readiness()> fn);

  // Starts serving on `bind` ("0.0.0.0:9464", "127.0.0.1:0"). Returns the
  // port bound. Throws on failure (a start-up error).
  int serve(const std::string& bind);
  // The text exposition format, as a scrape would see it.
  std::string render() const;

 private:
  class Collector;
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<Collector> collector_;
  std::function<Readiness()> readiness_;  // set before serve()
  std::unique_ptr<HttpServer> http_;
};

namespace metrics {
prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType type);
// Adds one sample (a counter's or a gauge's value, by the family's type).
void add(prometheus::MetricFamily& f, double value,
         std::vector<prometheus::ClientMetric::Label> labels = {});
}  // namespace metrics

}  // namespace rmon
