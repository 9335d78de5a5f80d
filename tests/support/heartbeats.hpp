#pragma once
// A test's own heartbeats to a monitor in the same process. PUB/SUB joins
// asynchronously, so the first heartbeats may be lost: publish until the
// monitor shows them. seq grows with every send, so repeats are harmless.

#include <gtest/gtest.h>

#include <string>

#include "rmon/clock.hpp"
#include "rmon/protocol/codec.hpp"
#include "rmon/zmq_util.hpp"
#include "service.hpp"
#include "wait.hpp"

namespace rmon::testing {

// Publishes `hb` on `pub` (seq one higher each time; `hb.seq` ends as the
// last one sent) until `seen()` holds. False when it does not within 10 s.
template <class Seen>
bool heartbeat_until(zmq::socket_t& pub, protocol::Heartbeat& hb, Seen&& seen) {
  const std::string topic = protocol::heartbeat_topic(hb.runner.runner_id);
  return wait_until([&] {
    ++hb.seq;
    EXPECT_TRUE(send_frames(pub, {topic, protocol::encode_heartbeat(hb)}, zmq::send_flags::none));
    return seen();
  });
}

// Until `monitor` knows the runner, in any state.
inline bool heartbeat_until_known(zmq::socket_t& pub, monitor::MonitorService& monitor,
                                  protocol::Heartbeat hb) {
  return heartbeat_until(pub, hb, [&] {
    return monitor.table().get(hb.runner.runner_id, SystemClock::instance().now()).has_value();
  });
}

// A running runner's heartbeat in pool "local" (seq 0: the first one sent
// above is 1).
inline protocol::Heartbeat local_heartbeat(const std::string& runner, const std::string& task,
                                           uint64_t attempt, uint64_t timeout_ms) {
  protocol::Heartbeat hb;
  hb.runner.runner_id = runner;
  hb.runner.task_id = task;
  hb.runner.attempt = attempt;
  hb.runner.pool = "local";
  hb.runner.pool_type = protocol::PoolType::kLocalProcess;
  hb.timeout_ms = timeout_ms;
  return hb;
}

}  // namespace rmon::testing
