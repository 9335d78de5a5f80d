#pragma once
// task-queue's /metrics: families built at scrape time from TaskQueueStats
// and the event consumer's counters, plus a histogram of commit batch sizes.
// Thread-safe.

#include <prometheus/histogram.h>

#include <algorithm>

#include "rmon/service/event_consumer.hpp"
#include "rmon/service/metrics_endpoint.hpp"
#include "task_api.hpp"

namespace rmon::tq {

class TaskMetrics {
 public:
  TaskMetrics(const TaskQueueStats& stats, const EventConsumer& events);
  MetricsEndpoint& endpoint() { return endpoint_; }
  void observe_batch(std::size_t size) { batch_->Observe(static_cast<double>(size)); }
  void observe_reassign_lateness(double seconds) { lateness_->Observe(std::max(0.0, seconds)); }

 private:
  MetricsEndpoint endpoint_;
  prometheus::Histogram* batch_;
  prometheus::Histogram* lateness_;
};

}  // namespace rmon::tq
