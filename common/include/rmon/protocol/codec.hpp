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
// Frames up to kMaxControlRequestFrame. A `lookup`'s `runner_ids` must hold 1
// (else bad_value) to kMaxLookupIds (else too_large) strings of 1 to
// kMaxIdBytes bytes; the rejection's field is `runner_ids`.
Result<ControlRequest> decode_control_request(std::string_view frame);
// `runners` holds `lookup` when set, else `runners` (a reply has one of them).
std::string encode_control_reply(const ControlReply& reply);
// At least the bytes `v` takes in an encoded reply: for budgeting a `list`
// reply before encoding it.
std::size_t encoded_size_bound(const RunnerView& v);
Result<ControlReply> decode_control_reply(std::string_view frame,
                                          std::size_t max_frame = kMaxReplyFrame);
// The reply to a `lookup`, for clients (decode_control_reply reads `runners`
// as a `list`'s runner maps, so it rejects a lookup's nil entries). Why a
// LookupReply and not the bare entries: a rejection names a reason and a key
// in static storage, while a monitor's refusal (`bad_request`, `forbidden`,
// ...) carries its own words; both must reach the caller, distinctly. So:
// - a frame that breaks the contract (malformed, a mistyped key, more than
//   kMaxLookupIds entries, `ok: true` without `runners`) is a Rejection;
// - `ok: false` is a LookupReply with `error` and `detail` (no runners);
// - `ok: true` is a LookupReply with one entry (or nullopt: nil) per
//   requested id, in request order. Checking that the count matches the
//   request is the caller's part.
Result<LookupReply> decode_lookup_reply(std::string_view frame,
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
