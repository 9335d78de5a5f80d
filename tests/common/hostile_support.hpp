#pragma once
// Shared by the hostile-input tests: MessagePack building blocks, every
// decoder with its re-encoding property, and valid samples of each message.

#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rmon/protocol/codec.hpp"

#include "alloc_meter.hpp"

namespace rmon::protocol::hostile {

using Bytes = std::string;
using Outcome = std::optional<Rejection>;  // nullopt: accepted

using alloc_meter::bytes_allocated_by;

// --- MessagePack building blocks ----------------------------------------------

inline Bytes bytes(std::initializer_list<int> values) {
  Bytes out;
  for (int v : values) out.push_back(static_cast<char>(v));
  return out;
}

template <class T>
inline Bytes mp(const T& v) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, v);
  return Bytes(buf.data(), buf.size());
}
inline Bytes mp_str(std::string_view s) { return mp(std::string(s)); }
inline const Bytes kNil = bytes({0xc0});

// A map whose values are pre-encoded bytes, in insertion order.
class Fields {
 public:
  Fields& set(std::string_view key, Bytes value) {
    for (auto& [k, v] : kv_) {
      if (k == key) {
        v = std::move(value);
        return *this;
      }
    }
    kv_.emplace_back(std::string(key), std::move(value));
    return *this;
  }
  Fields& merge(const Fields& other) {
    for (const auto& [k, v] : other.kv_) set(k, v);
    return *this;
  }
  Bytes build() const {
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> p(buf);
    p.pack_map(static_cast<uint32_t>(kv_.size()));
    for (const auto& [k, v] : kv_) {
      p.pack(k);
      buf.write(v.data(), v.size());
    }
    return Bytes(buf.data(), buf.size());
  }

 private:
  std::vector<std::pair<std::string, Bytes>> kv_;
};

inline Fields runner_fields() {
  return Fields()
      .set("runner_id", mp_str("r-1"))
      .set("task_id", mp_str("t-1"))
      .set("attempt", mp(2u))
      .set("pool", mp_str("gpu"))
      .set("pool_type", mp_str("docker"))
      .set("pid", mp(42u))
      .set("container_id", mp_str("c0ffee"))
      .set("job_name", mp_str("job-1"))
      .set("progress", mp(std::map<std::string, int>{{"done", 3}, {"total", 10}}));
}
inline Fields heartbeat_fields() {
  return Fields()
      .set("v", mp(1u))
      .merge(runner_fields())
      .set("state", mp_str("running"))
      .set("seq", mp(7u))
      .set("timeout_ms", mp(30000u))
      .set("interval_ms", mp(1000u))
      .set("sent_at_ms", mp(-5));
}
inline Fields event_fields() {
  return Fields()
      .set("v", mp(1u))
      .set("type", mp_str("runner_timeout"))
      .set("event_id", mp_str("mon-1:42"))
      .merge(runner_fields())
      .set("last_seq", mp(9u))
      .set("last_heartbeat_ms", mp(1'700'000'000'000))
      .set("detected_at_ms", mp(1'700'000'060'000))
      .set("timeout_ms", mp(60000u))
      .set("delivery", mp(2u));
}
inline Fields ack_fields() {
  return Fields()
      .set("v", mp(1u))
      .set("type", mp_str("ack"))
      .set("group", mp_str("task-queue"))
      .set("event_id", mp_str("mon-1:42"));
}
inline Fields request_fields() {
  return Fields()
      .set("v", mp(1u))
      .set("op", mp_str("set_state"))
      .set("runner_id", mp_str("r-1"))
      .set("state", mp_str("failed"))
      .set("pool", mp_str("gpu"))
      .set("limit", mp(10u));
}
inline Fields add_runner_fields() {  // the `runner` of an `add`: a heartbeat without v and seq
  return Fields().merge(runner_fields()).set("state", mp_str("running"));
}
inline Fields view_fields() {
  return Fields()
      .merge(runner_fields())
      .set("state", mp_str("suspect"))
      .set("last_seq", mp(9u))
      .set("last_heartbeat_ms", mp(1'700'000'000'000))
      .set("silence_ms", mp(40000u))
      .set("timeout_ms", mp(60000u))
      .set("added_at_ms", mp(1'600'000'000'000))
      .set("interval_ms", mp(1000u));
}
inline Fields reply_fields() {
  return Fields()
      .set("ok", mp(true))
      .set("v", mp(1u))
      .set("error", mp_str(""))
      .set("detail", mp_str(""))
      .set("version", mp(1u))
      .set("count", mp(3u))
      .set("removed", mp(false))
      .set("runner", view_fields().build())
      .set("runners", bytes({0x91}) + view_fields().build())
      .set("heartbeats", mp(12u));
}

