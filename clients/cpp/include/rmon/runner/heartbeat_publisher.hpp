#pragma once
// Publishes a runner's heartbeats to the runner-monitor from a background
// thread: every interval (with jitter, so a fleet started together does not
// beat in step), `seq` growing by one per message, with the runner's current
// `progress`. complete() and fail() send the terminal state a few times
// (PUB may drop a message) and stop; abandon() just stops, as a crash would.
//
// The destructor of a publisher still running sends `completed`, or `failed`
// when the scope is left by an exception. Thread-safe: set_progress() and the
// terminal calls may come from any thread; the socket lives on the
// publisher's own thread.

#include <zmq.hpp>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "rmon/protocol/messages.hpp"
#include "rmon/security/client.hpp"

namespace rmon::runner {

inline constexpr char kDefaultHeartbeatEndpoint[] = "tcp://127.0.0.1:5555";
inline constexpr std::size_t kMaxMonitorEndpoints = 16;

struct HeartbeatOptions {
  // Every monitor to publish to (a pair, or every partition): one PUB socket
  // connected to each, each heartbeat sent on all. When empty, `endpoint`
  // alone (one monitor, as before several were possible).
  std::vector<std::string> endpoints;
  std::string endpoint = kDefaultHeartbeatEndpoint;
  protocol::RunnerInfo runner;  // runner_id, task_id, attempt, pool, pool_type, pid, ...
  uint64_t interval_ms = 1000;
  std::optional<uint64_t> timeout_ms;  // the monitor's default when unset
  double jitter = 0.1;                 // each period is interval × (1 ± jitter)
  // --security curve: the runner's key pair and the monitor's public key
  // (security::ClientSecurity::keys_for(kMonitorService)). A refused key is
  // logged and retried with backoff (security::ClientSocket).
  std::optional<security::ClientKeys> curve;
  int terminal_repeats = 3;
  uint64_t terminal_spacing_ms = 50;
};

class HeartbeatPublisher {
 public:
  // Validates the runner (ids 1..128 bytes) and the endpoints (1 to 16;
  // throws std::invalid_argument), connects and starts beating at once.
  HeartbeatPublisher(zmq::context_t& ctx, HeartbeatOptions opts);
  ~HeartbeatPublisher();
  HeartbeatPublisher(const HeartbeatPublisher&) = delete;
  HeartbeatPublisher& operator=(const HeartbeatPublisher&) = delete;

  // Encoded MessagePack value carried from the next heartbeat on.
  void set_progress(std::optional<std::string> progress);
  void complete() { finish(protocol::RunnerState::kCompleted); }
  void fail() { finish(protocol::RunnerState::kFailed); }
  void abandon();
  uint64_t sent() const;  // heartbeats sent so far

 private:
  void finish(protocol::RunnerState state);
  void run();

  zmq::context_t& ctx_;
  const HeartbeatOptions opts_;
  const std::vector<std::string> endpoints_;  // `endpoints`, or `endpoint` alone
  const int uncaught_at_start_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<std::string> progress_;            // guarded by mu_
  std::optional<protocol::RunnerState> terminal_;  // guarded by mu_
  bool stop_ = false;                              // guarded by mu_
  uint64_t sent_ = 0;                              // guarded by mu_
  std::thread thread_;
};

}  // namespace rmon::runner
