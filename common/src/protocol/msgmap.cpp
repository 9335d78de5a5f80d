#include "rmon/protocol/msgmap.hpp"

#include <cmath>

#include <cstdio>

#include "wire.hpp"

namespace rmon::protocol {

using msgpack::object;

struct MapReaderAccess {
  static const object& map(const MapReader& r) { return *static_cast<const object*>(r.map_); }
  static MapReader make(const object* o) { return MapReader(o); }
};

namespace {

const object* find_in(const object& map, std::string_view key) {
  const msgpack::object_kv* kv = map.via.map.ptr;
  for (uint32_t i = 0; i < map.via.map.size; ++i, ++kv) {
    if (kv->key.type == msgpack::type::STR &&
        std::string_view(kv->key.via.str.ptr, kv->key.via.str.size) == key) {
      return kv->val.type == msgpack::type::NIL ? nullptr : &kv->val;
    }
  }
  return nullptr;
}

Status check_keys(const object& map) {
  const msgpack::object_kv* kv = map.via.map.ptr;
  for (uint32_t i = 0; i < map.via.map.size; ++i, ++kv) {
    if (kv->key.type != msgpack::type::STR) return Rejection{Reason::kMalformed, "non-string key"};
  }
  return {};
}

}  // namespace

Result<MapReader> MapReader::parse(std::string_view frame, std::size_t max_frame) {
  thread_local object root;
  if (Status s = wire::unpack(frame, max_frame, root); !s) return s.error();
  if (root.type != msgpack::type::MAP) return Rejection{Reason::kMalformed, "not a map"};
  if (Status s = check_keys(root); !s) return s.error();
  return MapReader(&root);
}

bool MapReader::has(std::string_view key) const {
  return find_in(MapReaderAccess::map(*this), key) != nullptr;
}

#define RMON_FIND_REQUIRED(o, key)                             \
  const object* o = find_in(MapReaderAccess::map(*this), key); \
  if (!o) return Rejection {                                   \
      Reason::kMissingField, key                               \
    }

Status MapReader::str(std::string_view key, std::string& out, std::size_t max) const {
  RMON_FIND_REQUIRED(o, key);
  return wire::read_str(*o, key, 1, max, out);
}
Status MapReader::u64(std::string_view key, uint64_t& out) const {
  RMON_FIND_REQUIRED(o, key);
  return wire::read_uint(*o, key, out);
}
Status MapReader::i64(std::string_view key, int64_t& out) const {
  RMON_FIND_REQUIRED(o, key);
  return wire::read_int(*o, key, out);
}
Status MapReader::boolean(std::string_view key, bool& out) const {
  RMON_FIND_REQUIRED(o, key);
  return wire::read_bool(*o, key, out);
}
#undef RMON_FIND_REQUIRED

Status MapReader::opt_str(std::string_view key, std::optional<std::string>& out,
                          std::size_t max) const {
  out.reset();
  const object* o = find_in(MapReaderAccess::map(*this), key);
  if (!o) return {};
  std::string v;
  if (Status s = wire::read_str(*o, key, 1, max, v); !s) return s;
  out = std::move(v);
  return {};
}

template <class T, class Read>
static Status read_optional(const object* o, std::string_view key, std::optional<T>& out,
                            Read read) {
  out.reset();
  if (!o) return {};
  T v{};
  if (Status s = read(*o, key, v); !s) return s;
  out = v;
  return {};
}

Status MapReader::opt_u64(std::string_view key, std::optional<uint64_t>& out) const {
  return read_optional(find_in(MapReaderAccess::map(*this), key), key, out, wire::read_uint);
}
Status MapReader::opt_i64(std::string_view key, std::optional<int64_t>& out) const {
  return read_optional(find_in(MapReaderAccess::map(*this), key), key, out, wire::read_int);
}
Status MapReader::opt_bool(std::string_view key, std::optional<bool>& out) const {
  return read_optional(find_in(MapReaderAccess::map(*this), key), key, out, wire::read_bool);
}

Status MapReader::opt_raw(std::string_view key, std::optional<std::string>& out,
                          std::size_t max) const {
  out.reset();
  const object* o = find_in(MapReaderAccess::map(*this), key);
  if (!o) return {};
  out.emplace();
  wire::Packer p(*out);
  wire::pack_value(p, *o);
  if (out->size() > max) {
    out.reset();
    return Rejection{Reason::kTooLarge, key};
  }
  return {};
}

Status MapReader::opt_map(std::string_view key, std::optional<MapReader>& out) const {
  out.reset();
  const object* o = find_in(MapReaderAccess::map(*this), key);
  if (!o) return {};
  if (o->type != msgpack::type::MAP) return Rejection{Reason::kWrongType, key};
  if (Status s = check_keys(*o); !s) return s;
  out = MapReaderAccess::make(o);
  return {};
}

Status MapReader::opt_maps(std::string_view key, std::vector<MapReader>& out) const {
  out.clear();
  const object* o = find_in(MapReaderAccess::map(*this), key);
  if (!o) return {};
  if (o->type != msgpack::type::ARRAY) return Rejection{Reason::kWrongType, key};
  for (uint32_t i = 0; i < o->via.array.size; ++i) {
    const object& e = o->via.array.ptr[i];
    if (e.type != msgpack::type::MAP) return Rejection{Reason::kWrongType, key};
    if (Status s = check_keys(e); !s) return s;
    out.push_back(MapReaderAccess::make(&e));
  }
  return {};
}

Status MapReader::check_version() const {
  const object* o = find_in(MapReaderAccess::map(*this), "v");
  if (!o) return Rejection{Reason::kMissingField, "v"};
  return wire::read_version(*o);
}

// --- builder ---

void MapBuilder::key(std::string_view k) {
  ++count_;
  wire::Packer p(body_);
  wire::pack_str(p, k);
}

MapBuilder& MapBuilder::str(std::string_view k, std::string_view value) {
  key(k);
  wire::Packer p(body_);
  wire::pack_str(p, value);
  return *this;
}
MapBuilder& MapBuilder::u64(std::string_view k, uint64_t value) {
  key(k);
  wire::Packer(body_).pack_uint64(value);
  return *this;
}
MapBuilder& MapBuilder::i64(std::string_view k, int64_t value) {
  key(k);
  wire::Packer(body_).pack_int64(value);
  return *this;
}
MapBuilder& MapBuilder::boolean(std::string_view k, bool value) {
  key(k);
  wire::Packer p(body_);
  if (value) {
    p.pack_true();
  } else {
    p.pack_false();
  }
  return *this;
}
MapBuilder& MapBuilder::nil(std::string_view k) {
  key(k);
  wire::Packer(body_).pack_nil();
  return *this;
}
MapBuilder& MapBuilder::raw(std::string_view k, std::string_view value) {
  key(k);
  body_.append(value);
  return *this;
}
MapBuilder& MapBuilder::opt_str(std::string_view k, const std::optional<std::string>& v) {
  return v ? str(k, *v) : *this;
}
MapBuilder& MapBuilder::opt_u64(std::string_view k, const std::optional<uint64_t>& v) {
  return v ? u64(k, *v) : *this;
}
MapBuilder& MapBuilder::opt_i64(std::string_view k, const std::optional<int64_t>& v) {
  return v ? i64(k, *v) : *this;
}
MapBuilder& MapBuilder::opt_raw(std::string_view k, const std::optional<std::string>& v) {
  return v ? raw(k, *v) : *this;
}
MapBuilder& MapBuilder::array(std::string_view k, const std::vector<std::string>& encoded) {
  key(k);
  wire::Packer p(body_);
  p.pack_array(static_cast<uint32_t>(encoded.size()));
  for (const std::string& e : encoded) body_.append(e);
  return *this;
}

MapBuilder& MapBuilder::extend(const MapBuilder& other) {
  body_.append(other.body_);
  count_ += other.count_;
  return *this;
}

std::string MapBuilder::finish() const {
  std::string out;
  out.reserve(body_.size() + 5);
  wire::Packer(out).pack_map(count_);
  out.append(body_);
  return out;
}

MapBuilder ok_reply() {
  MapBuilder b;
  b.boolean("ok", true);
  return b;
}

std::string error_reply(std::string_view error, std::string_view detail) {
  return MapBuilder().boolean("ok", false).str("error", error).str("detail", detail).finish();
}

// --- JSON ---

namespace {

void json_string(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          // Valid UTF-8 passes through; other bytes are escaped one by one.
          if (c >= 0x80) {
            out += static_cast<char>(c);
          } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
          }
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void json_value(std::string& out, const object& o) {
  switch (o.type) {
    case msgpack::type::NIL:
      out += "null";
      break;
    case msgpack::type::BOOLEAN:
      out += o.via.boolean ? "true" : "false";
      break;
    case msgpack::type::POSITIVE_INTEGER:
      out += std::to_string(o.via.u64);
      break;
    case msgpack::type::NEGATIVE_INTEGER:
      out += std::to_string(o.via.i64);
      break;
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: {
      if (!std::isfinite(o.via.f64)) {  // JSON has no NaN or infinity
        out += "null";
        break;
      }
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", o.via.f64);
      out += buf;
      break;
    }
    case msgpack::type::STR:
      json_string(out, std::string_view(o.via.str.ptr, o.via.str.size));
      break;
    case msgpack::type::BIN:
      json_string(out, std::string_view(o.via.bin.ptr, o.via.bin.size));
      break;
    case msgpack::type::ARRAY:
      out += '[';
      for (uint32_t i = 0; i < o.via.array.size; ++i) {
        if (i) out += ',';
        json_value(out, o.via.array.ptr[i]);
      }
      out += ']';
      break;
    case msgpack::type::MAP:
      out += '{';
      for (uint32_t i = 0; i < o.via.map.size; ++i) {
        if (i) out += ',';
        const auto& kv = o.via.map.ptr[i];
        if (kv.key.type == msgpack::type::STR) {
          json_value(out, kv.key);
        } else {
          std::string k;
          json_value(k, kv.key);
          json_string(out, k);
        }
        out += ':';
        json_value(out, kv.val);
      }
      out += '}';
      break;
    default:
      out += "null";
  }
}

}  // namespace

std::string to_json(std::string_view msgpack_bytes) {
  object root;
  if (!wire::unpack(msgpack_bytes, kMaxReplyFrame, root)) return "null";
  std::string out;
  json_value(out, root);
  return out;
}

}  // namespace rmon::protocol
