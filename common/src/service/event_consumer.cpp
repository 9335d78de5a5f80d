#include "rmon/service/event_consumer.hpp"

#include <spdlog/spdlog.h>

#include "rmon/protocol/codec.hpp"
#include "rmon/zmq_util.hpp"

namespace rmon {

// No ZMQ_MAXMSGSIZE on the events socket: it connects, and libzmq (4.3)
// never reconnects a connecting session it dropped for an oversized frame,
// which would cut the group off from every later event. The decoder rejects a
// frame over protocol::kMaxFrame itself (fault suite:
// HostileEventSocket.OversizedEventFrameDoesNotCutTheConsumerOffForGood).
EventConsumer::EventConsumer(zmq::context_t& ctx, std::string group,
                             const std::string& events_endpoint, const std::string& ack_endpoint,
                             std::optional<security::ClientKeys> keys)
    : group_(std::move(group)),
      events_(ctx, zmq::socket_type::pull, SocketOptions{}, events_endpoint, keys),
      acks_(ctx, zmq::socket_type::push, SocketOptions{}, ack_endpoint, keys) {}

void EventConsumer::maintain() {
  (void)events_.maintain();
  (void)acks_.maintain();
}

std::size_t EventConsumer::receive(std::vector<ConsumedEvent>& out, std::size_t max) {
  std::size_t n = 0;
  std::vector<zmq::message_t> frames;
  while (n < max && recv_frames(events_.socket(), frames, zmq::recv_flags::dontwait)) {
    received_.fetch_add(1, std::memory_order_relaxed);
    auto ev = frames.size() == 1 ? protocol::decode_timeout_event(frames[0].to_string_view())
                                 : protocol::Result<protocol::TimeoutEvent>(
                                       protocol::Rejection{protocol::Reason::kMalformed, "frames"});
    if (!ev) {
      rejected_.fetch_add(1, std::memory_order_relaxed);
      uint64_t suppressed = 0;
      if (warn_limit_.allow("event", std::chrono::steady_clock::now(), suppressed)) {
        spdlog::warn("timeout event rejected group={} reason={} suppressed={}", group_,
                     ev.error().to_string(), suppressed);
      }
      continue;
    }
    out.push_back(ConsumedEvent{std::move(ev.value()), false});
    ++n;
  }
  return n;
}

void EventConsumer::send_acks(const std::vector<ConsumedEvent>& events) {
  for (const ConsumedEvent& e : events) {
    if (!e.ack) continue;
    const std::string frame = protocol::encode_ack({group_, e.event.event_id});
    if (send_frames(acks_.socket(), {frame})) {
      acks_sent_.fetch_add(1, std::memory_order_relaxed);
    } else {
      spdlog::debug("ack not queued (monitor away) group={} event_id={}", group_, e.event.event_id);
    }
  }
}

}  // namespace rmon
