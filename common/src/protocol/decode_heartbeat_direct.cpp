// The heartbeat's first route: a reader specialised to the heartbeat schema.
//
// It reads the flat map straight from the bytes, field by field, with no
// parser events, no msgpack objects and no per-field Status. It only ever
// says "accepted": on anything it is not sure of (a wrong type, a bad value,
// a missing key, a limit, malformed bytes, a `progress` that msgpack would
// re-encode differently) it declines, and decode_heartbeat_into asks the
// event route, which reaches the full verdict with its reason. So an
// accepted heartbeat is the generic decoder's accepted heartbeat, field for
// field; the tests and the fuzz target check exactly that.

#include <cmath>
#include <cstring>

#include "fields.hpp"
#include "rmon/protocol/codec.hpp"
#include "wire.hpp"

namespace rmon::protocol {
namespace {

using namespace fields;  // NOLINT(google-build-using-namespace): the codec's own internals

// Reads MessagePack from a byte range. Every read checks the bytes left and
// returns false when the value is not one the caller accepts as it stands.
class DirectReader {
 public:
  explicit DirectReader(std::string_view bytes)
      : p_(reinterpret_cast<const uint8_t*>(bytes.data())), end_(p_ + bytes.size()) {}

  bool at_end() const { return p_ == end_; }
  const char* pos() const { return reinterpret_cast<const char*>(p_); }

  bool map_header(uint32_t& n) {
    if (p_ == end_) return false;
    const uint8_t b = *p_;
    if ((b & 0xf0) == 0x80) {
      n = b & 0x0f;
      ++p_;
      return true;
    }
    if (b == 0xde) return length(2, n);
    if (b == 0xdf) return length(4, n);
    return false;
  }

