#pragma once
// The loop a stateful service (task-queue, pool-manager) runs on one thread:
// it polls the API's ROUTER socket, the monitor's timeout events and the
// monitor probe, gathers whatever arrived together (up to max_batch) into one
// batch, and hands it to the handler, which applies it in one transaction
// (group commit: one fsync for the whole batch). Replies and acks are sent
// only after the handler returns, i.e. after the commit.
//
// Periodic work (first-heartbeat grace, retention) runs every tick_interval.
// Returns when `stop` is set; a batch in progress is finished first.

#include <zmq.hpp>

#include <atomic>
#include <vector>

#include "rmon/clock.hpp"
#include "rmon/service/event_consumer.hpp"
#include "rmon/service/monitor_probe.hpp"
#include "rmon/service/router.hpp"

namespace rmon {

class BatchHandler {
 public:
  virtual ~BatchHandler() = default;
  // Fills every request's reply and marks the events whose effect is
  // committed (`ack`). Commits before it returns. Must not throw: a storage
  // failure answers the batch with an error and acknowledges nothing.
  virtual void apply(std::vector<Request>& requests, std::vector<ConsumedEvent>& events) = 0;
  // Finished first-heartbeat checks (see MonitorProbe).
  virtual void on_probe_results(std::vector<ProbeResult>& results) = 0;
  // Periodic work; may enqueue probe checks. Must not throw.
  virtual void tick() = 0;
};

struct BatchLoopOptions {
  std::size_t max_batch = 512;  // requests and events per commit
  Millis tick_interval{1000};
  Millis stop_check{100};  // longest a stop request waits
};

void run_batch_loop(zmq::socket_t& api, EventConsumer& events, MonitorProbe* probe,
                    BatchHandler& handler, const Clock& clock, const std::atomic<bool>& stop,
                    const BatchLoopOptions& opts = {});

}  // namespace rmon
