#pragma once
// Internal to the codec: bounded unpacking and typed field readers on top of
// msgpack-cxx, and a packer that writes into a std::string.

#include <msgpack.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "rmon/protocol/limits.hpp"
#include "rmon/protocol/result.hpp"

namespace rmon::protocol::wire {

// msgpack-cxx buffer concept over std::string.
struct StringWriter {
  std::string* out;
  void write(const char* data, std::size_t size) { out->append(data, size); }
};
struct WriterHolder {
  StringWriter writer;
};
// A packer that appends to a std::string and can also append raw bytes that
// are already MessagePack (the opaque `progress`).
class Packer : private WriterHolder, public msgpack::packer<StringWriter> {
 public:
  explicit Packer(std::string& out)
      : WriterHolder{StringWriter{&out}}, msgpack::packer<StringWriter>(writer) {}
  void raw(std::string_view bytes) { writer.write(bytes.data(), bytes.size()); }
};

inline void pack_str(Packer& p, std::string_view s) {
  p.pack_str(static_cast<uint32_t>(s.size()));
  p.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}
template <class T>
void pack_kv(Packer& p, std::string_view key, const T& value) {
  pack_str(p, key);
  if constexpr (std::is_convertible_v<const T&, std::string_view>) {
    pack_str(p, value);
  } else {
    p.pack(value);
  }
}
// Writes pre-encoded MessagePack bytes as the value of `key`.
inline void pack_raw_kv(Packer& p, std::string_view key, std::string_view raw) {
  pack_str(p, key);
  p.raw(raw);
}

// Structural limits every decoder applies, checked as containers open and
// before anything is allocated for them: nesting at most kMaxDepth
// (too_large), and elements declared in the whole frame (an array's count, a
// map's count twice) at most the frame's size, since each element takes at
// least one byte (more is malformed: a cut or lying frame).
class Limits {
 public:
  explicit Limits(std::size_t frame_size) : budget_(frame_size) {}
  // A container opens with `elements` elements. False when over a limit.
  bool open(uint64_t elements) {
    if (elements > budget_) {
      error_ = Rejection{Reason::kMalformed, "element count"};
      return false;
    }
    if (depth_ >= kMaxDepth) {
      error_ = Rejection{Reason::kTooLarge, "nesting"};
      return false;
    }
    budget_ -= elements;
    ++depth_;
    return true;
  }
  void close() { --depth_; }
  std::size_t depth() const { return depth_; }
  const Rejection& error() const { return error_; }

 private:
  uint64_t budget_;
  std::size_t depth_ = 0;
  Rejection error_{Reason::kMalformed, {}};
};

// Unpacks exactly one value from `frame` into the calling thread's scratch
// zone, which the next call on this thread reuses: the returned object (and
// the string views into `frame` it holds) are valid until then. Limits on
// size, element counts and depth are checked before anything is allocated.
Status unpack(std::string_view frame, std::size_t max_frame, msgpack::object& out);

// Iterates a map with string keys. `fn(key, value)` returns Status.
template <class Fn>
Status for_each_field(const msgpack::object& map, Fn&& fn) {
  if (map.type != msgpack::type::MAP) return Rejection{Reason::kMalformed, "not a map"};
  const msgpack::object_kv* kv = map.via.map.ptr;
  for (uint32_t i = 0; i < map.via.map.size; ++i, ++kv) {
    if (kv->key.type != msgpack::type::STR) return Rejection{Reason::kMalformed, "non-string key"};
    Status s = fn(std::string_view(kv->key.via.str.ptr, kv->key.via.str.size), kv->val);
    if (!s) return s;
  }
  return {};
}

Status read_uint(const msgpack::object& o, std::string_view field, uint64_t& out);
Status read_int(const msgpack::object& o, std::string_view field, int64_t& out);
Status read_bool(const msgpack::object& o, std::string_view field, bool& out);
// A string of at most `max` bytes; `min` 1 for identifiers. Checks UTF-8.
Status read_str(const msgpack::object& o, std::string_view field, std::size_t min, std::size_t max,
                std::string& out);
Status read_opt_str(const msgpack::object& o, std::string_view field, std::size_t max,
                    std::optional<std::string>& out);
Status read_version(const msgpack::object& o);
// Packs `o` (and its elements) as msgpack would, except that floats keep
// their type and exact bits: msgpack's packer turns whole floats into
// integers, and on values past 2^64 that conversion is undefined behaviour.
void pack_value(Packer& p, const msgpack::object& o);

// Re-encodes any value as raw bytes, at most kMaxProgressBytes.
Status read_progress(const msgpack::object& o, std::optional<std::string>& out);

bool valid_utf8(std::string_view s);

}  // namespace rmon::protocol::wire
