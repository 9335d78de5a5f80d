// Decoders: strict on required keys and types, lenient on unknown keys.

#include "rmon/protocol/codec.hpp"
#include "wire.hpp"

namespace rmon::protocol {
namespace {

using msgpack::object;
using wire::for_each_field;
using wire::read_int;
using wire::read_opt_str;
using wire::read_progress;
using wire::read_str;
using wire::read_uint;

// Required-key bookkeeping: one bit per key a decoder insists on.
class Required {
 public:
  void see(uint32_t bit) { seen_ |= bit; }
  bool has(uint32_t bit) const { return (seen_ & bit) != 0; }
  // The first required key (in `names` order) that was not seen.
  template <std::size_t N>
  Status check(uint32_t required, const std::array<std::string_view, N>& names) const {
    for (std::size_t i = 0; i < N; ++i) {
      const uint32_t bit = 1u << i;
      if ((required & bit) && !(seen_ & bit)) return Rejection{Reason::kMissingField, names[i]};
    }
    return {};
  }

 private:
  uint32_t seen_ = 0;
};

// Bits for RunnerInfo's keys, shared by every message that carries a runner.
enum RunnerBit : uint32_t {
  kRunnerId = 1u << 0,
  kTaskId = 1u << 1,
  kAttempt = 1u << 2,
  kPool = 1u << 3,
  kPoolType = 1u << 4,
  kPid = 1u << 5,
  kContainerId = 1u << 6,
  kJobName = 1u << 7,
  kProgress = 1u << 8,
  kFirstFreeBit = 9,
};
constexpr uint32_t kRunnerRequired = kRunnerId | kTaskId | kPool | kPoolType;

// Names in bit order; messages append their own after kFirstFreeBit.
#define RMON_RUNNER_NAMES                                                                    \
  "runner_id", "task_id", "attempt", "pool", "pool_type", "pid", "container_id", "job_name", \
      "progress"

// The keys of RunnerInfo and of a heartbeat, resolved once per key with a
// switch on its length: the hot path compares each key at most twice.
enum class Key : uint8_t {
  kOther,
  kV,
  kRunnerId,
  kTaskId,
  kAttempt,
  kPool,
  kPoolType,
  kPid,
  kContainerId,
  kJobName,
  kProgress,
  kState,
  kSeq,
  kTimeoutMs,
  kIntervalMs,
  kSentAtMs,
};

Key key_of(std::string_view k) {
  switch (k.size()) {
    case 1:
      return k == "v" ? Key::kV : Key::kOther;
    case 3:
      return k == "pid" ? Key::kPid : k == "seq" ? Key::kSeq : Key::kOther;
    case 4:
      return k == "pool" ? Key::kPool : Key::kOther;
    case 5:
      return k == "state" ? Key::kState : Key::kOther;
    case 7:
      return k == "task_id" ? Key::kTaskId : k == "attempt" ? Key::kAttempt : Key::kOther;
    case 8:
      return k == "job_name" ? Key::kJobName : k == "progress" ? Key::kProgress : Key::kOther;
    case 9:
      return k == "runner_id" ? Key::kRunnerId : k == "pool_type" ? Key::kPoolType : Key::kOther;
    case 10:
      return k == "timeout_ms" ? Key::kTimeoutMs : k == "sent_at_ms" ? Key::kSentAtMs : Key::kOther;
    case 11:
      return k == "interval_ms" ? Key::kIntervalMs : Key::kOther;
    case 12:
      return k == "container_id" ? Key::kContainerId : Key::kOther;
    default:
      return Key::kOther;
  }
}

// Handles `key` if it belongs to RunnerInfo. Sets `handled`.
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

// Optional RunnerInfo fields that were absent are cleared (the struct may be
// reused from an earlier message). `attempt` defaults to 1.
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

// --- heartbeat ---
enum HeartbeatBit : uint32_t {
  kHbVersion = 1u << (kFirstFreeBit + 0),
  kHbState = 1u << (kFirstFreeBit + 1),
  kHbSeq = 1u << (kFirstFreeBit + 2),
  kHbTimeout = 1u << (kFirstFreeBit + 3),
  kHbInterval = 1u << (kFirstFreeBit + 4),
  kHbSentAt = 1u << (kFirstFreeBit + 5),
};
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

}  // namespace

// The heartbeat hot path: msgpack-cxx's event parser (msgpack::parse with a
// visitor) applies top-level fields as they are read, with no object tree and
// no zone. It reproduces the generic decoder's verdicts exactly (the tests
// and the fuzz target compare the two): structural problems (malformed bytes,
// counts and nesting over the limits, trailing bytes) win over field
// problems, and the first field problem in map order wins over later ones.
namespace {

class HeartbeatVisitor : public msgpack::null_visitor {
 public:
  HeartbeatVisitor(Heartbeat& hb, std::size_t frame_size) : hb_(hb), limits_(frame_size) {}

