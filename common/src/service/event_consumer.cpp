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
                             const std::vector<MonitorLink>& monitors,
                             std::optional<security::ClientKeys> keys)
    : group_(std::move(group)) {
  links_.reserve(monitors.size());
  for (const MonitorLink& m : monitors) {
    links_.push_back(
        Link{std::make_unique<security::ClientSocket>(ctx, zmq::socket_type::pull, SocketOptions{},
                                                      m.events_endpoint, keys),
             std::make_unique<security::ClientSocket>(ctx, zmq::socket_type::push, SocketOptions{},
                                                      m.ack_endpoint, keys)});
  }
}

void EventConsumer::maintain() {
  for (Link& l : links_) {
    (void)l.events->maintain();
    (void)l.acks->maintain();
  }
}

std::size_t EventConsumer::receive(std::vector<ConsumedEvent>& out, std::size_t max) {
  std::size_t n = 0;
  std::vector<zmq::message_t> frames;
  // One frame from each monitor in turn while any has one: a monitor
  // redelivering a backlog does not hold back its partner's fresh events.
  std::size_t idle = 0;
  while (n < max && idle < links_.size()) {
    const std::size_t i = next_;
    next_ = (next_ + 1) % links_.size();
    switch (receive_one(i, out, frames)) {
      case Received::kNone:
        ++idle;
        break;
      case Received::kRejected:
        idle = 0;
        break;
      case Received::kEvent:
        idle = 0;
        ++n;
        break;
    }
  }
  return n;
}

EventConsumer::Received EventConsumer::receive_one(std::size_t i, std::vector<ConsumedEvent>& out,
                                                   std::vector<zmq::message_t>& frames) {
  if (!recv_frames(links_[i].events->socket(), frames, zmq::recv_flags::dontwait)) {
    return Received::kNone;
  }
  received_.fetch_add(1, std::memory_order_relaxed);
  auto ev = frames.size() == 1 ? protocol::decode_timeout_event(frames[0].to_string_view())
                               : protocol::Result<protocol::TimeoutEvent>(
                                     protocol::Rejection{protocol::Reason::kMalformed, "frames"});
  if (!ev) {
    rejected_.fetch_add(1, std::memory_order_relaxed);
    uint64_t suppressed = 0;
    if (warn_limit_.allow("event", std::chrono::steady_clock::now(), suppressed)) {
      spdlog::warn("timeout event rejected group={} monitor={} reason={} suppressed={}", group_,
                   i + 1, ev.error().to_string(), suppressed);
    }
    return Received::kRejected;
  }
  out.push_back(ConsumedEvent{std::move(ev.value()), false, i});
  return Received::kEvent;
}

void EventConsumer::send_acks(const std::vector<ConsumedEvent>& events) {
  for (const ConsumedEvent& e : events) {
    if (!e.ack || e.monitor >= links_.size()) continue;
    const std::string frame = protocol::encode_ack({group_, e.event.event_id});
    if (send_frames(links_[e.monitor].acks->socket(), {frame})) {
      acks_sent_.fetch_add(1, std::memory_order_relaxed);
    } else {
      spdlog::debug("ack not queued (monitor away) group={} monitor={} event_id={}", group_,
                    e.monitor + 1, e.event.event_id);
    }
  }
}

}  // namespace rmon
