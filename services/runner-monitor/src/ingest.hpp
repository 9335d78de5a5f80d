#pragma once
// The ingest loop: heartbeats from the SUB socket, decoded and applied to the
// table. Bad messages are counted by reason and logged at WARN (rate
// limited); they never stop the loop and never change the table. With a
// MessageGate (--security curve) a heartbeat for a runner_id outside its
// sender's prefix is dropped, counted and logged by the gate.
//
// One IngestLoop per SUB socket, used by one thread.

#include <atomic>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "monitor_stats.hpp"
#include "rmon/clock.hpp"
#include "rmon/logging.hpp"
#include "rmon/service/server_security.hpp"
#include "runner_table.hpp"

namespace rmon::monitor {

class IngestLoop {
 public:
  // `gate` (null: no per-message check) outlives the loop and is used only
  // by the thread that handles messages.
  IngestLoop(RunnerTable& table, MonitorStats& stats, const Clock& clock,
             MessageGate* gate = nullptr)
      : table_(table), stats_(stats), clock_(clock), gate_(gate) {}

  // Handles one received message (its frames), received at `now` / `wall_ms`.
  void handle(const std::vector<zmq::message_t>& frames, MonoTime now, int64_t wall_ms);
  void handle(const std::vector<zmq::message_t>& frames) {
    handle(frames, clock_.now(), clock_.wall_ms());
  }
  // Receives and handles until `stop` is set; polls every `poll_ms`.
  void run(zmq::socket_t& sub, const std::atomic<bool>& stop, int poll_ms = 100);

 private:
  void reject(const protocol::Rejection& r, std::string_view topic);

  RunnerTable& table_;
  MonitorStats& stats_;
  const Clock& clock_;
  MessageGate* const gate_;
  protocol::Heartbeat scratch_;  // reused: no allocation per heartbeat
  LogRateLimiter warn_limit_{5, std::chrono::seconds(10)};
};

}  // namespace rmon::monitor
