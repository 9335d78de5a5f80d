#pragma once
// The dispatch loop: sweeps the table for expired runners, queues their
// timeout events in the outbox, sends due events on each group's PUSH socket
// without blocking, and applies acknowledgements from the PULL socket.
//
// It sleeps until the earliest of: the table's next due time, the outbox's
// next due time, an acknowledgement, or `max_sleep`. No wake-up signal from
// ingest is needed: anything ingest or control arms is due at least
// min_timeout * suspect_ratio after it is armed, and max_sleep is kept below
// that (see MonitorService).
//
// Owns the outbox and the sockets it is given; used by one thread.

#include <atomic>
#include <vector>

#include <zmq.hpp>

#include "metrics.hpp"
#include "monitor_stats.hpp"
#include "outbox.hpp"
#include "rmon/clock.hpp"
#include "rmon/logging.hpp"
#include "runner_table.hpp"

namespace rmon::monitor {

class Dispatcher {
 public:
  Dispatcher(RunnerTable& table, Outbox& outbox, MonitorStats& stats, Metrics* metrics,
             const Clock& clock)
      : table_(table), outbox_(outbox), stats_(stats), metrics_(metrics), clock_(clock) {}

  // One pass: sweep, queue, send. `push[g]` is group g's socket.
  void tick(std::vector<zmq::socket_t>& push);
  // Applies one acknowledgement frame.
  void handle_ack(std::string_view frame);
  // Runs passes until `stop` is set.
  void run(std::vector<zmq::socket_t>& push, zmq::socket_t& acks, const std::atomic<bool>& stop,
           Millis max_sleep);

 private:
  void publish_gauges();

  RunnerTable& table_;
  Outbox& outbox_;
  MonitorStats& stats_;
  Metrics* metrics_;  // may be null
  const Clock& clock_;
  std::vector<Expired> expired_;  // reused between passes
  LogRateLimiter warn_limit_{5, std::chrono::seconds(10)};
};

}  // namespace rmon::monitor