  Status structural_error() const { return structural_; }
  Status field_error() const { return field_; }
  const Required& required() const { return req_; }

  bool visit_nil() { return scalar(make(msgpack::type::NIL)); }
  bool visit_boolean(bool b) {
    object o = make(msgpack::type::BOOLEAN);
    o.via.boolean = b;
    return scalar(o);
  }
  bool visit_positive_integer(uint64_t u) {
    object o = make(msgpack::type::POSITIVE_INTEGER);
    o.via.u64 = u;
    return scalar(o);
  }
  bool visit_negative_integer(int64_t i) {
    // msgpack reports every signed encoding here; a non-negative value is a
    // positive integer, as msgpack's own object builder makes it.
    if (i >= 0) return visit_positive_integer(static_cast<uint64_t>(i));
    object o = make(msgpack::type::NEGATIVE_INTEGER);
    o.via.i64 = i;
    return scalar(o);
  }
  bool visit_float32(float f) {
    object o = make(msgpack::type::FLOAT32);
    o.via.f64 = f;
    return scalar(o);
  }
  bool visit_float64(double f) {
    object o = make(msgpack::type::FLOAT64);
    o.via.f64 = f;
    return scalar(o);
  }
  bool visit_str(const char* p, uint32_t n) {
    if (limits_.depth() == 1 && in_key_) {
      key_ = std::string_view(p, n);
      progress_key_ = key_ == "progress";
      return true;
    }
    object o = make(msgpack::type::STR);
    o.via.str.ptr = p;
    o.via.str.size = n;
    return scalar(o);
  }
  bool visit_bin(const char* p, uint32_t n) {
    object o = make(msgpack::type::BIN);
    o.via.bin.ptr = p;
    o.via.bin.size = n;
    return scalar(o);
  }
  bool visit_ext(const char* p, uint32_t n) {
    object o = make(msgpack::type::EXT);
    o.via.ext.ptr = p;  // the type byte, then the data, as msgpack's object has it
    o.via.ext.size = n - 1;
    return scalar(o);
  }
  bool start_array(uint32_t n) { return container(msgpack::type::ARRAY, n); }
  bool start_map(uint32_t n) { return container(msgpack::type::MAP, 2 * static_cast<uint64_t>(n)); }
  bool end_array() {
    limits_.close();
    return true;
  }
  bool end_map() {
    limits_.close();
    return true;
  }
  bool start_map_key() {
    if (limits_.depth() == 1) in_key_ = true;
    return true;
  }
  bool start_map_value() {
    if (limits_.depth() == 1) in_key_ = false;
    return true;
  }
  bool end_map_value() {
    if (limits_.depth() == 1 && pk_) finish_progress();
    return true;
  }
  void parse_error(std::size_t, std::size_t) { structural_ = Rejection{Reason::kMalformed, {}}; }
  void insufficient_bytes(std::size_t, std::size_t) {
    structural_ = Rejection{Reason::kMalformed, {}};
  }

