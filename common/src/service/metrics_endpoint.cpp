#include "rmon/service/metrics_endpoint.hpp"

#include <prometheus/text_serializer.h>

#include <mutex>
#include <stdexcept>

#include "rmon/http_server.hpp"
#include "rmon/log_sink.hpp"

namespace rmon {

class MetricsEndpoint::Collector : public prometheus::Collectable {
 public:
  void add(CollectFn fn) {
    std::lock_guard lock(mu_);
    fns_.push_back(std::move(fn));
  }
  std::vector<prometheus::MetricFamily> Collect() const override {
    std::lock_guard lock(mu_);
    std::vector<prometheus::MetricFamily> out;
    for (const auto& fn : fns_) {
      auto part = fn();
      out.insert(out.end(), std::make_move_iterator(part.begin()),
                 std::make_move_iterator(part.end()));
    }
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<CollectFn> fns_;  // guarded by mu_
};

MetricsEndpoint::MetricsEndpoint()
    : registry_(std::make_shared<prometheus::Registry>()),
      collector_(std::make_shared<Collector>()) {
  // Every service: what its non-blocking logging had to drop.
  add_collector([] {
    auto f = metrics::family("rmon_log_lines_dropped_total",
                             "Log lines dropped: the log queue was full or stderr was stalled",
                             prometheus::MetricType::Counter);
    metrics::add(f, static_cast<double>(log_lines_dropped()));
    return std::vector<prometheus::MetricFamily>{std::move(f)};
  });
}

MetricsEndpoint::~MetricsEndpoint() = default;

void MetricsEndpoint::add_collector(CollectFn fn) { collector_->add(std::move(fn)); }

void MetricsEndpoint::set_readiness(std::function<Readiness()> fn) { readiness_ = std::move(fn); }

int MetricsEndpoint::serve(const std::string& bind) {
  http_ = std::make_unique<HttpServer>([this](const HttpRequest& r) {
    HttpResponse res;
    res.content_type = "text/plain; charset=utf-8";
    if (r.method != "GET" && r.method != "HEAD") {
      res.status = 405;
      res.body = "only GET\n";
    } else if (r.path == "/metrics") {
      res.content_type = "text/plain; version=0.0.4; charset=utf-8";
      res.body = render();
    } else if (r.path == "/healthz") {
      res.body = "ok\n";
    } else if (r.path == "/readyz") {
      const Readiness ready = readiness_ ? readiness_() : Readiness{true, "serving"};
      res.status = ready.ready ? 200 : 503;
      res.body = (ready.ready ? "ready: " : "not ready: ") + ready.detail + "\n";
    } else {
      res.status = 404;
      res.body = "not found: /metrics, /healthz and /readyz are served here\n";
    }
    return res;
  });
  // Two threads: a scrape and a probe at once.
  return http_->start(bind, 2, "--metrics-address; empty disables it");
}

std::string MetricsEndpoint::render() const {
  auto families = collector_->Collect();
  auto more = registry_->Collect();
  families.insert(families.end(), more.begin(), more.end());
  return prometheus::TextSerializer().Serialize(families);
}

namespace metrics {

prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void add(prometheus::MetricFamily& f, double value,
         std::vector<prometheus::ClientMetric::Label> labels) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  if (f.type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
}

}  // namespace metrics
}  // namespace rmon
