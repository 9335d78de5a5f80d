#pragma once
// Encoding and decoding of every protocol message.
//
// Encoders write maps with exactly the documented keys. Decoders are strict
// about required keys and types, ignore unknown keys, enforce size, count and
// depth limits before allocating, and never throw: a rejection is a value.
// All functions are thread-safe (decoders use a thread-local scratch zone).

#include <string>
#include <string_view>

#include "rmon/protocol/limits.hpp"
#include "rmon/protocol/messages.hpp"
#include "rmon/protocol/result.hpp"

namespace rmon::protocol {

// --- heartbeat: two frames, topic then payload ---
std::string heartbeat_topic(std::string_view runner_id);
// Appends nothing: `out` is overwritten. Reusing `out` avoids allocation.
void encode_heartbeat(const Heartbeat& hb, std::string& out);
std::string encode_heartbeat(const Heartbeat& hb);
// Hot path: fills `out`, reusing its strings' capacity. On rejection `out` is
// left in an unspecified but valid state.
Status decode_heartbeat_into(std::string_view topic, std::string_view payload, Heartbeat& out);
Result<Heartbeat> decode_heartbeat(std::string_view topic, std::string_view payload);

// --- timeout event ---
std::string encode_timeout_event(const TimeoutEvent& ev);
Result<TimeoutEvent> decode_timeout_event(std::string_view frame);

// --- acknowledgement ---
std::string encode_ack(const Ack& ack);
Result<Ack> decode_ack(std::string_view frame);

// --- control ---
std::string encode_control_request(const ControlRequest& req);
Result<ControlRequest> decode_control_request(std::string_view frame);
std::string encode_control_reply(const ControlReply& reply);
// At least the bytes `v` takes in an encoded reply: for budgeting a `list`
// reply before encoding it.
std::size_t encoded_size_bound(const RunnerView& v);
Result<ControlReply> decode_control_reply(std::string_view frame,
                                          std::size_t max_frame = kMaxReplyFrame);

// --- progress helpers: `progress` is carried as raw MessagePack bytes ---
// Checks that `bytes` is exactly one MessagePack value within the limits.
Status validate_progress(std::string_view bytes);

namespace detail {
// The heartbeat decoder's routes, all reaching the same verdicts; tests and
// the fuzz target compare them. decode_heartbeat_into is direct, else events.
// - direct: a reader specialised to the heartbeat schema. True when it
//   accepted the message into `out`; false when it declined (anything wrong or
//   unusual), leaving `out` unspecified.
// - events: msgpack-cxx's event parser with a visitor; every verdict.
// - generic: msgpack-cxx's object tree; every verdict. The reference.
bool decode_heartbeat_direct(std::string_view topic, std::string_view payload, Heartbeat& out);
Status decode_heartbeat_events(std::string_view topic, std::string_view payload, Heartbeat& out);
Status decode_heartbeat_generic(std::string_view topic, std::string_view payload, Heartbeat& out);
}  // namespace detail

}  // namespace rmon::protocol
