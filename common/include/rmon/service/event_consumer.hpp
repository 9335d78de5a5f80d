#pragma once
// The consumer side of the monitor's timeout events, shared by task-queue and
// pool-manager: a PULL socket connected to the monitor's group endpoint and a
// PUSH socket connected to its ack endpoint. Events are decoded strictly;
// malformed frames are counted, logged (rate limited) and dropped. The caller
// acknowledges an event only after its effect is committed: an event that is
// never acknowledged is redelivered by the monitor.
//
// Not thread-safe: owned by the service's loop thread.

#include <zmq.hpp>

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rmon/logging.hpp"
#include "rmon/protocol/messages.hpp"
#include "rmon/security/client.hpp"

namespace rmon {

struct ConsumedEvent {
  protocol::TimeoutEvent event;
  bool ack = false;  // set by the handler once the effect is committed
};

class EventConsumer {
 public:
  // Connects both sockets, as CURVE clients with `keys` (--security curve);
  // throws zmq::error_t on a malformed endpoint.
  EventConsumer(zmq::context_t& ctx, std::string group, const std::string& events_endpoint,
                const std::string& ack_endpoint,
                std::optional<security::ClientKeys> keys = std::nullopt);

  zmq::socket_t& events_socket() { return events_.socket(); }
  const std::string& group() const { return group_; }

  // A refused handshake on either socket: logged, the socket replaced with
  // backoff. Call once per loop pass.
  void maintain();
  // Appends the events ready now (never blocks), at most `max`.
  std::size_t receive(std::vector<ConsumedEvent>& out, std::size_t max);
  // Sends the acks of every event marked `ack`. Never blocks: an ack that
  // cannot be queued is dropped and the monitor redelivers the event.
  void send_acks(const std::vector<ConsumedEvent>& events);

  uint64_t received() const { return received_.load(std::memory_order_relaxed); }
  uint64_t rejected() const { return rejected_.load(std::memory_order_relaxed); }
  uint64_t acks_sent() const { return acks_sent_.load(std::memory_order_relaxed); }

 private:
  const std::string group_;
  security::ClientSocket events_;
  security::ClientSocket acks_;
  std::atomic<uint64_t> received_{0}, rejected_{0}, acks_sent_{0};
  LogRateLimiter warn_limit_{5, std::chrono::seconds(10)};
};

}  // namespace rmon
