#pragma once
// The /metrics endpoint every service serves (prometheus-cpp's pull
// exposer), with helpers to build metric families at scrape time from a
// service's own counters (one source of truth, shared with its `stats` op).
// Thread-safe.

#include <prometheus/client_metric.h>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace rmon {

class MetricsEndpoint {
 public:
  using CollectFn = std::function<std::vector<prometheus::MetricFamily>()>;

  MetricsEndpoint();
  ~MetricsEndpoint();

  // For prometheus-cpp metrics a service updates itself (histograms).
  prometheus::Registry& registry() { return *registry_; }
  // `fn` is called at every scrape; it must be thread-safe.
  void add_collector(CollectFn fn);

  // Starts serving /metrics on `bind` ("0.0.0.0:9464", "127.0.0.1:0").
  // Returns the port bound. Throws on failure (a start-up error).
  int serve(const std::string& bind);
  // The text exposition format, as a scrape would see it.
  std::string render() const;

 private:
  class Collector;
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<Collector> collector_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

namespace metrics {
prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType type);
// Adds one sample (a counter's or a gauge's value, by the family's type).
void add(prometheus::MetricFamily& f, double value,
         std::vector<prometheus::ClientMetric::Label> labels = {});
}  // namespace metrics

}  // namespace rmon
