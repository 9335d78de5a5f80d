#pragma once
// Rejections are values: every decoder returns a Result and never throws.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "rmon/expected.hpp"

namespace rmon::protocol {

// Why a message was rejected. The names (reason_name) are stable: they are
// metric labels and error codes.
enum class Reason : uint8_t {
  kMalformed,      // not one valid MessagePack map with string keys
  kTooLarge,       // frame, string, progress or nesting over a limit
  kBadVersion,     // `v` is not 1
  kMissingField,   // a required key is absent
  kWrongType,      // a key holds the wrong MessagePack type
  kBadValue,       // right type, value out of range or not one of the allowed words
  kTopicMismatch,  // heartbeat topic is not `hb/<runner_id>`
  kUnknownOp,      // control request with an op this version does not know
};
inline constexpr int kReasonCount = 8;

std::string_view reason_name(Reason r);

struct Rejection {
  Reason reason;
  std::string_view field;  // the offending key; static storage, may be empty
  // "missing_field: runner_id"
  std::string to_string() const;
};

template <class T>
using Result = Expected<T, Rejection>;

// Result without a value, for decoders that fill a caller's object.
using Status = BasicStatus<Rejection>;

}  // namespace rmon::protocol
