#include "rmon/service/monitor_probe.hpp"

#include <spdlog/spdlog.h>

#include "rmon/protocol/codec.hpp"
#include "rmon/zmq_util.hpp"

namespace rmon {

MonitorProbe::MonitorProbe(zmq::context_t& ctx, std::string control_endpoint, Millis timeout)
    : ctx_(ctx), endpoint_(std::move(control_endpoint)), timeout_(timeout) {
  reconnect();
}

void MonitorProbe::reconnect() {
  SocketOptions o;
  o.send_hwm = 16;
  o.recv_hwm = 16;
  socket_ = make_socket(ctx_, zmq::socket_type::dealer, o);
  socket_.connect(endpoint_);
}

void MonitorProbe::enqueue(ProbeKey key) {
  if (!known_.insert(key).second) return;
  queue_.push_back(std::move(key));
}

std::optional<MonoTime> MonitorProbe::next_due() const {
  if (!in_flight_) return std::nullopt;
  return sent_at_ + timeout_;
}

void MonitorProbe::poll(MonoTime now, std::vector<ProbeResult>& out) {
  for (;;) {
    if (in_flight_) {
      zmq::message_t reply;
      if (socket_.recv(reply, zmq::recv_flags::dontwait)) {
        ProbeVerdict verdict = ProbeVerdict::kUnreachable;
        auto r = protocol::decode_control_reply(reply.to_string_view());
        if (r && r->ok && r->runner) {
          const auto& info = r->runner->runner;
          verdict = info.task_id == in_flight_->task_id && info.attempt == in_flight_->attempt
                        ? ProbeVerdict::kSeen
                        : ProbeVerdict::kNotSeen;
        } else if (r && !r->ok && r->error == "not_found") {
          verdict = ProbeVerdict::kNotSeen;
        } else {
          spdlog::warn("monitor gave an unusable answer to get runner_id={} reason={}",
                       in_flight_->runner_id,
                       r ? r->error + ": " + r->detail : r.error().to_string());
        }
        known_.erase(*in_flight_);
        out.push_back({std::move(*in_flight_), verdict});
        in_flight_.reset();
        continue;
      }
      if (now - sent_at_ < timeout_) return;
      // No answer: everything waiting is unreachable for now; a fresh socket
      // drops whatever late reply is still on its way.
      out.push_back({std::move(*in_flight_), ProbeVerdict::kUnreachable});
      in_flight_.reset();
      for (ProbeKey& k : queue_) out.push_back({std::move(k), ProbeVerdict::kUnreachable});
      queue_.clear();
      known_.clear();
      reconnect();
      return;
    }
    if (queue_.empty()) return;
    protocol::ControlRequest req;
    req.op = protocol::Op::kGet;
    req.runner_id = queue_.front().runner_id;
    const std::string frame = protocol::encode_control_request(req);
    if (!send_frames(socket_, {frame})) return;  // not connected yet: next poll
    in_flight_ = std::move(queue_.front());
    queue_.pop_front();
    sent_at_ = now;
  }
}

}  // namespace rmon
