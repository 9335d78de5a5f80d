#pragma once
// The consumer side of the monitors' timeout events, shared by task-queue and
// pool-manager: for each monitor listed (one, a pair, or partitions), a PULL
// socket connected to its group endpoint and a PUSH socket connected to its
// ack endpoint. Each event is acknowledged to the monitor it came from.
// Events are decoded strictly; malformed frames are counted, logged (rate
// limited) and dropped. The caller acknowledges an event only after its
// effect is committed: an event that is never acknowledged is redelivered by
// its monitor.
//
// Not thread-safe: owned by the service's loop thread.

#include <zmq.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rmon/logging.hpp"
#include "rmon/protocol/messages.hpp"
#include "rmon/security/client.hpp"

namespace rmon {

struct ConsumedEvent {
  protocol::TimeoutEvent event;
  bool ack = false;         // set by the handler once the effect is committed
  std::size_t monitor = 0;  // the monitor it came from (index), acknowledged there
};

// One monitor's two sockets for a group.
struct MonitorLink {
  std::string events_endpoint;  // its PUSH for the group
  std::string ack_endpoint;     // its ack PULL
};

class EventConsumer {
 public:
  // Connects both sockets of every monitor, as CURVE clients with `keys`
  // (--security curve); throws zmq::error_t on a malformed endpoint.
  EventConsumer(zmq::context_t& ctx, std::string group, const std::vector<MonitorLink>& monitors,
                std::optional<security::ClientKeys> keys = std::nullopt);
  // One monitor.
  EventConsumer(zmq::context_t& ctx, std::string group, const std::string& events_endpoint,
                const std::string& ack_endpoint,
                std::optional<security::ClientKeys> keys = std::nullopt)
      : EventConsumer(ctx, std::move(group), {{events_endpoint, ack_endpoint}}, std::move(keys)) {}

  std::size_t monitor_count() const { return links_.size(); }
  zmq::socket_t& events_socket(std::size_t monitor = 0) { return links_[monitor].events->socket(); }
  const std::string& group() const { return group_; }

  // A refused handshake on any socket: logged, the socket replaced with
  // backoff. Call once per loop pass.
  void maintain();
  // Appends the events ready now (never blocks), at most `max`, taking from
  // each monitor in turn so that none starves the others.
  std::size_t receive(std::vector<ConsumedEvent>& out, std::size_t max);
  // Sends the acks of every event marked `ack`, each to its monitor. Never
  // blocks: an ack that cannot be queued is dropped and the monitor
  // redelivers the event.
  void send_acks(const std::vector<ConsumedEvent>& events);

  uint64_t received() const { return received_.load(std::memory_order_relaxed); }
  uint64_t rejected() const { return rejected_.load(std::memory_order_relaxed); }
  uint64_t acks_sent() const { return acks_sent_.load(std::memory_order_relaxed); }

 private:
  struct Link {
    std::unique_ptr<security::ClientSocket> events;
    std::unique_ptr<security::ClientSocket> acks;
  };
  enum class Received { kNone, kRejected, kEvent };
  // One frame from monitor `i`, if one is ready; an event is appended to `out`.
  Received receive_one(std::size_t i, std::vector<ConsumedEvent>& out,
                       std::vector<zmq::message_t>& frames);

  const std::string group_;
  std::vector<Link> links_;
  std::size_t next_ = 0;  // the monitor receive() starts with
  std::atomic<uint64_t> received_{0}, rejected_{0}, acks_sent_{0};
  LogRateLimiter warn_limit_{5, std::chrono::seconds(10)};
};

}  // namespace rmon