inline Fields lookup_entry_fields() {
  return Fields()
      .set("task_id", mp_str("t-1"))
      .set("attempt", mp(2u))
      .set("state", mp_str("failed"))
      .set("timed_out", mp(true))
      .set("state_for_ms", mp(1500u));
}
inline Fields lookup_reply_fields() {
  return Fields()
      .set("ok", mp(true))
      .set("v", mp(1u))
      .set("error", mp_str(""))
      .set("detail", mp_str(""))
      .set("runners", bytes({0x92}) + lookup_entry_fields().build() + kNil)
      .set("uptime_ms", mp(60000u));
}

// A client's view of a lookup reply, encoded as the monitor would.
inline Bytes encode_lookup_reply(const LookupReply& r) {
  if (!r.ok) return encode_control_reply(ControlReply::failure(r.error, r.detail));
  ControlReply c;
  c.lookup = r.runners;
  c.uptime_ms = r.uptime_ms;
  return encode_control_reply(c);
}

// --- Decoders under test, each with its re-encoding property -------------------

struct Verdict {
  Outcome rejection;    // nullopt: accepted
  std::string problem;  // non-empty: a property was violated
};

inline bool same(const Rejection& a, const Rejection& b) {
  return a.reason == b.reason && a.field == b.field;
}

// Whatever a decoder accepts, re-encoded, must be accepted again and be a
// fixed point of encode(decode(.)).
template <class T, class Decode, class Encode>
inline Verdict accepted_reencodes(const Result<T>& first, Decode decode, Encode encode) {
  if (!first.ok()) return {first.error(), {}};
  const Bytes once = encode(first.value());
  auto second = decode(once);
  if (!second.ok()) return {{}, "own re-encoding rejected: " + second.error().to_string()};
  if (encode(second.value()) != once) return {{}, "re-encoding is not a fixed point"};
  return {};
}

struct Decoder {
  const char* name;
  std::function<Verdict(std::string_view)> run;
};

inline const std::vector<Decoder>& all_decoders() {
  static const std::vector<Decoder> decoders = {
      {"heartbeat",
       [](std::string_view f) {
         auto first = decode_heartbeat("hb/r-1", f);
         static Heartbeat reused;
         const Status into = decode_heartbeat_into("hb/r-1", f, reused);
         if (into.ok() != first.ok()) return Verdict{{}, "decode_heartbeat_into disagrees"};
         if (!first.ok() && !same(into.error(), first.error())) {
           return Verdict{{}, "decode_heartbeat_into gives another reason"};
         }
         if (first.ok() && !(reused == first.value())) {
           return Verdict{{}, "reused struct kept stale fields"};
         }
         return accepted_reencodes(
             first, [](const Bytes& b) { return decode_heartbeat("hb/r-1", b); },
             [](const Heartbeat& hb) { return encode_heartbeat(hb); });
       }},
      {"timeout_event",
       [](std::string_view f) {
         return accepted_reencodes(
             decode_timeout_event(f), [](const Bytes& b) { return decode_timeout_event(b); },
             [](const TimeoutEvent& ev) { return encode_timeout_event(ev); });
       }},
      {"ack",
       [](std::string_view f) {
         return accepted_reencodes(
             decode_ack(f), [](const Bytes& b) { return decode_ack(b); },
             [](const Ack& a) { return encode_ack(a); });
       }},
      {"control_request",
       [](std::string_view f) {
         return accepted_reencodes(
             decode_control_request(f), [](const Bytes& b) { return decode_control_request(b); },
             [](const ControlRequest& r) { return encode_control_request(r); });
       }},
      {"control_reply",
       [](std::string_view f) {
         return accepted_reencodes(
             decode_control_reply(f), [](const Bytes& b) { return decode_control_reply(b); },
             [](const ControlReply& r) { return encode_control_reply(r); });
       }},
      {"lookup_reply",
       [](std::string_view f) {
         return accepted_reencodes(
             decode_lookup_reply(f), [](const Bytes& b) { return decode_lookup_reply(b); },
             [](const LookupReply& r) { return encode_lookup_reply(r); });
       }},
      {"progress",
       [](std::string_view f) {
         const Status s = validate_progress(f);
         return s.ok() ? Verdict{} : Verdict{s.error(), {}};
       }},
  };
  return decoders;
}

