// The heartbeat decoders' fuller routes: events (msgpack-cxx's event parser with
// a visitor), which the direct route falls back to, and the generic object
// decoder every route must agree with.

#include "fields.hpp"
#include "rmon/protocol/codec.hpp"
#include "wire.hpp"

namespace rmon::protocol {

using namespace fields;  // NOLINT(google-build-using-namespace): the codec's own internals
using wire::for_each_field;
using wire::read_int;
using wire::read_opt_str;
using wire::read_str;
using wire::read_uint;

// The event route: msgpack-cxx's event parser (msgpack::parse with a
// visitor) applies top-level fields as they are read, with no object tree and
// no zone. It reproduces the generic decoder's verdicts exactly (the tests
// and the fuzz target compare the two): structural problems (malformed bytes,
// counts and nesting over the limits, trailing bytes) win over field
// problems, and the first field problem in map order wins over later ones.
namespace {

class HeartbeatVisitor : public msgpack::null_visitor {
 public:
  HeartbeatVisitor(Heartbeat& hb, std::size_t frame_size) : hb_(hb), limits_(frame_size) {}

  Status structural_error() const { return structural_; }
  Status field_error() const { return field_; }
  const Required& required() const { return req_; }

  bool visit_nil() { return scalar(make(msgpack::type::NIL)); }
  bool visit_boolean(bool b) {
    object o = make(msgpack::type::BOOLEAN);
    o.via.boolean = b;
    return scalar(o);
  }
  bool visit_positive_integer(uint64_t u) {
    object o = make(msgpack::type::POSITIVE_INTEGER);
    o.via.u64 = u;
    return scalar(o);
  }
  bool visit_negative_integer(int64_t i) {
    // msgpack reports every signed encoding here; a non-negative value is a
    // positive integer, as msgpack's own object builder makes it.
    if (i >= 0) return visit_positive_integer(static_cast<uint64_t>(i));
    object o = make(msgpack::type::NEGATIVE_INTEGER);
    o.via.i64 = i;
    return scalar(o);
  }
  bool visit_float32(float f) {
    object o = make(msgpack::type::FLOAT32);
    o.via.f64 = f;
    return scalar(o);
  }
  bool visit_float64(double f) {
    object o = make(msgpack::type::FLOAT64);
    o.via.f64 = f;
    return scalar(o);
  }
  bool visit_str(const char* p, uint32_t n) {
    if (limits_.depth() == 1 && in_key_) {
      key_ = std::string_view(p, n);
      progress_key_ = key_ == "progress";
      return true;
    }
    object o = make(msgpack::type::STR);
    o.via.str.ptr = p;
    o.via.str.size = n;
    return scalar(o);
  }
  bool visit_bin(const char* p, uint32_t n) {
    object o = make(msgpack::type::BIN);
    o.via.bin.ptr = p;
    o.via.bin.size = n;
    return scalar(o);
  }
  bool visit_ext(const char* p, uint32_t n) {
    object o = make(msgpack::type::EXT);
    o.via.ext.ptr = p;  // the type byte, then the data, as msgpack's object has it
    o.via.ext.size = n - 1;
    return scalar(o);
  }
  bool start_array(uint32_t n) { return container(msgpack::type::ARRAY, n); }
  bool start_map(uint32_t n) { return container(msgpack::type::MAP, 2 * static_cast<uint64_t>(n)); }
  bool end_array() {
    limits_.close();
    return true;
  }
  bool end_map() {
    limits_.close();
    return true;
  }
  bool start_map_key() {
    if (limits_.depth() == 1) in_key_ = true;
    return true;
  }
  bool start_map_value() {
    if (limits_.depth() == 1) in_key_ = false;
    return true;
  }
  bool end_map_value() {
    if (limits_.depth() == 1 && pk_) finish_progress();
    return true;
  }
  void parse_error(std::size_t, std::size_t) { structural_ = Rejection{Reason::kMalformed, {}}; }
  void insufficient_bytes(std::size_t, std::size_t) {
    structural_ = Rejection{Reason::kMalformed, {}};
  }

