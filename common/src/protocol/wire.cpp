#include "wire.hpp"

#include <limits>

#include "rmon/protocol/limits.hpp"

namespace rmon::protocol::wire {
namespace {

// Strings, bin and ext stay in the caller's frame: no copy per field.
bool reference_everything(msgpack::type::object_type, std::size_t, void*) { return true; }

msgpack::zone& scratch_zone() {
  thread_local msgpack::zone zone;
  return zone;
}

}  // namespace

Status unpack(std::string_view frame, std::size_t max_frame, msgpack::object& out) {
  if (frame.empty()) return Rejection{Reason::kMalformed, "empty frame"};
  if (frame.size() > max_frame) return Rejection{Reason::kTooLarge, "frame"};
  // Every element takes at least one byte, so no honest count can exceed the
  // frame size; bounding counts by it keeps the zone's up-front allocation for
  // a container (count * sizeof(object)) linear in the bytes received.
  const std::size_t n = frame.size();
  const msgpack::unpack_limit limit(n, n / 2, n, n, n, kMaxDepth);
  msgpack::zone& zone = scratch_zone();
  zone.clear();
  std::size_t offset = 0;
  try {
    out = msgpack::unpack(zone, frame.data(), frame.size(), offset, &reference_everything, nullptr,
                          limit);
  } catch (const msgpack::size_overflow&) {
    return Rejection{Reason::kTooLarge, "nesting or element count"};
  } catch (const std::exception&) {
    // parse_error, insufficient_bytes, and bad_alloc from a hostile header.
    return Rejection{Reason::kMalformed, {}};
  }
  if (offset != frame.size()) return Rejection{Reason::kMalformed, "trailing bytes"};
  return {};
}

Status read_uint(const msgpack::object& o, std::string_view field, uint64_t& out) {
  if (o.type != msgpack::type::POSITIVE_INTEGER) return Rejection{Reason::kWrongType, field};
  out = o.via.u64;
  return {};
}

Status read_int(const msgpack::object& o, std::string_view field, int64_t& out) {
  if (o.type == msgpack::type::NEGATIVE_INTEGER) {
    out = o.via.i64;
    return {};
  }
  if (o.type == msgpack::type::POSITIVE_INTEGER &&
      o.via.u64 <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    out = static_cast<int64_t>(o.via.u64);
    return {};
  }
  return Rejection{
      o.type == msgpack::type::POSITIVE_INTEGER ? Reason::kBadValue : Reason::kWrongType, field};
}

Status read_bool(const msgpack::object& o, std::string_view field, bool& out) {
  if (o.type != msgpack::type::BOOLEAN) return Rejection{Reason::kWrongType, field};
  out = o.via.boolean;
  return {};
}

Status read_str(const msgpack::object& o, std::string_view field, std::size_t min, std::size_t max,
                std::string& out) {
  if (o.type != msgpack::type::STR) return Rejection{Reason::kWrongType, field};
  const std::string_view s(o.via.str.ptr, o.via.str.size);
  if (s.size() > max) return Rejection{Reason::kTooLarge, field};
  if (s.size() < min || !valid_utf8(s)) return Rejection{Reason::kBadValue, field};
  out.assign(s.data(), s.size());
  return {};
}

Status read_opt_str(const msgpack::object& o, std::string_view field, std::size_t max,
                    std::optional<std::string>& out) {
  if (!out) out.emplace();
  return read_str(o, field, 1, max, *out);
}

Status read_version(const msgpack::object& o) {
  uint64_t v = 0;
  if (Status s = read_uint(o, "v", v); !s) return s;
  if (v != kVersion) return Rejection{Reason::kBadVersion, "v"};
  return {};
}

Status read_progress(const msgpack::object& o, std::optional<std::string>& out) {
  if (!out) out.emplace();
  out->clear();
  Packer p(*out);
  p.pack(o);
  if (out->size() > kMaxProgressBytes) return Rejection{Reason::kTooLarge, "progress"};
  return {};
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

}  // namespace rmon::protocol::wire
