#pragma once
// The dispatch loop: sweeps the table for expired runners, queues their
// timeout events in the outbox, sends due events on each group's PUSH socket
// without blocking, and applies acknowledgements from the PULL socket.
//
// It sleeps until the earliest of: the table's next due time, the outbox's
// next due time, an acknowledgement, `max_sleep`, or a wake-up: the table
// calls wake() (through its waker) when ingest or control arms something
// earlier than the planned wake-up time.
//
// Owns the outbox and the sockets it is given; run() is used by one thread;
// wake() is thread-safe.

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

// An eventfd: any thread can signal it; the dispatcher polls it.
class WakeSignal {
 public:
  WakeSignal();
  ~WakeSignal();
  WakeSignal(const WakeSignal&) = delete;
  WakeSignal& operator=(const WakeSignal&) = delete;
  void signal();  // thread-safe, never blocks
  void drain();   // clears pending signals
  int fd() const { return fd_; }

 private:
  int fd_;
};

// Longest the dispatcher sleeps with nothing due (wake-ups cost CPU).
inline constexpr Millis kMaxDispatchSleep{1000};

class Dispatcher {
 public:
  Dispatcher(RunnerTable& table, Outbox& outbox, MonitorStats& stats, Metrics* metrics,
             const Clock& clock)
      : table_(table), outbox_(outbox), stats_(stats), metrics_(metrics), clock_(clock) {}

  // One pass: sweep, queue, send. `push[g]` is group g's socket.
  void tick(std::vector<zmq::socket_t>& push);
  // Applies one acknowledgement frame.
  void handle_ack(std::string_view frame);
  // Interrupts the current sleep. Thread-safe.
  void wake() { wake_.signal(); }
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
  WakeSignal wake_;
  LogRateLimiter warn_limit_{5, std::chrono::seconds(10)};
};

}  // namespace rmon::monitor
