#pragma once
// Generic MessagePack maps for request/reply APIs that have many small ops
// (task-queue, pool-manager): a bounded, typed reader of one map with string
// keys, and a builder that writes one. Rejections are values, as in codec.hpp.
//
// MapReader refers to the calling thread's scratch zone and to the frame it
// parsed: it is valid until the next parse on the same thread and while the
// frame lives. Keys passed to it must be literals (a Rejection keeps the
// key's view). Not thread-safe; cheap to copy.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rmon/protocol/limits.hpp"
#include "rmon/protocol/result.hpp"

namespace rmon::protocol {

class MapReader {
 public:
  // One map with string keys within `max_frame` bytes; size, count and depth
  // limits are checked before anything is allocated.
  static Result<MapReader> parse(std::string_view frame, std::size_t max_frame = kMaxFrame);

  // Present with a value other than nil.
  bool has(std::string_view key) const;

  // Required keys: missing_field when absent (or nil), wrong_type otherwise.
  Status str(std::string_view key, std::string& out, std::size_t max = kMaxIdBytes) const;
  Status u64(std::string_view key, uint64_t& out) const;
  Status i64(std::string_view key, int64_t& out) const;
  Status boolean(std::string_view key, bool& out) const;
  // Optional keys: absent or nil leaves `out` empty.
  Status opt_str(std::string_view key, std::optional<std::string>& out,
                 std::size_t max = kMaxIdBytes) const;
  Status opt_u64(std::string_view key, std::optional<uint64_t>& out) const;
  Status opt_i64(std::string_view key, std::optional<int64_t>& out) const;
  Status opt_bool(std::string_view key, std::optional<bool>& out) const;
  // Any value, re-encoded as MessagePack bytes; too_large past `max` bytes.
  Status opt_raw(std::string_view key, std::optional<std::string>& out, std::size_t max) const;
  // A nested map, or an array of maps.
  Status opt_map(std::string_view key, std::optional<MapReader>& out) const;
  Status opt_maps(std::string_view key, std::vector<MapReader>& out) const;

  // The protocol's common checks: `v` is 1 (bad_version / missing_field).
  Status check_version() const;

 private:
  friend struct MapReaderAccess;
  explicit MapReader(const void* map) : map_(map) {}
  // A msgpack::object (a map) in the thread's scratch zone; opaque here so
  // that users of this header need not include msgpack.
  const void* map_ = nullptr;
};

// Writes one map. Each setter appends a key and its value; finish() returns
// the encoded map. Keys are written in call order; the caller does not repeat
// one. Not thread-safe.
class MapBuilder {
 public:
  MapBuilder& str(std::string_view key, std::string_view value);
  MapBuilder& u64(std::string_view key, uint64_t value);
  MapBuilder& i64(std::string_view key, int64_t value);
  MapBuilder& boolean(std::string_view key, bool value);
  MapBuilder& nil(std::string_view key);
  // `value` is already one encoded MessagePack value (a nested map, a payload).
  MapBuilder& raw(std::string_view key, std::string_view value);
  // Optional values: nothing is written when empty.
  MapBuilder& opt_str(std::string_view key, const std::optional<std::string>& value);
  MapBuilder& opt_u64(std::string_view key, const std::optional<uint64_t>& value);
  MapBuilder& opt_i64(std::string_view key, const std::optional<int64_t>& value);
  MapBuilder& opt_raw(std::string_view key, const std::optional<std::string>& value);
  // An array whose elements are already encoded values.
  MapBuilder& array(std::string_view key, const std::vector<std::string>& encoded);

  // Appends every key of `other` (a request's header and its fields).
  MapBuilder& extend(const MapBuilder& other);

  std::string finish() const;
  // Bytes written so far (for budgeting a reply).
  std::size_t size() const { return body_.size(); }

 private:
  void key(std::string_view k);
  std::string body_;
  uint32_t count_ = 0;
};

// The standard replies: {ok: true, ...} and {ok: false, error, detail}.
MapBuilder ok_reply();
std::string error_reply(std::string_view error, std::string_view detail);

// Renders any encoded MessagePack value as JSON (for CLIs and logs): maps with
// non-string keys get their keys rendered as strings, bin as a string of its
// bytes (escaped), ext as null. Returns "null" for bytes that do not parse.
std::string to_json(std::string_view msgpack_bytes);

}  // namespace rmon::protocol
