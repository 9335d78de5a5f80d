#pragma once
// Prometheus metrics. Counters are read at scrape time from the table's and
// the service's own atomics (one source of truth, shared with the `stats` op);
// only the detection-lateness histogram is a prometheus-cpp metric.
// Thread-safe.

#include <prometheus/histogram.h>

#include <memory>
#include <string>
#include <utility>

#include "monitor_stats.hpp"
#include "persister.hpp"
#include "rmon/service/metrics_endpoint.hpp"
#include "rmon/store/sqlite.hpp"
#include "runner_table.hpp"

namespace rmon::monitor {

// The data folder's counters: both null when the monitor keeps none.
struct StorageStats {
  const PersisterStats* saves = nullptr;                           // the saved table
  const store::Checkpointer::Stats* outbox_checkpoints = nullptr;  // the outbox's log
};

class Metrics {
 public:
  Metrics(const RunnerTable& table, const MonitorStats& stats, StorageStats storage = {});

  // Seconds from a runner's deadline to its event's first send.
  void observe_lateness(double seconds) { lateness_->Observe(seconds); }

  // Starts serving /metrics on `bind` ("0.0.0.0:9464", "127.0.0.1:0").
  // Returns the port bound. Throws on failure (a start-up error).
  int serve(const std::string& bind) { return endpoint_.serve(bind); }

  // The text exposition format, as a scrape would see it.
  std::string render() const { return endpoint_.render(); }
  // More families built at scrape time (thread-safe `fn`).
  void add_collector(MetricsEndpoint::CollectFn fn) { endpoint_.add_collector(std::move(fn)); }

 private:
  MetricsEndpoint endpoint_;  // the shared /metrics skeleton (rmon::service)
  prometheus::Histogram* lateness_;
};

}  // namespace rmon::monitor