  [[gnu::always_inline]] bool str(std::string_view& s) {
    if (p_ == end_) return false;
    const uint8_t b = *p_;
    uint32_t n = 0;
    if ((b & 0xe0) == 0xa0) {
      n = b & 0x1f;
      ++p_;
    } else if (!(b == 0xd9   ? length(1, n)
                 : b == 0xda ? length(2, n)
                 : b == 0xdb ? length(4, n)
                             : false)) {
      return false;
    }
    if (left() < n) return false;
    s = std::string_view(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return true;
  }

  // A non-negative integer in any encoding: msgpack makes every one of them a
  // POSITIVE_INTEGER object, signed encodings included.
  bool uint(uint64_t& v) {
    int64_t i = 0;
    if (!integer(v, i)) return false;
    return i >= 0;
  }
  // Any integer that fits int64 (read_int's rule).
  bool sint(int64_t& v) {
    uint64_t u = 0;
    if (!integer(u, v)) return false;
    return v < 0 || u <= static_cast<uint64_t>(INT64_MAX);
  }

  // Steps over one value of any type. With `canonical`, also false when the
  // value is not encoded exactly as msgpack packs the object it decodes to
  // (smallest headers; floats are kept bit for bit except a float32 NaN,
  // whose bits a float->double->float round trip may change).
  bool value(bool canonical, std::size_t depth);

 private:
  std::size_t left() const { return static_cast<std::size_t>(end_ - p_); }
  // Big-endian unsigned of `bytes` bytes at p_ + 1; consumes the header too.
  bool length(int bytes, uint32_t& n) {
    uint64_t v = 0;
    if (!be(bytes, v)) return false;
    n = static_cast<uint32_t>(v);
    return true;
  }
  bool be(int bytes, uint64_t& v) {
    if (left() < static_cast<std::size_t>(1 + bytes)) return false;
    v = 0;
    for (int k = 1; k <= bytes; ++k) v = (v << 8) | p_[k];
    p_ += 1 + bytes;
    return true;
  }
  // One integer: `u` its value as unsigned, `i` as signed (negative only for
  // negative values). False for anything that is not an integer.
  bool integer(uint64_t& u, int64_t& i) {
    if (p_ == end_) return false;
    const uint8_t b = *p_;
    if (b <= 0x7f) {
      ++p_;
      u = b;
      i = b;
      return true;
    }
    if (b >= 0xe0) {
      ++p_;
      i = static_cast<int8_t>(b);
      u = static_cast<uint64_t>(i);
      return true;
    }
    if (b >= 0xcc && b <= 0xcf) {
      if (!be(1 << (b - 0xcc), u)) return false;
      i = u > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(u);
      return true;
    }
    if (b >= 0xd0 && b <= 0xd3) {
      const int bytes = 1 << (b - 0xd0);
      if (!be(bytes, u)) return false;
      const int shift = 64 - 8 * bytes;  // sign-extend
      i = static_cast<int64_t>(u << shift) >> shift;
      u = static_cast<uint64_t>(i);
      return true;
    }
    return false;
  }
  bool skip(std::size_t n) {
    if (left() < n) return false;
    p_ += n;
    return true;
  }
  bool elements(uint64_t n, bool canonical, std::size_t depth) {
    if (depth >= kMaxDepth) return false;  // the full route names the limit
    for (uint64_t k = 0; k < n; ++k) {
      if (!value(canonical, depth + 1)) return false;  // each takes a byte: n is bounded
    }
    return true;
  }

  const uint8_t* p_;
  const uint8_t* end_;
};

bool DirectReader::value(bool canonical, std::size_t depth) {
  if (p_ == end_) return false;
  const uint8_t b = *p_;
  if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {  // fixints, nil, bool
    ++p_;
    return true;
  }
  if (b <= 0x8f) {
    ++p_;
    return elements(2 * uint64_t{b & 0x0fu}, canonical, depth);
  }
  if (b <= 0x9f) {
    ++p_;
    return elements(b & 0x0fu, canonical, depth);
  }
  if (b <= 0xbf) {
    ++p_;
    return skip(b & 0x1fu);
  }
  // The smallest value each remaining header is the canonical one for.
  uint64_t n = 0;
  switch (b) {
    case 0xc4:  // bin 8/16/32
    case 0xc5:
    case 0xc6: {
      const int bytes = 1 << (b - 0xc4);
      return be(bytes, n) && !(canonical && bytes > 1 && n < (uint64_t{1} << (8 * bytes / 2))) &&
             skip(n);
    }
    case 0xc7:  // ext 8/16/32: then the type byte and the data
    case 0xc8:
    case 0xc9: {
      const int bytes = 1 << (b - 0xc7);
      if (!be(bytes, n)) return false;
      if (canonical) {
        if (bytes == 1 && (n == 1 || n == 2 || n == 4 || n == 8 || n == 16)) return false;
        if (bytes > 1 && n < (uint64_t{1} << (8 * bytes / 2))) return false;
      }
      return skip(1 + n);
    }
    case 0xca: {  // float32
      if (left() < 5) return false;
      uint32_t bits = 0;
      for (int k = 1; k <= 4; ++k) bits = (bits << 8) | p_[k];
      float f;
      std::memcpy(&f, &bits, sizeof f);
      if (canonical && std::isnan(f)) return false;
      p_ += 5;
      return true;
    }
    case 0xcb:  // float64
      return skip(9);
    case 0xcc:  // uint 8/16/32/64
    case 0xcd:
    case 0xce:
    case 0xcf: {
      const int bytes = 1 << (b - 0xcc);
      if (!be(bytes, n)) return false;
      const uint64_t min = bytes == 1 ? 0x80 : uint64_t{1} << (8 * bytes / 2);
      return !canonical || n >= min;
    }
    case 0xd0:  // int 8/16/32/64: canonical only for values below the next smaller form
    case 0xd1:
    case 0xd2:
    case 0xd3: {
      const int bytes = 1 << (b - 0xd0);
      if (!be(bytes, n)) return false;
      const int shift = 64 - 8 * bytes;
      const int64_t v = static_cast<int64_t>(n << shift) >> shift;
      const int64_t below = bytes == 1 ? -32 : -(int64_t{1} << (8 * bytes / 2 - 1));
      return !canonical || v < below;
    }
    case 0xd4:  // fixext 1/2/4/8/16: the type byte and the data
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
      return skip(2 + (std::size_t{1} << (b - 0xd4)));
    case 0xd9:  // str 8/16/32
    case 0xda:
    case 0xdb: {
      const int bytes = 1 << (b - 0xd9);
      if (!be(bytes, n)) return false;
      const uint64_t min = bytes == 1 ? 32 : uint64_t{1} << (8 * bytes / 2);
      return !(canonical && n < min) && skip(n);
    }
    case 0xdc:  // array 16/32
    case 0xdd: {
      const int bytes = 2 << (b - 0xdc);
      if (!be(bytes, n)) return false;
      if (canonical && n < (bytes == 2 ? 16 : 65536)) return false;
      return elements(n, canonical, depth);
    }
    case 0xde:  // map 16/32
    case 0xdf: {
      const int bytes = 2 << (b - 0xde);
      if (!be(bytes, n)) return false;
      if (canonical && n < (bytes == 2 ? 16 : 65536)) return false;
      return elements(2 * n, canonical, depth);
    }
    default:  // 0xc1: never used
      return false;
  }
}

// An identifier or short string: the read_str rules, as a yes or no.
bool good_str(std::string_view s, std::size_t min, std::size_t max) {
  return s.size() >= min && s.size() <= max && wire::valid_utf8(s);
}

bool read_field(Key key, DirectReader& r, Heartbeat& hb, Required& req) {
  std::string_view s;
  uint64_t u = 0;
  RunnerInfo& run = hb.runner;
  switch (key) {
    case Key::kV:
      req.see(kHbVersion);
      return r.uint(u) && u == kVersion;
    case Key::kRunnerId:
    case Key::kTaskId:
    case Key::kPool: {
      if (!r.str(s) || !good_str(s, 1, kMaxIdBytes)) return false;
      const bool id = key == Key::kRunnerId;
      req.see(id ? kRunnerId : key == Key::kTaskId ? kTaskId : kPool);
      (id ? run.runner_id : key == Key::kTaskId ? run.task_id : run.pool).assign(s);
      return true;
    }
    case Key::kAttempt:
      req.see(kAttempt);
      return r.uint(run.attempt) && run.attempt >= 1;
    case Key::kPoolType: {
      req.see(kPoolType);
      if (!r.str(s)) return false;
      const auto t = parse_pool_type(s);
      if (!t) return false;
      run.pool_type = *t;
      return true;
    }
    case Key::kPid:
      req.see(kPid);
      if (!r.uint(u)) return false;
      run.pid = u;
      return true;
    case Key::kContainerId:
    case Key::kJobName: {
      if (!r.str(s) || !good_str(s, 1, kMaxShortString)) return false;
      const bool container = key == Key::kContainerId;
      req.see(container ? kContainerId : kJobName);
      auto& field = container ? run.container_id : run.job_name;
      if (!field) field.emplace();
      field->assign(s);
      return true;
    }
    case Key::kProgress: {
      // Kept as the bytes that were sent when they are what the generic
      // decoder's re-encoding would produce.
      req.see(kProgress);
      const char* start = r.pos();
      if (!r.value(true, 1)) return false;
      const auto size = static_cast<std::size_t>(r.pos() - start);
      if (size > kMaxProgressBytes) return false;
      if (!run.progress) run.progress.emplace();
      run.progress->assign(start, size);
      return true;
    }
    case Key::kState: {
      req.see(kHbState);
      if (!r.str(s)) return false;
      const auto st = parse_runner_state(s);
      if (!st || *st == RunnerState::kSuspect) return false;
      hb.state = *st;
      return true;
    }
    case Key::kSeq:
      req.see(kHbSeq);
      return r.uint(hb.seq);
    case Key::kTimeoutMs:
    case Key::kIntervalMs: {
      if (!r.uint(u)) return false;
      const bool timeout = key == Key::kTimeoutMs;
      req.see(timeout ? kHbTimeout : kHbInterval);
      (timeout ? hb.timeout_ms : hb.interval_ms) = u;
      return true;
    }
    case Key::kSentAtMs: {
      req.see(kHbSentAt);
      int64_t i = 0;
      if (!r.sint(i)) return false;
      hb.sent_at_ms = i;
      return true;
    }
    case Key::kOther:
      return r.value(false, 1);  // unknown keys are ignored
  }
  return false;
}

}  // namespace

namespace detail {

bool decode_heartbeat_direct(std::string_view topic, std::string_view payload, Heartbeat& out) {
  if (!check_topic_prefix(topic, payload)) return false;
  DirectReader r(payload);
  uint32_t n = 0;
  if (!r.map_header(n)) return false;
  Required req;
  for (uint32_t i = 0; i < n; ++i) {
    std::string_view key;
    if (!r.str(key) || !read_field(key_of(key), r, out, req)) return false;
  }
  return r.at_end() && finish_heartbeat(req, true, out) && check_topic_runner(topic, out);
}

}  // namespace detail

}  // namespace rmon::protocol
