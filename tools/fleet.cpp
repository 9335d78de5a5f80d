#include "fleet.hpp"

#include <unistd.h>

#include <cstdio>

#include "rmon/clock.hpp"
#include "rmon/protocol/codec.hpp"
#include "rmon/zmq_util.hpp"

namespace rmon::tools {

namespace {
uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
}  // namespace

std::string uuid_like(uint64_t key) {
  const uint64_t hi = splitmix64(key);
  const uint64_t lo = splitmix64(hi ^ key);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08llx-%04llx-4%03llx-%04llx-%012llx",
                static_cast<unsigned long long>(hi >> 32),
                static_cast<unsigned long long>((hi >> 16) & 0xffff),
                static_cast<unsigned long long>(hi & 0xfff),
                static_cast<unsigned long long>(0x8000 | (lo >> 48 & 0x3fff)),
                static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return buf;
}

Fleet::Fleet(FleetOptions opts) {
  hbs_.resize(opts.runners);
  topics_.resize(opts.runners);
  for (std::size_t i = 0; i < opts.runners; ++i) {
    char id[64];
    std::snprintf(id, sizeof id, "%s%07zu", opts.prefix.c_str(), i);
    protocol::Heartbeat& h = hbs_[i];
    if (opts.uuid_ids) {
      h.runner.runner_id = uuid_like(2 * i);
      h.runner.task_id = uuid_like(2 * i + 1);
    } else {
      h.runner.runner_id = id;
      h.runner.task_id = std::string("task-") + id;
    }
    h.runner.pool = opts.pool;
    h.runner.pool_type = opts.pool_type;
    switch (opts.pool_type) {
      case protocol::PoolType::kLocalProcess:
        h.runner.pid = static_cast<uint64_t>(::getpid());
        break;
      case protocol::PoolType::kDocker:
        h.runner.container_id = std::string("c-") + id;
        break;
      case protocol::PoolType::kKubernetes:
        h.runner.job_name = std::string("job-") + id;
        break;
    }
    if (opts.with_progress) h.runner.progress = std::string("\x81\xa4step\x00", 7);
    h.timeout_ms = opts.timeout_ms;
    h.interval_ms = opts.interval_ms;
    topics_[i] = protocol::heartbeat_topic(h.runner.runner_id);
  }
}

void Fleet::next(std::size_t i, std::string& out) {
  protocol::Heartbeat& h = hbs_[i];
  ++h.seq;
  h.sent_at_ms = SystemClock::instance().wall_ms();
  if (h.runner.progress) (*h.runner.progress)[6] = static_cast<char>(h.seq & 0x7f);
  protocol::encode_heartbeat(h, out);
}

bool Fleet::send(zmq::socket_t& pub, std::size_t i, zmq::send_flags flags) {
  next(i, scratch_);
  return send_frames(pub, {topics_[i], scratch_}, flags);
}

}  // namespace rmon::tools
