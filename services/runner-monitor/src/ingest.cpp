#include "ingest.hpp"

#include "rmon/protocol/codec.hpp"
#include "rmon/zmq_util.hpp"

namespace rmon::monitor {

void IngestLoop::reject(const protocol::Rejection& r, std::string_view topic) {
  stats_.reject(r.reason);
  uint64_t suppressed = 0;
  if (warn_limit_.allow(protocol::reason_name(r.reason), clock_.now(), suppressed)) {
    const std::string_view shown = topic.substr(0, protocol::kMaxTopicBytes);
    spdlog::warn("heartbeat rejected reason={} topic={:?} suppressed={}", r.to_string(),
                 std::string(shown), suppressed);
  }
}

void IngestLoop::handle(const std::vector<zmq::message_t>& frames, MonoTime now, int64_t wall_ms) {
  stats_.heartbeat_frames.fetch_add(1, std::memory_order_relaxed);
  if (frames.size() != 2) {
    reject({protocol::Reason::kMalformed, "frame count"},
           frames.empty() ? std::string_view() : frames[0].to_string_view());
    return;
  }
  const std::string_view topic = frames[0].to_string_view();
  if (protocol::Status s =
          protocol::decode_heartbeat_into(topic, frames[1].to_string_view(), scratch_);
      !s) {
    reject(s.error(), topic);
    return;
  }
  if (gate_ != nullptr &&
      !gate_->allow(frames[1], security::ops::kHeartbeat, scratch_.runner.runner_id)) {
    return;
  }
  const Applied a = table_.apply(scratch_, now, wall_ms);
  if (spdlog::should_log(spdlog::level::debug)) {
    static constexpr const char* kNames[] = {"added",     "updated", "new_lifecycle",
                                             "duplicate", "late",    "stale_attempt"};
    spdlog::debug("heartbeat {} runner_id={} task_id={} attempt={} seq={} state={}",
                  kNames[static_cast<int>(a)], scratch_.runner.runner_id, scratch_.runner.task_id,
                  scratch_.runner.attempt, scratch_.seq, protocol::to_string(scratch_.state));
  }
}

void IngestLoop::run(zmq::socket_t& sub, const std::atomic<bool>& stop, int poll_ms) {
  std::vector<zmq::message_t> frames;
  zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
  // The stall guard reads when this loop last found its socket empty.
  const auto drained = [&] {
    stats_.ingest_drained_ns.store(clock_.now().time_since_epoch().count(),
                                   std::memory_order_relaxed);
  };
  drained();
  while (!stop.load(std::memory_order_relaxed)) {
    if (zmq::poll(&item, 1, std::chrono::milliseconds(poll_ms)) == 0) {
      drained();
      continue;
    }
    // Drain what is queued before polling again. The receipt time is read
    // once per few messages: draining one takes about a microsecond, so it is
    // never more than tens of microseconds old.
    constexpr int kClockEvery = 32;
    int n = 0;
    MonoTime now{};
    int64_t wall_ms = 0;
    while (recv_frames(sub, frames, zmq::recv_flags::dontwait)) {
      if (n++ % kClockEvery == 0) {
        now = clock_.now();
        wall_ms = clock_.wall_ms();
        if (stop.load(std::memory_order_relaxed)) return;
      }
      handle(frames, now, wall_ms);
    }
    drained();
  }
}

}  // namespace rmon::monitor
