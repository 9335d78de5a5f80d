#include "wire.hpp"

#include <cstring>
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

namespace {

// A first pass over the frame that allocates nothing: structure and limits.
class StructureCheck : public msgpack::null_visitor {
 public:
  explicit StructureCheck(std::size_t frame_size) : limits_(frame_size) {}
  bool start_array(uint32_t n) { return open(n); }
  bool start_map(uint32_t n) { return open(2 * static_cast<uint64_t>(n)); }
  bool end_array() { return close(); }
  bool end_map() { return close(); }
  void parse_error(std::size_t, std::size_t) {}
  void insufficient_bytes(std::size_t, std::size_t) {}
  // The rejection after a failed parse.
  Rejection error() const {
    return over_limit_ ? limits_.error() : Rejection{Reason::kMalformed, {}};
  }

 private:
  bool open(uint64_t n) {
    over_limit_ = !limits_.open(n);
    return !over_limit_;
  }
  bool close() {
    limits_.close();
    return true;
  }
  Limits limits_;
  bool over_limit_ = false;
};

}  // namespace

Status unpack(std::string_view frame, std::size_t max_frame, msgpack::object& out) {
  if (frame.empty()) return Rejection{Reason::kMalformed, "empty frame"};
  if (frame.size() > max_frame) return Rejection{Reason::kTooLarge, "frame"};
  const std::size_t n = frame.size();
  std::size_t offset = 0;
  StructureCheck check(n);
  bool parsed = false;
  try {
    parsed = msgpack::parse(frame.data(), n, offset, check);
  } catch (const std::exception&) {
    parsed = false;  // bad_alloc of the parser's own stack
  }
  if (!parsed) return check.error();
  if (offset != n) return Rejection{Reason::kMalformed, "trailing bytes"};
  // The frame is known good: the zone gets at most sizeof(object) per
  // declared element. The unpack limits repeat the bounds as a safety net.
  const msgpack::unpack_limit limit(n, n / 2, n, n, n, kMaxDepth);
  msgpack::zone& zone = scratch_zone();
  zone.clear();
  offset = 0;
  try {
    out = msgpack::unpack(zone, frame.data(), n, offset, &reference_everything, nullptr, limit);
  } catch (const std::exception&) {
    return Rejection{Reason::kMalformed, {}};
  }
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
  pack_value(p, o);
  if (out->size() > kMaxProgressBytes) return Rejection{Reason::kTooLarge, "progress"};
  return {};
}

void pack_value(Packer& p, const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::FLOAT32: {
      const auto f = static_cast<float>(o.via.f64);
      uint32_t bits;
      std::memcpy(&bits, &f, sizeof bits);
      const char b[5] = {'\xca', static_cast<char>(bits >> 24), static_cast<char>(bits >> 16),
                         static_cast<char>(bits >> 8), static_cast<char>(bits)};
      p.raw(std::string_view(b, sizeof b));
      return;
    }
    case msgpack::type::FLOAT64: {
      uint64_t bits;
      std::memcpy(&bits, &o.via.f64, sizeof bits);
      char b[9] = {'\xcb'};
      for (int i = 0; i < 8; ++i) b[1 + i] = static_cast<char>(bits >> (56 - 8 * i));
      p.raw(std::string_view(b, sizeof b));
      return;
    }
    case msgpack::type::ARRAY:
      p.pack_array(o.via.array.size);
      for (uint32_t i = 0; i < o.via.array.size; ++i) pack_value(p, o.via.array.ptr[i]);
      return;
    case msgpack::type::MAP:
      p.pack_map(o.via.map.size);
      for (uint32_t i = 0; i < o.via.map.size; ++i) {
        pack_value(p, o.via.map.ptr[i].key);
        pack_value(p, o.via.map.ptr[i].val);
      }
      return;
    default:
      p.pack(o);
  }
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  // Identifiers are almost always ASCII: check eight bytes at a time first.
  while (i + 8 <= n) {
    uint64_t word;
    std::memcpy(&word, s.data() + i, 8);
    if (word & 0x8080808080808080ULL) break;
    i += 8;
  }
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
