#pragma once
// The dispatch loop, the thread that convicts: sweeps the table for expired
// runners, writes their timeout events to the outbox (durably: they must be
// on disk before their first send), and sends due events on each group's
// PUSH socket without blocking. Nothing else: acknowledgements are
// committed, and done events pruned, by the ack thread (AckWriter); the
// acknowledgements it committed reach the outbox here, through its
// AckMailbox, at the start of each pass.
//
// It sleeps until the earliest of: the table's next due time, the outbox's
// next due time, `max_sleep`, or a wake-up: the table calls wake() (through
// its waker) when ingest or control arms something earlier than the planned
// wake-up time, and the ack thread when it posted acknowledgements.
//
// Timeout WARN lines are rate limited (`timeout_log_burst` a second, then
// one line a second saying how many were held back); the lifecycle log and
// rmon_timeouts_total count every one. Redeliveries make at most one INFO
// line per group per pass (how many, the first event id), at most 5 per
// group in 10 s, the next line counting the redeliveries of those held back;
// each event's redelivery is a DEBUG line, and rmon_redeliveries_total
// counts every one.
//
// Uses the outbox and the sockets it is given; run() is used by one thread;
// wake() is thread-safe.

#include <atomic>
#include <functional>
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
#include "rmon/wake_signal.hpp"
#include "runner_table.hpp"

namespace rmon::monitor {

// Longest the dispatcher sleeps with nothing due (wake-ups cost CPU).
inline constexpr Millis kMaxDispatchSleep{1000};

struct DispatchOptions {
  GuardOptions guards;
  uint64_t backlog_alert = 10'000;  // pending events of one group that make an ERROR
  int timeout_log_burst = 20;       // "runner timed out" lines a second
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
        stall_(opts.guards, stats),
        redelivered_(outbox.groups().size()) {}

  // One pass: the acknowledgements posted, the guards, sweep, queue
  // (durably), send. `push[g]` is group g's socket; `planned` is when this
  // pass was meant to run.
  void tick(std::vector<zmq::socket_t>& push, std::optional<MonoTime> planned = std::nullopt);
  // Interrupts the current sleep. Thread-safe.
  void wake() { wake_.signal(); }
  // Where the control thread posts an operator's release of the storm brake
  // (taken at the next pass). Thread-safe; lives as long as the dispatcher.
  BrakeReleaseRequest& brake_release() { return brake_.release_request(); }
  // Runs passes until `stop` is set. `before_pass`, if set, runs on this
  // thread before each pass with the sockets (the service's per-socket
  // upkeep: dropping connections after a key was revoked).
  void run(std::vector<zmq::socket_t>& push, const std::atomic<bool>& stop, Millis max_sleep,
           const std::function<void(std::vector<zmq::socket_t>&)>& before_pass = {});

 private:
  void publish_gauges();
  void log_timeouts(MonoTime now);
  void note_redelivery(std::size_t group, const PendingEvent& e);
  void log_redeliveries(MonoTime now);

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
  std::vector<bool> over_backlog_;
  MonoTime next_held_count_{};
  WakeSignal wake_;
  LogRateLimiter timeout_log_{opts_.timeout_log_burst, std::chrono::seconds(1)};
  uint64_t timeout_lines_held_ = 0;  // since the last summary
  MonoTime timeout_summary_at_{};    // when to write it
  // Redeliveries of the current pass, and those of passes whose line was
  // held back, per group.
  struct Redelivered {
    uint64_t count = 0;
    std::string first_id;
    uint64_t max_delivery = 0;
    uint64_t held_back = 0;
  };
  std::vector<Redelivered> redelivered_;
  LogRateLimiter redelivery_log_{5, std::chrono::seconds(10)};
};

}  // namespace rmon::monitor
