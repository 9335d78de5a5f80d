#pragma once
// Helpers for the codec tests: MessagePack values and maps built by hand, and
// sample messages.

#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <map>
#include <string>

#include "rmon/protocol/codec.hpp"

namespace rmon::protocol::codec_testing {

template <class T>
inline std::string pack(const T& v) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, v);
  return std::string(buf.data(), buf.size());
}

// Builds arbitrary maps for rejection tests: values are pre-encoded bytes.
class MapBuilder {
 public:
  template <class T>
  MapBuilder& set(const std::string& key, const T& value) {
    fields_[key] = pack(value);
    return *this;
  }
  MapBuilder& raw(const std::string& key, std::string bytes) {
    fields_[key] = std::move(bytes);
    return *this;
  }
  MapBuilder& erase(const std::string& key) {
    fields_.erase(key);
    return *this;
  }
  std::string build() const {
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> p(buf);
    p.pack_map(static_cast<uint32_t>(fields_.size()));
    for (const auto& [k, v] : fields_) {
      p.pack(k);
      buf.write(v.data(), v.size());
    }
    return std::string(buf.data(), buf.size());
  }

 private:
  std::map<std::string, std::string> fields_;
};

inline MapBuilder valid_heartbeat_map() {
  MapBuilder b;
  b.set("v", 1u)
      .set("runner_id", std::string("r-1"))
      .set("task_id", std::string("t-1"))
      .set("pool", std::string("default"))
      .set("pool_type", std::string("local-process"))
      .set("state", std::string("running"))
      .set("seq", 7u);
  return b;
}

inline Heartbeat full_heartbeat() {
  Heartbeat hb;
  hb.runner.runner_id = "runner-7f3a";
  hb.runner.task_id = "task-42";
  hb.runner.attempt = 3;
  hb.runner.pool = "gpu";
  hb.runner.pool_type = PoolType::kDocker;
  hb.runner.container_id = "c0ffee";
  hb.runner.progress = pack(std::map<std::string, int>{{"done", 3}, {"total", 10}});
  hb.state = RunnerState::kRunning;
  hb.seq = 99;
  hb.timeout_ms = 5000;
  hb.interval_ms = 1000;
  hb.sent_at_ms = -5;
  return hb;
}

inline std::string reason_of(const Status& s) { return std::string(reason_name(s.error().reason)); }
template <class T>
inline std::string reason_of(const Result<T>& r) {
  return std::string(reason_name(r.error().reason));
}

}  // namespace rmon::protocol::codec_testing
