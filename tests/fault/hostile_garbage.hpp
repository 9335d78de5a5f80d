#pragma once
// Malformed messages for every socket of the stack (the hostile-input
// fault): random bytes, every truncation of a valid message, trailing bytes,
// wrong types and values field by field, non-map and hugely declared values,
// deep nesting, wrong frame counts, oversized frames. Deterministic for a
// seed. Nothing here is a valid message: each generator checks its output
// with the project's own decoder where one exists and leaves out what it
// would accept.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace rmon::fault {

struct Garbage {
  std::vector<std::string> frames;  // one message
  // Counted as rejected by the receiver. False for what never reaches its
  // decoder: frames over the socket's ZMQ_MAXMSGSIZE (libzmq drops the
  // connection) and topics the monitor's subscription filters out.
  bool counted = true;
  std::string what;  // a short label for failure messages
};

// A MessagePack map given as (key, encoded value) pairs.
using Fields = std::vector<std::pair<std::string, std::string>>;
std::string map_of(const Fields& f);

// Encoded single values.
std::string mp_str(const std::string& s);
std::string mp_uint(uint64_t v);
std::string mp_int(int64_t v);
std::string mp_float(double v);
std::string mp_bool(bool v);
std::string mp_nil();

// Heartbeats [topic, payload] for runner "garbage-hb"; the connection
// droppers (over 64 KiB) come last.
std::vector<Garbage> heartbeat_garbage(uint64_t seed);
// Acks: malformed ones, then well-formed ones for events nobody sent
// (counted as unknown_event); droppers last.
std::vector<Garbage> ack_garbage(uint64_t seed);
// Timeout events for a consumer's event socket (none over 64 KiB).
std::vector<Garbage> event_garbage(uint64_t seed);
// Request bodies (one frame; the sender adds envelopes) for the monitor's
// control socket, the task-queue API and the pool-manager API. Each must be
// answered {ok: false, error: bad_request | unknown_op}; the last one is over
// the socket's ZMQ_MAXMSGSIZE (uncounted: no answer, the peer is dropped).
std::vector<Garbage> control_garbage(uint64_t seed);
std::vector<Garbage> task_api_garbage(uint64_t seed);
std::vector<Garbage> pool_api_garbage(uint64_t seed);

}  // namespace rmon::fault
