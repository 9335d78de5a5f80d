#pragma once
// Asks the runner-monitor (its control `get`) whether it knows a runner on a
// given (task, attempt): how task-queue and pool-manager learn that a runner
// never heartbeated, for the contract's first-heartbeat grace.
//
// One request is in flight at a time on a DEALER socket; replies are matched
// to it in order. A request unanswered within the timeout marks it and every
// queued check `unreachable` (the caller retries later) and replaces the
// socket, so a late reply can never be matched to the wrong check.
//
// Not thread-safe: owned by the service's loop thread.

#include <zmq.hpp>

#include <cstdint>
#include <deque>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "rmon/clock.hpp"

namespace rmon {

struct ProbeKey {
  std::string runner_id;
  std::string task_id;
  uint64_t attempt = 0;
  auto operator<=>(const ProbeKey&) const = default;
};

enum class ProbeVerdict : uint8_t {
  kSeen,         // the monitor knows this runner on this (task, attempt)
  kNotSeen,      // it does not (unknown runner, or one on another lifecycle)
  kUnreachable,  // no answer in time, or an answer that says nothing
};

struct ProbeResult {
  ProbeKey key;
  ProbeVerdict verdict;
};

class MonitorProbe {
 public:
  MonitorProbe(zmq::context_t& ctx, std::string control_endpoint, Millis timeout);

  // Queues a check; a key already queued or in flight is not queued twice.
  void enqueue(ProbeKey key);
  bool idle() const { return !in_flight_ && queue_.empty(); }
  std::size_t queued() const { return queue_.size() + (in_flight_ ? 1 : 0); }

  // The socket to poll for replies (ZMQ_POLLIN).
  zmq::socket_t& socket() { return socket_; }

  // Reads replies, expires a request past its timeout, sends the next one.
  // Appends finished checks to `out`. Call whenever the socket is readable
  // and at least every `timeout`.
  void poll(MonoTime now, std::vector<ProbeResult>& out);

  // When poll() next needs to run to expire the request in flight.
  std::optional<MonoTime> next_due() const;

 private:
  void reconnect();

  zmq::context_t& ctx_;
  const std::string endpoint_;
  const Millis timeout_;
  zmq::socket_t socket_;
  std::deque<ProbeKey> queue_;
  std::set<ProbeKey> known_;  // queued or in flight
  std::optional<ProbeKey> in_flight_;
  MonoTime sent_at_{};
};

}  // namespace rmon