 private:
  static object make(msgpack::type::object_type t) {
    object o;
    o.type = t;
    return o;
  }
  void field_problem(Rejection r) {
    if (field_) field_ = r;  // the first one in map order
  }
  // A complete value at the current position.
  bool scalar(const object& o) { return scalar_at(limits_.depth(), o); }
  bool scalar_at(std::size_t depth, const object& o) {
    if (packing_) {  // inside a progress container
      wire::pack_value(*pk_, o);
      return true;
    }
    if (progress_value(depth)) {
      begin_progress();
      wire::pack_value(*pk_, o);
      return true;
    }
    if (depth == 0) {
      field_problem({Reason::kMalformed, "not a map"});
    } else if (depth == 1 && in_key_) {
      field_problem({Reason::kMalformed, "non-string key"});
    } else if (depth == 1 && field_) {
      if (Status s = heartbeat_field(key_, o, hb_, req_); !s) field_problem(s.error());
    }
    return true;  // depth > 1: inside a value no field reads
  }
  bool container(msgpack::type::object_type t, uint64_t elements) {
    const std::size_t depth = limits_.depth();
    if (!limits_.open(elements)) {
      structural_ = limits_.error();
      return false;
    }
    const bool starts_progress = !packing_ && progress_value(depth);
    if (packing_ || starts_progress) {
      if (starts_progress) {
        begin_progress();
        packing_ = true;
      }
      const auto n = static_cast<uint32_t>(t == msgpack::type::MAP ? elements / 2 : elements);
      if (t == msgpack::type::MAP) {
        pk_->pack_map(n);
      } else {
        pk_->pack_array(n);
      }
      return true;
    }
    if (depth == 0 && t != msgpack::type::MAP) field_problem({Reason::kMalformed, "not a map"});
    if (depth == 1) {
      // A container where a field's value goes: the field's reader rejects
      // it by type, as the generic decoder does with the same object.
      object o = make(t);
      o.via.array.size = 0;
      o.via.array.ptr = nullptr;
      scalar_at(depth, o);
    }
    return true;
  }

  // `progress` is kept as raw MessagePack: re-encoded here from the events,
  // exactly as the generic decoder re-encodes its object (same packer calls).
  bool progress_value(std::size_t depth) const { return depth == 1 && !in_key_ && progress_key_; }
  void begin_progress() {
    req_.see(kProgress);
    if (!hb_.runner.progress) hb_.runner.progress.emplace();
    hb_.runner.progress->clear();
    pk_.emplace(*hb_.runner.progress);
  }
  void finish_progress() {
    pk_.reset();
    packing_ = false;
    if (hb_.runner.progress->size() > kMaxProgressBytes) {
      field_problem({Reason::kTooLarge, "progress"});
    }
  }

