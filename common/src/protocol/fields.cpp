// Field logic shared by the decoders (see fields.hpp).

#include "fields.hpp"

#include "wire.hpp"

namespace rmon::protocol::fields {

using wire::for_each_field;
using wire::read_int;
using wire::read_opt_str;
using wire::read_progress;
using wire::read_str;
using wire::read_uint;

Status runner_field(Key key, const object& val, RunnerInfo& r, Required& req, bool& handled) {
  handled = true;
  switch (key) {
    case Key::kRunnerId:
      req.see(kRunnerId);
      return read_str(val, "runner_id", 1, kMaxIdBytes, r.runner_id);
    case Key::kTaskId:
      req.see(kTaskId);
      return read_str(val, "task_id", 1, kMaxIdBytes, r.task_id);
    case Key::kAttempt:
      req.see(kAttempt);
      if (Status s = read_uint(val, "attempt", r.attempt); !s) return s;
      return r.attempt >= 1 ? Status{} : Status{Rejection{Reason::kBadValue, "attempt"}};
    case Key::kPool:
      req.see(kPool);
      return read_str(val, "pool", 1, kMaxIdBytes, r.pool);
    case Key::kPoolType: {
      req.see(kPoolType);
      if (val.type != msgpack::type::STR) return Rejection{Reason::kWrongType, "pool_type"};
      auto t = parse_pool_type(std::string_view(val.via.str.ptr, val.via.str.size));
      if (!t) return Rejection{Reason::kBadValue, "pool_type"};
      r.pool_type = *t;
      return {};
    }
    case Key::kPid: {
      req.see(kPid);
      uint64_t pid = 0;
      if (Status s = read_uint(val, "pid", pid); !s) return s;
      r.pid = pid;
      return {};
    }
    case Key::kContainerId:
      req.see(kContainerId);
      return read_opt_str(val, "container_id", kMaxShortString, r.container_id);
    case Key::kJobName:
      req.see(kJobName);
      return read_opt_str(val, "job_name", kMaxShortString, r.job_name);
    case Key::kProgress:
      req.see(kProgress);
      return read_progress(val, r.progress);
    default:
      handled = false;
      return {};
  }
}

void reset_absent(const Required& req, RunnerInfo& r) {
  if (!req.has(kAttempt)) r.attempt = 1;
  if (!req.has(kPid)) r.pid.reset();
  if (!req.has(kContainerId)) r.container_id.reset();
  if (!req.has(kJobName)) r.job_name.reset();
  if (!req.has(kProgress)) r.progress.reset();
}

Status read_state(const object& val, RunnerState& out, bool allow_suspect) {
  if (val.type != msgpack::type::STR) return Rejection{Reason::kWrongType, "state"};
  auto s = parse_runner_state(std::string_view(val.via.str.ptr, val.via.str.size));
  if (!s || (*s == RunnerState::kSuspect && !allow_suspect)) {
    return Rejection{Reason::kBadValue, "state"};
  }
  out = *s;
  return {};
}

Status expect_type(const object& val, std::string_view want) {
  if (val.type != msgpack::type::STR) return Rejection{Reason::kWrongType, "type"};
  if (std::string_view(val.via.str.ptr, val.via.str.size) != want) {
    return Rejection{Reason::kBadValue, "type"};
  }
  return {};
}

constexpr std::array<std::string_view, 15> kHeartbeatNames = {
    RMON_RUNNER_NAMES, "v", "state", "seq", "timeout_ms", "interval_ms", "sent_at_ms"};

Status heartbeat_field(std::string_view name, const object& val, Heartbeat& hb, Required& req) {
  const Key key = key_of(name);
  bool handled = false;
  Status st = runner_field(key, val, hb.runner, req, handled);
  if (handled) return st;
  switch (key) {
    case Key::kV:
      req.see(kHbVersion);
      return wire::read_version(val);
    case Key::kState:
      req.see(kHbState);
      return read_state(val, hb.state, false);
    case Key::kSeq:
      req.see(kHbSeq);
      return read_uint(val, "seq", hb.seq);
    case Key::kTimeoutMs: {
      req.see(kHbTimeout);
      uint64_t t = 0;
      if (Status x = read_uint(val, "timeout_ms", t); !x) return x;
      hb.timeout_ms = t;
      return {};
    }
    case Key::kIntervalMs: {
      req.see(kHbInterval);
      uint64_t t = 0;
      if (Status x = read_uint(val, "interval_ms", t); !x) return x;
      hb.interval_ms = t;
      return {};
    }
    case Key::kSentAtMs: {
      req.see(kHbSentAt);
      int64_t t = 0;
      if (Status x = read_int(val, "sent_at_ms", t); !x) return x;
      hb.sent_at_ms = t;
      return {};
    }
    default:
      return {};  // unknown keys are ignored
  }
}

// After every field: required keys, and optionals of a reused struct cleared.
// `envelope`: the message carries `v` and `seq` (a heartbeat) or not (the
// runner of a control `add`).
Status finish_heartbeat(const Required& req, bool envelope, Heartbeat& hb) {
  const uint32_t required = kRunnerRequired | kHbState | (envelope ? kHbVersion | kHbSeq : 0);
  if (Status m = req.check(required, kHeartbeatNames); !m) return m;
  reset_absent(req, hb.runner);
  if (!req.has(kHbSeq)) hb.seq = 0;
  if (!req.has(kHbTimeout)) hb.timeout_ms.reset();
  if (!req.has(kHbInterval)) hb.interval_ms.reset();
  if (!req.has(kHbSentAt)) hb.sent_at_ms.reset();
  return {};
}

Status heartbeat_map(const object& map, bool envelope, Heartbeat& hb) {
  Required req;
  Status s = for_each_field(map, [&](std::string_view key, const object& val) {
    return heartbeat_field(key, val, hb, req);
  });
  if (!s) return s;
  return finish_heartbeat(req, envelope, hb);
}

// --- topic ---
Status check_topic_prefix(std::string_view topic, std::string_view payload) {
  if (payload.size() > kMaxHeartbeatFrame) return Rejection{Reason::kTooLarge, "frame"};
  if (topic.size() > kMaxTopicBytes) return Rejection{Reason::kTooLarge, "topic"};
  const std::string_view prefix(kTopicPrefix);
  if (topic.substr(0, prefix.size()) != prefix) return Rejection{Reason::kTopicMismatch, "topic"};
  return {};
}

Status check_topic_runner(std::string_view topic, const Heartbeat& hb) {
  if (topic.substr(std::string_view(kTopicPrefix).size()) != hb.runner.runner_id) {
    return Rejection{Reason::kTopicMismatch, "runner_id"};
  }
  return {};
}

// --- runner view (inside control replies) ---
enum ViewBit : uint32_t {
  kViewState = 1u << (kFirstFreeBit + 0),
  kViewLastSeq = 1u << (kFirstFreeBit + 1),
  kViewLastHb = 1u << (kFirstFreeBit + 2),
  kViewSilence = 1u << (kFirstFreeBit + 3),
  kViewTimeout = 1u << (kFirstFreeBit + 4),
  kViewAdded = 1u << (kFirstFreeBit + 5),
  kViewInterval = 1u << (kFirstFreeBit + 6),
};
constexpr std::array<std::string_view, 16> kViewNames = {
    RMON_RUNNER_NAMES, "state",      "last_seq",    "last_heartbeat_ms",
    "silence_ms",      "timeout_ms", "added_at_ms", "interval_ms"};

Status runner_view_map(const object& map, RunnerView& v) {
  Required req;
  Status s = for_each_field(map, [&](std::string_view key, const object& val) -> Status {
    bool handled = false;
    Status st = runner_field(key_of(key), val, v.runner, req, handled);
    if (handled) return st;
    if (key == "state") {
      req.see(kViewState);
      return read_state(val, v.state, true);
    }
    if (key == "last_seq") {
      req.see(kViewLastSeq);
      return read_uint(val, "last_seq", v.last_seq);
    }
    if (key == "last_heartbeat_ms") {
      req.see(kViewLastHb);
      return read_int(val, "last_heartbeat_ms", v.last_heartbeat_ms);
    }
    if (key == "silence_ms") {
      req.see(kViewSilence);
      return read_uint(val, "silence_ms", v.silence_ms);
    }
    if (key == "timeout_ms") {
      req.see(kViewTimeout);
      return read_uint(val, "timeout_ms", v.timeout_ms);
    }
    if (key == "added_at_ms") {
      req.see(kViewAdded);
      return read_int(val, "added_at_ms", v.added_at_ms);
    }
    if (key == "interval_ms") {
      req.see(kViewInterval);
      uint64_t t = 0;
      if (Status x = read_uint(val, "interval_ms", t); !x) return x;
      v.interval_ms = t;
      return {};
    }
    return {};
  });
  if (!s) return s;
  const uint32_t required = kRunnerRequired | kViewState | kViewLastSeq | kViewLastHb |
                            kViewSilence | kViewTimeout | kViewAdded;
  if (Status m = req.check(required, kViewNames); !m) return m;
  reset_absent(req, v.runner);
  if (!req.has(kViewInterval)) v.interval_ms.reset();
  return {};
}

}  // namespace rmon::protocol::fields
