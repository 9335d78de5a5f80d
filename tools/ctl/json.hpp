#pragma once
// JSON text -> one encoded MessagePack value, for task payloads given on the
// command line or in a file. Strict RFC 8259: objects (string keys, no
// duplicates), arrays, strings (escapes, \u surrogate pairs, valid UTF-8),
// numbers, true, false, null. Integers become MessagePack integers
// (-2^63 .. 2^64-1), numbers with a fraction or exponent float64. Nesting is
// limited to the protocol's 32 levels.

#include <stdexcept>
#include <string>
#include <string_view>

namespace rmon::ctl {

// "line L, column C: what went wrong" (columns count bytes from 1).
class JsonError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws JsonError.
std::string json_to_msgpack(std::string_view json);

}  // namespace rmon::ctl