  Heartbeat& hb_;
  std::optional<wire::Packer> pk_;  // set while a progress value is read
  bool packing_ = false;            // inside a progress container
  bool progress_key_ = false;
  wire::Limits limits_;
  Required req_;
  bool in_key_ = false;
  std::string_view key_;
  Status structural_{Rejection{Reason::kMalformed, {}}};
  Status field_;
};

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

}  // namespace

namespace detail {

Status decode_heartbeat_generic(std::string_view topic, std::string_view payload, Heartbeat& out) {
  if (Status s = check_topic_prefix(topic, payload); !s) return s;
  object root;
  if (Status s = wire::unpack(payload, kMaxHeartbeatFrame, root); !s) return s;
  if (root.type != msgpack::type::MAP) return Rejection{Reason::kMalformed, "not a map"};
  if (Status s = heartbeat_map(root, true, out); !s) return s;
  return check_topic_runner(topic, out);
}

}  // namespace detail

Status decode_heartbeat_into(std::string_view topic, std::string_view payload, Heartbeat& out) {
  if (Status s = check_topic_prefix(topic, payload); !s) return s;
  if (payload.empty()) return Rejection{Reason::kMalformed, "empty frame"};
  HeartbeatVisitor v(out, payload.size());
  std::size_t offset = 0;
  bool parsed = false;
  try {
    parsed = msgpack::parse(payload.data(), payload.size(), offset, v);
  } catch (const std::exception&) {
    parsed = false;  // bad_alloc of the parser's own stack; treated as malformed
  }
  if (!parsed) return v.structural_error();
  if (offset != payload.size()) return Rejection{Reason::kMalformed, "trailing bytes"};
  if (Status s = v.field_error(); !s) return s;
  if (Status s = finish_heartbeat(v.required(), true, out); !s) return s;
  return check_topic_runner(topic, out);
}

Result<Heartbeat> decode_heartbeat(std::string_view topic, std::string_view payload) {
  Heartbeat hb;
  if (Status s = decode_heartbeat_into(topic, payload, hb); !s) return s.error();
  return hb;
}

Status validate_progress(std::string_view bytes) {
  if (bytes.size() > kMaxProgressBytes) return Rejection{Reason::kTooLarge, "progress"};
  object o;
  return wire::unpack(bytes, kMaxProgressBytes, o);
}

// --- timeout event ---
enum EventBit : uint32_t {
  kEvVersion = 1u << (kFirstFreeBit + 0),
  kEvType = 1u << (kFirstFreeBit + 1),
  kEvId = 1u << (kFirstFreeBit + 2),
  kEvLastSeq = 1u << (kFirstFreeBit + 3),
  kEvLastHb = 1u << (kFirstFreeBit + 4),
  kEvDetected = 1u << (kFirstFreeBit + 5),
  kEvTimeout = 1u << (kFirstFreeBit + 6),
  kEvDelivery = 1u << (kFirstFreeBit + 7),
};
constexpr std::array<std::string_view, 17> kEventNames = {
    RMON_RUNNER_NAMES, "v",          "type",    "event_id", "last_seq", "last_heartbeat_ms",
    "detected_at_ms",  "timeout_ms", "delivery"};

Result<TimeoutEvent> decode_timeout_event(std::string_view frame) {
  object root;
  if (Status s = wire::unpack(frame, kMaxFrame, root); !s) return s.error();
  TimeoutEvent ev;
  Required req;
  Status s = for_each_field(root, [&](std::string_view key, const object& val) -> Status {
    bool handled = false;
    Status st = runner_field(key_of(key), val, ev.runner, req, handled);
    if (handled) return st;
    if (key == "v") return req.see(kEvVersion), wire::read_version(val);
    if (key == "type") return req.see(kEvType), expect_type(val, kTimeoutType);
    if (key == "event_id") {
      req.see(kEvId);
      return read_str(val, "event_id", 1, kMaxIdBytes, ev.event_id);
    }
    if (key == "last_seq") return req.see(kEvLastSeq), read_uint(val, "last_seq", ev.last_seq);
    if (key == "last_heartbeat_ms") {
      req.see(kEvLastHb);
      return read_int(val, "last_heartbeat_ms", ev.last_heartbeat_ms);
    }
    if (key == "detected_at_ms") {
      req.see(kEvDetected);
      return read_int(val, "detected_at_ms", ev.detected_at_ms);
    }
    if (key == "timeout_ms") {
      return req.see(kEvTimeout), read_uint(val, "timeout_ms", ev.timeout_ms);
    }
    if (key == "delivery") {
      req.see(kEvDelivery);
      if (Status x = read_uint(val, "delivery", ev.delivery); !x) return x;
      return ev.delivery >= 1 ? Status{} : Status{Rejection{Reason::kBadValue, "delivery"}};
    }
    return {};
  });
  if (!s) return s.error();
  const uint32_t required = kRunnerRequired | kAttempt | kEvVersion | kEvType | kEvId | kEvLastSeq |
                            kEvLastHb | kEvDetected | kEvTimeout | kEvDelivery;
  if (Status m = req.check(required, kEventNames); !m) return m.error();
  return ev;
}

// --- ack ---
Result<Ack> decode_ack(std::string_view frame) {
  object root;
  if (Status s = wire::unpack(frame, kMaxFrame, root); !s) return s.error();
  static constexpr std::array<std::string_view, 4> kNames = {"v", "type", "group", "event_id"};
  Ack ack;
  Required req;
  Status s = for_each_field(root, [&](std::string_view key, const object& val) -> Status {
    if (key == "v") return req.see(1), wire::read_version(val);
    if (key == "type") return req.see(2), expect_type(val, kAckType);
    if (key == "group") return req.see(4), read_str(val, "group", 1, kMaxIdBytes, ack.group);
    if (key == "event_id") {
      return req.see(8), read_str(val, "event_id", 1, kMaxIdBytes, ack.event_id);
    }
    return {};
  });
  if (!s) return s.error();
  if (Status m = req.check(0xF, kNames); !m) return m.error();
  return ack;
}

// --- control request ---
Result<ControlRequest> decode_control_request(std::string_view frame) {
  object root;
  if (Status s = wire::unpack(frame, kMaxFrame, root); !s) return s.error();
  static constexpr std::array<std::string_view, 7> kNames = {"v",    "op",    "runner_id", "state",
                                                             "pool", "limit", "runner"};
  ControlRequest req;
  Required seen;
  std::string op_name;
  Status s = for_each_field(root, [&](std::string_view key, const object& val) -> Status {
    if (key == "v") return seen.see(1), wire::read_version(val);
    if (key == "op") return seen.see(2), read_str(val, "op", 1, kMaxIdBytes, op_name);
    if (key == "runner_id") {
      seen.see(4);
      return read_opt_str(val, "runner_id", kMaxIdBytes, req.runner_id);
    }
    if (key == "state") {
      seen.see(8);
      RunnerState st{};
      if (Status x = read_state(val, st, true); !x) return x;
      req.state = st;
      return {};
    }
    if (key == "pool") return seen.see(16), read_opt_str(val, "pool", kMaxIdBytes, req.pool);
    if (key == "limit") {
      seen.see(32);
      uint64_t n = 0;
      if (Status x = read_uint(val, "limit", n); !x) return x;
      req.limit = n;
      return {};
    }
    if (key == "runner") {
      seen.see(64);
      if (val.type != msgpack::type::MAP) return Rejection{Reason::kWrongType, "runner"};
      req.runner.emplace();
      return heartbeat_map(val, false, *req.runner);
    }
    return {};
  });
  if (!s) return s.error();
  if (Status m = seen.check(1 | 2, kNames); !m) return m.error();
  auto op = parse_op(op_name);
  if (!op) return Rejection{Reason::kUnknownOp, "op"};
  req.op = *op;
  uint32_t required = 0;
  switch (req.op) {
    case Op::kGet:
    case Op::kRemove:
      required = 4;
      break;
    case Op::kSetState:
      required = 4 | 8;
      break;
    case Op::kAdd:
      required = 64;
      break;
    default:
      break;
  }
  if (Status m = seen.check(required, kNames); !m) return m.error();
  return req;
}

// --- control reply ---
Result<ControlReply> decode_control_reply(std::string_view frame, std::size_t max_frame) {
  object root;
  if (Status s = wire::unpack(frame, max_frame, root); !s) return s.error();
  ControlReply r;
  bool has_ok = false;
  Status s = for_each_field(root, [&](std::string_view key, const object& val) -> Status {
    if (key == "ok") return has_ok = true, wire::read_bool(val, "ok", r.ok);
    if (key == "v") return wire::read_version(val);
    if (key == "error") return read_str(val, "error", 0, kMaxShortString, r.error);
    if (key == "detail") return read_str(val, "detail", 0, kMaxFrame, r.detail);
    if (key == "version") {
      uint64_t x = 0;
      if (Status st = read_uint(val, "version", x); !st) return st;
      r.version = x;
      return {};
    }
    if (key == "count") {
      uint64_t x = 0;
      if (Status st = read_uint(val, "count", x); !st) return st;
      r.count = x;
      return {};
    }
    if (key == "removed") {
      bool b = false;
      if (Status st = wire::read_bool(val, "removed", b); !st) return st;
      r.removed = b;
      return {};
    }
    if (key == "runner") {
      if (val.type != msgpack::type::MAP) return Rejection{Reason::kWrongType, "runner"};
      r.runner.emplace();
      return runner_view_map(val, *r.runner);
    }
    // `runners` is the list of a `list` reply, or the counter of a `stats` one.
    if (key == "runners" && val.type != msgpack::type::POSITIVE_INTEGER) {
      if (val.type != msgpack::type::ARRAY) return Rejection{Reason::kWrongType, "runners"};
      // Grown one checked entry at a time: a declared count alone never
      // reserves memory.
      r.runners.emplace();
      for (uint32_t i = 0; i < val.via.array.size; ++i) {
        if (val.via.array.ptr[i].type != msgpack::type::MAP) {
          return Rejection{Reason::kWrongType, "runners"};
        }
        RunnerView view;
        if (Status st = runner_view_map(val.via.array.ptr[i], view); !st) return st;
        r.runners->push_back(std::move(view));
      }
      return {};
    }
    // Any other unsigned value is a counter of a `stats` reply.
    if (val.type == msgpack::type::POSITIVE_INTEGER && key.size() <= kMaxShortString) {
      r.stats.emplace_back(std::string(key), val.via.u64);
    }
    return {};
  });
  if (!s) return s.error();
  if (!has_ok) return Rejection{Reason::kMissingField, "ok"};
  return r;
}

}  // namespace rmon::protocol
