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
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <zmq.hpp>

#include "guards.hpp"
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

struct DispatchOptions {
  GuardOptions guards;
  uint64_t backlog_alert = 10'000;        // pending events of one group that make an ERROR
  Millis tombstone_retention{1'200'000};  // done events kept (see OutboxStore)
};

class Dispatcher {
 public:
  Dispatcher(RunnerTable& table, Outbox& outbox, MonitorStats& stats, Metrics* metrics,
             const Clock& clock, DispatchOptions opts = {})
      : table_(table),
        outbox_(outbox),
        stats_(stats),
        metrics_(metrics),
        clock_(clock),
        opts_(opts),
        brake_(opts.guards, stats),
        stall_(opts.guards, stats) {}

  // One pass: the guards, sweep, queue (durably), send. `push[g]` is group
  // g's socket; `planned` is when this pass was meant to run.
  void tick(std::vector<zmq::socket_t>& push, std::optional<MonoTime> planned = std::nullopt);
  // Applies acknowledgement frames (one transaction).
  void handle_acks(const std::vector<std::string_view>& frames);
  void handle_ack(std::string_view frame) { handle_acks({frame}); }
  // Interrupts the current sleep. Thread-safe.
  void wake() { wake_.signal(); }
  // Runs passes until `stop` is set.
  void run(std::vector<zmq::socket_t>& push, zmq::socket_t& acks, const std::atomic<bool>& stop,
           Millis max_sleep);

 private:
  void publish_gauges();
  void maintain(MonoTime now);

  RunnerTable& table_;
  Outbox& outbox_;
  MonitorStats& stats_;
  Metrics* metrics_;  // may be null
  const Clock& clock_;
  const DispatchOptions opts_;
  StormBrake brake_;
  StallGuard stall_;
  bool holding_ = false;          // the last sweep convicted nobody (a guard held)
  std::vector<Expired> expired_;  // reused between passes
  std::vector<NewEvent> new_events_;
  std::vector<std::pair<std::string, std::string>> acks_;
  std::vector<AckResult> ack_results_;
  std::vector<bool> over_backlog_;
  MonoTime next_maintenance_{};
  MonoTime next_held_count_{};
  WakeSignal wake_;
  LogRateLimiter warn_limit_{5, std::chrono::seconds(10)};
};

}  // namespace rmon::monitor