 private:
  static object make(msgpack::type::object_type t) {
    object o;
    o.type = t;
    return o;
  }
  void field_problem(Rejection r) {
    if (field_) field_ = r;  // the first one in map order
  }
  // A complete value at the current position.
  bool scalar(const object& o) { return scalar_at(limits_.depth(), o); }
  bool scalar_at(std::size_t depth, const object& o) {
    if (packing_) {  // inside a progress container
      wire::pack_value(*pk_, o);
      return true;
    }
    if (progress_value(depth)) {
      begin_progress();
      wire::pack_value(*pk_, o);
      return true;
    }
    if (depth == 0) {
      field_problem({Reason::kMalformed, "not a map"});
    } else if (depth == 1 && in_key_) {
      field_problem({Reason::kMalformed, "non-string key"});
    } else if (depth == 1 && field_) {
      if (Status s = heartbeat_field(key_, o, hb_, req_); !s) field_problem(s.error());
    }
    return true;  // depth > 1: inside a value no field reads
  }
  bool container(msgpack::type::object_type t, uint64_t elements) {
    const std::size_t depth = limits_.depth();
    if (!limits_.open(elements)) {
      structural_ = limits_.error();
      return false;
    }
    const bool starts_progress = !packing_ && progress_value(depth);
    if (packing_ || starts_progress) {
      if (starts_progress) {
        begin_progress();
        packing_ = true;
      }
      const auto n = static_cast<uint32_t>(t == msgpack::type::MAP ? elements / 2 : elements);
      if (t == msgpack::type::MAP) {
        pk_->pack_map(n);
      } else {
        pk_->pack_array(n);
      }
      return true;
    }
    if (depth == 0 && t != msgpack::type::MAP) field_problem({Reason::kMalformed, "not a map"});
    if (depth == 1) {
      // A container where a field's value goes: the field's reader rejects
      // it by type, as the generic decoder does with the same object.
      object o = make(t);
      o.via.array.size = 0;
      o.via.array.ptr = nullptr;
      scalar_at(depth, o);
    }
    return true;
  }

  // `progress` is kept as raw MessagePack: re-encoded here from the events,
  // exactly as the generic decoder re-encodes its object (same packer calls).
  bool progress_value(std::size_t depth) const { return depth == 1 && !in_key_ && progress_key_; }
  void begin_progress() {
    req_.see(kProgress);
    if (!hb_.runner.progress) hb_.runner.progress.emplace();
    hb_.runner.progress->clear();
    pk_.emplace(*hb_.runner.progress);
  }
  void finish_progress() {
    pk_.reset();
    packing_ = false;
    if (hb_.runner.progress->size() > kMaxProgressBytes) {
      field_problem({Reason::kTooLarge, "progress"});
    }
  }

  Heartbeat& hb_;
  std::optional<wire::Packer> pk_;  // set while a progress value is read
  bool packing_ = false;            // inside a progress container
  bool progress_key_ = false;
  wire::Limits limits_;
  Required req_;
  bool in_key_ = false;
  std::string_view key_;
  Status structural_{Rejection{Reason::kMalformed, {}}};
  Status field_;
};

}  // namespace

namespace detail {

Status decode_heartbeat_generic(std::string_view topic, std::string_view payload, Heartbeat& out) {
  if (Status s = check_topic_prefix(topic, payload); !s) return s;
  object root;
  if (Status s = wire::unpack(payload, kMaxHeartbeatFrame, root); !s) return s;
  if (root.type != msgpack::type::MAP) return Rejection{Reason::kMalformed, "not a map"};
  if (Status s = heartbeat_map(root, true, out); !s) return s;
  return check_topic_runner(topic, out);
}

Status decode_heartbeat_events(std::string_view topic, std::string_view payload, Heartbeat& out) {
  if (Status s = check_topic_prefix(topic, payload); !s) return s;
  if (payload.empty()) return Rejection{Reason::kMalformed, "empty frame"};
  HeartbeatVisitor v(out, payload.size());
  std::size_t offset = 0;
  bool parsed = false;
  try {
    parsed = msgpack::parse(payload.data(), payload.size(), offset, v);
  } catch (const std::exception&) {
    parsed = false;  // bad_alloc of the parser's own stack; treated as malformed
  }
  if (!parsed) return v.structural_error();
  if (offset != payload.size()) return Rejection{Reason::kMalformed, "trailing bytes"};
  if (Status s = v.field_error(); !s) return s;
  if (Status s = finish_heartbeat(v.required(), true, out); !s) return s;
  return check_topic_runner(topic, out);
}

}  // namespace detail

Status decode_heartbeat_into(std::string_view topic, std::string_view payload, Heartbeat& out) {
  if (detail::decode_heartbeat_direct(topic, payload, out)) return {};
  return detail::decode_heartbeat_events(topic, payload, out);
}

Result<Heartbeat> decode_heartbeat(std::string_view topic, std::string_view payload) {
  Heartbeat hb;
  if (Status s = decode_heartbeat_into(topic, payload, hb); !s) return s.error();
  return hb;
}

Status validate_progress(std::string_view bytes) {
  if (bytes.size() > kMaxProgressBytes) return Rejection{Reason::kTooLarge, "progress"};
  object o;
  return wire::unpack(bytes, kMaxProgressBytes, o);
}

}  // namespace rmon::protocol
