// Decoders of events, acks and control messages: strict on required keys
// and types, lenient on unknown keys.

#include "fields.hpp"
#include "rmon/protocol/codec.hpp"
#include "wire.hpp"

namespace rmon::protocol {

using namespace fields;  // NOLINT(google-build-using-namespace): the codec's own internals
using wire::for_each_field;
using wire::read_int;
using wire::read_opt_str;
using wire::read_str;
using wire::read_uint;

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
namespace {

// `runner_ids` of a `lookup`: 1 to kMaxLookupIds identifiers. The count is
// checked before any id is read, and the ids are appended one checked id at a
// time: a declared count alone never reserves memory.
Status read_runner_ids(const object& val, std::optional<std::vector<std::string>>& out) {
  if (val.type != msgpack::type::ARRAY) return Rejection{Reason::kWrongType, "runner_ids"};
  const uint32_t n = val.via.array.size;
  if (n == 0) return Rejection{Reason::kBadValue, "runner_ids"};
  if (n > kMaxLookupIds) return Rejection{Reason::kTooLarge, "runner_ids"};
  out.emplace();
  for (uint32_t i = 0; i < n; ++i) {
    std::string& id = out->emplace_back();
    if (Status st = read_str(val.via.array.ptr[i], "runner_ids", 1, kMaxIdBytes, id); !st) {
      return st;
    }
  }
  return {};
}

}  // namespace

Result<ControlRequest> decode_control_request(std::string_view frame) {
  object root;
  if (Status s = wire::unpack(frame, kMaxControlRequestFrame, root); !s) return s.error();
  static constexpr std::array<std::string_view, 9> kNames = {
      "v", "op", "runner_id", "state", "pool", "limit", "runner", "after", "runner_ids"};
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
    if (key == "after") return seen.see(128), read_opt_str(val, "after", kMaxIdBytes, req.after);
    if (key == "runner") {
      seen.see(64);
      if (val.type != msgpack::type::MAP) return Rejection{Reason::kWrongType, "runner"};
      req.runner.emplace();
      return heartbeat_map(val, false, *req.runner);
    }
    if (key == "runner_ids") return seen.see(256), read_runner_ids(val, req.runner_ids);
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
    case Op::kLookup:
      required = 256;
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
    if (key == "uptime_ms") {
      uint64_t x = 0;
      if (Status st = read_uint(val, "uptime_ms", x); !st) return st;
      r.uptime_ms = x;
      return {};
    }
    if (key == "more") {
      bool b = false;
      if (Status st = wire::read_bool(val, "more", b); !st) return st;
      r.more = b;
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

// --- lookup reply ---
namespace {

// One element of a `lookup` reply's `runners`: nil, or the short map.
Status lookup_entry(const object& val, std::optional<LookupEntry>& out) {
  if (val.type == msgpack::type::NIL) {
    out.reset();
    return {};
  }
  if (val.type != msgpack::type::MAP) return Rejection{Reason::kWrongType, "runners"};
  static constexpr std::array<std::string_view, 5> kNames = {"task_id", "attempt", "state",
                                                             "timed_out", "state_for_ms"};
  LookupEntry& e = out.emplace();
  Required req;
  Status s = for_each_field(val, [&](std::string_view key, const object& v) -> Status {
    if (key == "task_id") return req.see(1), read_str(v, "task_id", 1, kMaxIdBytes, e.task_id);
    if (key == "attempt") {
      req.see(2);
      if (Status st = read_uint(v, "attempt", e.attempt); !st) return st;
      return e.attempt >= 1 ? Status{} : Status{Rejection{Reason::kBadValue, "attempt"}};
    }
    if (key == "state") return req.see(4), read_state(v, e.state, true);
    if (key == "timed_out") return req.see(8), wire::read_bool(v, "timed_out", e.timed_out);
    if (key == "state_for_ms") {
      return req.see(16), read_uint(v, "state_for_ms", e.state_for_ms);
    }
    return {};
  });
  if (!s) return s;
  return req.check(0x1F, kNames);
}

}  // namespace

Result<LookupReply> decode_lookup_reply(std::string_view frame, std::size_t max_frame) {
  object root;
  if (Status s = wire::unpack(frame, max_frame, root); !s) return s.error();
  LookupReply r;
  bool has_ok = false;
  bool has_runners = false;
  Status s = for_each_field(root, [&](std::string_view key, const object& val) -> Status {
    if (key == "ok") return has_ok = true, wire::read_bool(val, "ok", r.ok);
    if (key == "v") return wire::read_version(val);
    if (key == "error") return read_str(val, "error", 0, kMaxShortString, r.error);
    if (key == "detail") return read_str(val, "detail", 0, kMaxFrame, r.detail);
    if (key == "uptime_ms") {
      uint64_t x = 0;
      if (Status st = read_uint(val, "uptime_ms", x); !st) return st;
      r.uptime_ms = x;
      return {};
    }
    if (key == "runners") {
      has_runners = true;
      if (val.type != msgpack::type::ARRAY) return Rejection{Reason::kWrongType, "runners"};
      if (val.via.array.size > kMaxLookupIds) return Rejection{Reason::kTooLarge, "runners"};
      // Grown one checked entry at a time, never reserved from the count.
      r.runners.clear();
      for (uint32_t i = 0; i < val.via.array.size; ++i) {
        if (Status st = lookup_entry(val.via.array.ptr[i], r.runners.emplace_back()); !st) {
          return st;
        }
      }
      return {};
    }
    return {};
  });
  if (!s) return s.error();
  if (!has_ok) return Rejection{Reason::kMissingField, "ok"};
  if (!r.ok) {
    r.runners.clear();  // a refusal carries `error` and `detail` only
    r.uptime_ms.reset();
  } else if (!has_runners) {
    return Rejection{Reason::kMissingField, "runners"};
  }
  return r;
}

}  // namespace rmon::protocol
