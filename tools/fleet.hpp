#pragma once
// A simulated fleet of runners: pre-encoded heartbeats for N runners, sent on
// a PUB socket. Shared by the runner-sim tool and the benchmarks.
// Not thread-safe: one fleet per publishing thread.

#include <cstdint>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "rmon/protocol/messages.hpp"

namespace rmon::tools {

struct FleetOptions {
  std::size_t runners = 100;
  std::string prefix = "runner-";
  std::string pool = "default";
  protocol::PoolType pool_type = protocol::PoolType::kLocalProcess;
  uint64_t timeout_ms = 5000;
  uint64_t interval_ms = 1000;
  bool with_progress = false;
  // Runner and task ids shaped like UUIDs (36 bytes, fixed per runner index)
  // instead of `prefix` + number: the footprint of real ids.
  bool uuid_ids = false;
};

// A UUID-shaped id (version 4 layout, 36 bytes), the same for the same `key`.
std::string uuid_like(uint64_t key);

class Fleet {
 public:
  explicit Fleet(FleetOptions opts);

  std::size_t size() const { return hbs_.size(); }
  const std::string& runner_id(std::size_t i) const { return hbs_[i].runner.runner_id; }
  const std::string& topic(std::size_t i) const { return topics_[i]; }

  // Encodes runner i's next heartbeat (seq + 1) into `out`.
  void next(std::size_t i, std::string& out);
  // Sends runner i's next heartbeat; false if the socket would block.
  bool send(zmq::socket_t& pub, std::size_t i, zmq::send_flags flags = zmq::send_flags::none);
  // Runner i runs this task attempt from its next heartbeat on (seq restarts).
  void assign(std::size_t i, std::string task_id, uint64_t attempt) {
    hbs_[i].runner.task_id = std::move(task_id);
    hbs_[i].runner.attempt = attempt;
    hbs_[i].seq = 0;
  }
  // Marks runner i completed in its next heartbeat.
  void complete(std::size_t i) { hbs_[i].state = protocol::RunnerState::kCompleted; }

 private:
  std::vector<protocol::Heartbeat> hbs_;
  std::vector<std::string> topics_;
  std::string scratch_;
};

}  // namespace rmon::tools