inline const Decoder& decoder(std::string_view name) {
  for (const Decoder& d : all_decoders()) {
    if (name == d.name) return d;
  }
  std::abort();  // a typo in this file
}

// Runs one decoder and turns a thrown exception into a test failure.
inline Verdict run_guarded(const Decoder& d, std::string_view frame) {
  try {
    return d.run(frame);
  } catch (const std::exception& e) {
    return {{}, std::string("threw: ") + e.what()};
  } catch (...) {
    return {{}, "threw a non-exception"};
  }
}

inline std::string hex(std::string_view b, std::size_t max = 48) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < b.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(b[i]);
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  if (b.size() > max) out += "...(" + std::to_string(b.size()) + " bytes)";
  return out;
}

inline std::string reason_of(const Outcome& o) {
  return o ? std::string(reason_name(o->reason)) : "accepted";
}
inline bool known_reason(const Rejection& r) { return static_cast<int>(r.reason) < kReasonCount; }

// A valid frame of each kind, with the decoder that accepts it.
struct Sample {
  const char* decoder;
  Bytes frame;
};

inline std::vector<Sample> valid_samples() {
  Heartbeat hb;
  hb.runner.runner_id = "r-1";
  hb.runner.task_id = "task-42";
  hb.runner.attempt = 3;
  hb.runner.pool = "gpu";
  hb.runner.pool_type = PoolType::kKubernetes;
  hb.runner.job_name = "job-abc";
  hb.runner.progress = mp(std::map<std::string, std::vector<int>>{{"steps", {1, 2}}});
  hb.seq = 99;
  hb.timeout_ms = 5000;
  hb.sent_at_ms = 1'700'000'000'000;

  TimeoutEvent ev;
  ev.event_id = "mon-1:7";
  ev.runner = hb.runner;
  ev.last_seq = 99;
  ev.last_heartbeat_ms = 1'700'000'000'000;
  ev.detected_at_ms = 1'700'000'005'000;
  ev.timeout_ms = 5000;

  ControlRequest add;
  add.op = Op::kAdd;
  add.runner = hb;
  ControlRequest list;
  list.op = Op::kList;
  list.state = RunnerState::kSuspect;
  list.pool = "gpu";
  list.limit = 50;

  RunnerView view;
  view.runner = hb.runner;
  view.state = RunnerState::kSuspect;
  view.last_seq = 99;
  view.timeout_ms = 5000;
  ControlReply listed;
  listed.runners = std::vector<RunnerView>{view, view};
  ControlReply stats;
  stats.stats = {{"heartbeats", 10}, {"rejected", 2}, {"timeouts", 1}, {"runners", 4}};
  ControlRequest lookup;
  lookup.op = Op::kLookup;
  lookup.runner_ids = {"r-1", "r-2", "r-1"};
  ControlReply looked_up;
  looked_up.lookup = {LookupEntry{"task-42", 3, RunnerState::kSuspect, false, 2500}, std::nullopt};
  looked_up.uptime_ms = 90000;

  return {
      {"heartbeat", encode_heartbeat(hb)},
      {"heartbeat", heartbeat_fields().build()},
      {"timeout_event", encode_timeout_event(ev)},
      {"timeout_event", event_fields().build()},
      {"ack", encode_ack({"pool-manager", "mon-1:7"})},
      {"ack", ack_fields().set("unknown", mp(std::vector<int>{1, 2})).build()},
      {"control_request", encode_control_request(add)},
      {"control_request", encode_control_request(list)},
      {"control_request", request_fields().build()},
      {"control_reply", encode_control_reply(listed)},
      {"control_reply", encode_control_reply(stats)},
      {"control_reply", encode_control_reply(ControlReply::failure("not_found", "no r-9"))},
      {"control_reply", reply_fields().build()},
      {"control_request", encode_control_request(lookup)},
      {"lookup_reply", encode_control_reply(looked_up)},
      {"lookup_reply", encode_control_reply(ControlReply::failure("bad_request", "no ids"))},
      {"lookup_reply", lookup_reply_fields().build()},
      {"progress", *hb.runner.progress},
      {"progress", mp(std::vector<std::string>{"a", "b"})},
  };
}

}  // namespace rmon::protocol::hostile
