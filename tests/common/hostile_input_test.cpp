// Hostile input for every decoder: truncations, wrong types, huge declared
// lengths, deep nesting, oversized frames, random bytes and mutations of valid
// frames. Decoders must never throw or crash, must reject with the documented
// reason, must not allocate for sizes a frame only declares, and whatever they
// accept must survive its own re-encoding.

#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rmon/protocol/codec.hpp"

// --- Allocation meter ---------------------------------------------------------
// Counts every heap block requested by the calling thread while armed. It sits
// at malloc level, not operator new: msgpack's zone takes its chunks straight
// from malloc, so an operator-new counter could never see the allocations this
// file is about. Sanitizer builds own malloc, so there the meter uses their
// allocation hooks; elsewhere it interposes glibc's malloc.
namespace alloc_meter {
thread_local bool armed = false;
thread_local std::size_t bytes = 0;
inline void note(std::size_t n) {
  if (armed) bytes += n;
}
}  // namespace alloc_meter

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define RMON_SANITIZER_MALLOC 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RMON_SANITIZER_MALLOC 1
#endif

#if defined(RMON_SANITIZER_MALLOC)
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*,
                                                                             std::size_t),
                                                         void (*free_hook)(const volatile void*));
namespace {
void on_malloc(const volatile void*, std::size_t size) { alloc_meter::note(size); }
void on_free(const volatile void*) {}
[[maybe_unused]] const bool kHooksInstalled =
    __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free) != 0;
}  // namespace
#define RMON_ALLOC_METER 1
#elif defined(__GLIBC__)
// Every replaced function forwards to glibc's own allocator, so blocks from
// functions left alone (memalign, ...) are still freed correctly.
extern "C" {
void* __libc_malloc(std::size_t size) noexcept;
void* __libc_calloc(std::size_t count, std::size_t size) noexcept;
void* __libc_realloc(void* p, std::size_t size) noexcept;
void __libc_free(void* p) noexcept;
void* malloc(std::size_t size) noexcept {
  alloc_meter::note(size);
  return __libc_malloc(size);
}
void* calloc(std::size_t count, std::size_t size) noexcept {
  alloc_meter::note(count * size);
  return __libc_calloc(count, size);
}
void* realloc(void* p, std::size_t size) noexcept {
  alloc_meter::note(size);
  return __libc_realloc(p, size);
}
void free(void* p) noexcept { __libc_free(p); }
}
#define RMON_ALLOC_METER 1
#endif

namespace rmon::protocol {
namespace {

using Bytes = std::string;
using Outcome = std::optional<Rejection>;  // nullopt: accepted

// Bytes allocated on this thread while `fn` runs.
template <class Fn>
std::size_t bytes_allocated_by(Fn&& fn) {
  alloc_meter::bytes = 0;
  alloc_meter::armed = true;
  fn();
  alloc_meter::armed = false;
  return alloc_meter::bytes;
}

#if !defined(RMON_ALLOC_METER)
#define SKIP_WITHOUT_ALLOC_METER() GTEST_SKIP() << "no allocation meter on this platform"
#else
#define SKIP_WITHOUT_ALLOC_METER() (void)0
#endif

// --- MessagePack building blocks ----------------------------------------------

Bytes bytes(std::initializer_list<int> values) {
  Bytes out;
  for (int v : values) out.push_back(static_cast<char>(v));
  return out;
}

template <class T>
Bytes mp(const T& v) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, v);
  return Bytes(buf.data(), buf.size());
}
Bytes mp_str(std::string_view s) { return mp(std::string(s)); }
const Bytes kNil = bytes({0xc0});

// A map whose values are pre-encoded bytes, in insertion order.
class Fields {
 public:
  Fields& set(std::string_view key, Bytes value) {
    for (auto& [k, v] : kv_) {
      if (k == key) {
        v = std::move(value);
        return *this;
      }
    }
    kv_.emplace_back(std::string(key), std::move(value));
    return *this;
  }
  Fields& merge(const Fields& other) {
    for (const auto& [k, v] : other.kv_) set(k, v);
    return *this;
  }
  Bytes build() const {
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> p(buf);
    p.pack_map(static_cast<uint32_t>(kv_.size()));
    for (const auto& [k, v] : kv_) {
      p.pack(k);
      buf.write(v.data(), v.size());
    }
    return Bytes(buf.data(), buf.size());
  }

 private:
  std::vector<std::pair<std::string, Bytes>> kv_;
};

Fields runner_fields() {
  return Fields()
      .set("runner_id", mp_str("r-1"))
      .set("task_id", mp_str("t-1"))
      .set("attempt", mp(2u))
      .set("pool", mp_str("gpu"))
      .set("pool_type", mp_str("docker"))
      .set("pid", mp(42u))
      .set("container_id", mp_str("c0ffee"))
      .set("job_name", mp_str("job-1"))
      .set("progress", mp(std::map<std::string, int>{{"done", 3}, {"total", 10}}));
}
Fields heartbeat_fields() {
  return Fields()
      .set("v", mp(1u))
      .merge(runner_fields())
      .set("state", mp_str("running"))
      .set("seq", mp(7u))
      .set("timeout_ms", mp(30000u))
      .set("interval_ms", mp(1000u))
      .set("sent_at_ms", mp(-5));
}
Fields event_fields() {
  return Fields()
      .set("v", mp(1u))
      .set("type", mp_str("runner_timeout"))
      .set("event_id", mp_str("mon-1:42"))
      .merge(runner_fields())
      .set("last_seq", mp(9u))
      .set("last_heartbeat_ms", mp(1'700'000'000'000))
      .set("detected_at_ms", mp(1'700'000'060'000))
      .set("timeout_ms", mp(60000u))
      .set("delivery", mp(2u));
}
Fields ack_fields() {
  return Fields()
      .set("v", mp(1u))
      .set("type", mp_str("ack"))
      .set("group", mp_str("task-queue"))
      .set("event_id", mp_str("mon-1:42"));
}
Fields request_fields() {
  return Fields()
      .set("v", mp(1u))
      .set("op", mp_str("set_state"))
      .set("runner_id", mp_str("r-1"))
      .set("state", mp_str("failed"))
      .set("pool", mp_str("gpu"))
      .set("limit", mp(10u));
}
Fields add_runner_fields() {  // the `runner` of an `add`: a heartbeat without v and seq
  return Fields().merge(runner_fields()).set("state", mp_str("running"));
}
Fields view_fields() {
  return Fields()
      .merge(runner_fields())
      .set("state", mp_str("suspect"))
      .set("last_seq", mp(9u))
      .set("last_heartbeat_ms", mp(1'700'000'000'000))
      .set("silence_ms", mp(40000u))
      .set("timeout_ms", mp(60000u))
      .set("added_at_ms", mp(1'600'000'000'000))
      .set("interval_ms", mp(1000u));
}
Fields reply_fields() {
  return Fields()
      .set("ok", mp(true))
      .set("v", mp(1u))
      .set("error", mp_str(""))
      .set("detail", mp_str(""))
      .set("version", mp(1u))
      .set("count", mp(3u))
      .set("removed", mp(false))
      .set("runner", view_fields().build())
      .set("runners", bytes({0x91}) + view_fields().build())
      .set("heartbeats", mp(12u));
}

// --- Decoders under test, each with its re-encoding property -------------------

struct Verdict {
  Outcome rejection;    // nullopt: accepted
  std::string problem;  // non-empty: a property was violated
};

bool same(const Rejection& a, const Rejection& b) {
  return a.reason == b.reason && a.field == b.field;
}

// Whatever a decoder accepts, re-encoded, must be accepted again and be a
// fixed point of encode(decode(.)).
template <class T, class Decode, class Encode>
Verdict accepted_reencodes(const Result<T>& first, Decode decode, Encode encode) {
  if (!first.ok()) return {first.error(), {}};
  const Bytes once = encode(first.value());
  auto second = decode(once);
  if (!second.ok()) return {{}, "own re-encoding rejected: " + second.error().to_string()};
  if (encode(second.value()) != once) return {{}, "re-encoding is not a fixed point"};
  return {};
}

struct Decoder {
  const char* name;
  std::function<Verdict(std::string_view)> run;
};

const std::vector<Decoder>& all_decoders() {
  static const std::vector<Decoder> decoders = {
      {"heartbeat",
       [](std::string_view f) {
         auto first = decode_heartbeat("hb/r-1", f);
         static Heartbeat reused;
         const Status into = decode_heartbeat_into("hb/r-1", f, reused);
         if (into.ok() != first.ok()) return Verdict{{}, "decode_heartbeat_into disagrees"};
         if (!first.ok() && !same(into.error(), first.error())) {
           return Verdict{{}, "decode_heartbeat_into gives another reason"};
         }
         if (first.ok() && !(reused == first.value())) {
           return Verdict{{}, "reused struct kept stale fields"};
         }
         return accepted_reencodes(
             first, [](const Bytes& b) { return decode_heartbeat("hb/r-1", b); },
             [](const Heartbeat& hb) { return encode_heartbeat(hb); });
       }},
      {"timeout_event",
       [](std::string_view f) {
         return accepted_reencodes(
             decode_timeout_event(f), [](const Bytes& b) { return decode_timeout_event(b); },
             [](const TimeoutEvent& ev) { return encode_timeout_event(ev); });
       }},
      {"ack",
       [](std::string_view f) {
         return accepted_reencodes(
             decode_ack(f), [](const Bytes& b) { return decode_ack(b); },
             [](const Ack& a) { return encode_ack(a); });
       }},
      {"control_request",
       [](std::string_view f) {
         return accepted_reencodes(
             decode_control_request(f), [](const Bytes& b) { return decode_control_request(b); },
             [](const ControlRequest& r) { return encode_control_request(r); });
       }},
      {"control_reply",
       [](std::string_view f) {
         return accepted_reencodes(
             decode_control_reply(f), [](const Bytes& b) { return decode_control_reply(b); },
             [](const ControlReply& r) { return encode_control_reply(r); });
       }},
      {"progress",
       [](std::string_view f) {
         const Status s = validate_progress(f);
         return s.ok() ? Verdict{} : Verdict{s.error(), {}};
       }},
  };
  return decoders;
}

const Decoder& decoder(std::string_view name) {
  for (const Decoder& d : all_decoders()) {
    if (name == d.name) return d;
  }
  std::abort();  // a typo in this file
}

// Runs one decoder and turns a thrown exception into a test failure.
Verdict run_guarded(const Decoder& d, std::string_view frame) {
  try {
    return d.run(frame);
  } catch (const std::exception& e) {
    return {{}, std::string("threw: ") + e.what()};
  } catch (...) {
    return {{}, "threw a non-exception"};
  }
}

std::string hex(std::string_view b, std::size_t max = 48) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < b.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(b[i]);
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  if (b.size() > max) out += "...(" + std::to_string(b.size()) + " bytes)";
  return out;
}

std::string reason_of(const Outcome& o) {
  return o ? std::string(reason_name(o->reason)) : "accepted";
}
bool known_reason(const Rejection& r) { return static_cast<int>(r.reason) < kReasonCount; }

// A valid frame of each kind, with the decoder that accepts it.
struct Sample {
  const char* decoder;
  Bytes frame;
};

std::vector<Sample> valid_samples() {
  Heartbeat hb;
  hb.runner.runner_id = "r-1";
  hb.runner.task_id = "task-42";
  hb.runner.attempt = 3;
  hb.runner.pool = "gpu";
  hb.runner.pool_type = PoolType::kKubernetes;
  hb.runner.job_name = "job-abc";
  hb.runner.progress = mp(std::map<std::string, std::vector<int>>{{"steps", {1, 2}}});
  hb.seq = 99;
  hb.timeout_ms = 5000;
  hb.sent_at_ms = 1'700'000'000'000;

  TimeoutEvent ev;
  ev.event_id = "mon-1:7";
  ev.runner = hb.runner;
  ev.last_seq = 99;
  ev.last_heartbeat_ms = 1'700'000'000'000;
  ev.detected_at_ms = 1'700'000'005'000;
  ev.timeout_ms = 5000;

  ControlRequest add;
  add.op = Op::kAdd;
  add.runner = hb;
  ControlRequest list;
  list.op = Op::kList;
  list.state = RunnerState::kSuspect;
  list.pool = "gpu";
  list.limit = 50;

  RunnerView view;
  view.runner = hb.runner;
  view.state = RunnerState::kSuspect;
  view.last_seq = 99;
  view.timeout_ms = 5000;
  ControlReply listed;
  listed.runners = std::vector<RunnerView>{view, view};
  ControlReply stats;
  stats.stats = {{"heartbeats", 10}, {"rejected", 2}, {"timeouts", 1}, {"runners", 4}};

  return {
      {"heartbeat", encode_heartbeat(hb)},
      {"heartbeat", heartbeat_fields().build()},
      {"timeout_event", encode_timeout_event(ev)},
      {"timeout_event", event_fields().build()},
      {"ack", encode_ack({"pool-manager", "mon-1:7"})},
      {"ack", ack_fields().set("unknown", mp(std::vector<int>{1, 2})).build()},
      {"control_request", encode_control_request(add)},
      {"control_request", encode_control_request(list)},
      {"control_request", request_fields().build()},
      {"control_reply", encode_control_reply(listed)},
      {"control_reply", encode_control_reply(stats)},
      {"control_reply", encode_control_reply(ControlReply::failure("not_found", "no r-9"))},
      {"control_reply", reply_fields().build()},
      {"progress", *hb.runner.progress},
      {"progress", mp(std::vector<std::string>{"a", "b"})},
  };
}

TEST(HostileInput, EveryValidSampleIsAccepted) {
  for (const Sample& s : valid_samples()) {
    const Verdict v = run_guarded(decoder(s.decoder), s.frame);
    EXPECT_FALSE(v.rejection) << s.decoder << " " << v.rejection->to_string() << " "
                              << hex(s.frame);
    EXPECT_EQ(v.problem, "") << s.decoder;
  }
}

// --- Truncation ---------------------------------------------------------------

TEST(HostileInput, EveryTruncationOfAValidFrameIsRejected) {
  for (const Sample& s : valid_samples()) {
    for (std::size_t len = 0; len < s.frame.size(); ++len) {
      const Verdict v = run_guarded(decoder(s.decoder), std::string_view(s.frame).substr(0, len));
      ASSERT_EQ(v.problem, "") << s.decoder << " prefix " << len;
      ASSERT_TRUE(v.rejection) << s.decoder << " accepted a prefix of " << len;
      EXPECT_TRUE(v.rejection->reason == Reason::kMalformed)
          << s.decoder << " prefix " << len << ": " << v.rejection->to_string();
    }
  }
}

// A truncated frame was once reported as too_large whenever the cut fell
// before the root map had as many bytes as it declares pairs. A cut frame is
// not over any limit: the metric label must be malformed.
TEST(HostileInput, EveryTruncationOfAValidFrameIsMalformedNotTooLarge) {
  for (const Sample& s : valid_samples()) {
    std::vector<std::size_t> too_large;  // prefix lengths reported as too_large
    for (std::size_t len = 0; len < s.frame.size(); ++len) {
      const Verdict v = run_guarded(decoder(s.decoder), std::string_view(s.frame).substr(0, len));
      ASSERT_TRUE(v.rejection);
      if (reason_of(v.rejection) != "malformed") too_large.push_back(len);
    }
    EXPECT_TRUE(too_large.empty())
        << s.decoder << ": " << too_large.size() << " prefixes (lengths " << too_large.front()
        << " to " << too_large.back() << ") of " << hex(s.frame) << " are not malformed";
  }
}

// --- Wrong types --------------------------------------------------------------

// kRunners: the `runners` of a reply, an array of runner maps (`list`) or an
// unsigned counter (`stats`).
enum class Kind { kUint, kInt, kStr, kBool, kMap, kRunners };

// Values of every MessagePack family that `kind` does not accept.
std::vector<Bytes> wrong_values(Kind kind) {
  std::vector<Bytes> out = {kNil, mp(1.5), mp(1.5f), bytes({0xc4, 0x01, 'a'}),
                            bytes({0xd4, 0x01, 0x00})};
  if (kind != Kind::kUint && kind != Kind::kInt && kind != Kind::kRunners) out.push_back(mp(7u));
  if (kind != Kind::kInt) out.push_back(mp(-1));
  if (kind != Kind::kStr) out.push_back(mp_str("7"));
  if (kind != Kind::kBool) out.push_back(mp(true));
  if (kind != Kind::kRunners) out.push_back(bytes({0x90}));
  if (kind != Kind::kMap) out.push_back(bytes({0x80}));
  return out;
}

struct Schema {
  const char* name;
  Fields valid;
  std::vector<std::pair<const char*, Kind>> typed;
  std::function<Verdict(const Bytes&)> decode;  // decodes a map of `valid`'s shape
};

std::vector<std::pair<const char*, Kind>> runner_kinds() {
  return {{"runner_id", Kind::kStr},    {"task_id", Kind::kStr},   {"attempt", Kind::kUint},
          {"pool", Kind::kStr},         {"pool_type", Kind::kStr}, {"pid", Kind::kUint},
          {"container_id", Kind::kStr}, {"job_name", Kind::kStr}};
}
template <class... More>
std::vector<std::pair<const char*, Kind>> with_runner(More... more) {
  auto out = runner_kinds();
  (out.emplace_back(more), ...);
  return out;
}
using K = std::pair<const char*, Kind>;

std::vector<Schema> schemas() {
  const auto frame_decoder = [](const char* name) {
    return [name](const Bytes& b) { return run_guarded(decoder(name), b); };
  };
  return {
      {"heartbeat", heartbeat_fields(),
       with_runner(K{"v", Kind::kUint}, K{"state", Kind::kStr}, K{"seq", Kind::kUint},
                   K{"timeout_ms", Kind::kUint}, K{"interval_ms", Kind::kUint},
                   K{"sent_at_ms", Kind::kInt}),
       frame_decoder("heartbeat")},
      {"timeout_event", event_fields(),
       with_runner(K{"v", Kind::kUint}, K{"type", Kind::kStr}, K{"event_id", Kind::kStr},
                   K{"last_seq", Kind::kUint}, K{"last_heartbeat_ms", Kind::kInt},
                   K{"detected_at_ms", Kind::kInt}, K{"timeout_ms", Kind::kUint},
                   K{"delivery", Kind::kUint}),
       frame_decoder("timeout_event")},
      {"ack",
       ack_fields(),
       {{"v", Kind::kUint}, {"type", Kind::kStr}, {"group", Kind::kStr}, {"event_id", Kind::kStr}},
       frame_decoder("ack")},
      {"control_request",
       request_fields(),
       {{"v", Kind::kUint},
        {"op", Kind::kStr},
        {"runner_id", Kind::kStr},
        {"state", Kind::kStr},
        {"pool", Kind::kStr},
        {"limit", Kind::kUint},
        {"runner", Kind::kMap}},
       frame_decoder("control_request")},
      {"control_request.runner", add_runner_fields(),
       with_runner(K{"state", Kind::kStr}, K{"timeout_ms", Kind::kUint},
                   K{"interval_ms", Kind::kUint}, K{"sent_at_ms", Kind::kInt}),
       [](const Bytes& runner) {
         const Bytes req =
             Fields().set("v", mp(1u)).set("op", mp_str("add")).set("runner", runner).build();
         return run_guarded(decoder("control_request"), req);
       }},
      {"control_reply",
       reply_fields(),
       {{"ok", Kind::kBool},
        {"v", Kind::kUint},
        {"error", Kind::kStr},
        {"detail", Kind::kStr},
        {"version", Kind::kUint},
        {"count", Kind::kUint},
        {"removed", Kind::kBool},
        {"runner", Kind::kMap},
        {"runners", Kind::kRunners}},
       frame_decoder("control_reply")},
      {"control_reply.runner", view_fields(),
       with_runner(K{"state", Kind::kStr}, K{"last_seq", Kind::kUint},
                   K{"last_heartbeat_ms", Kind::kInt}, K{"silence_ms", Kind::kUint},
                   K{"timeout_ms", Kind::kUint}, K{"added_at_ms", Kind::kInt},
                   K{"interval_ms", Kind::kUint}),
       [](const Bytes& view) {
         const Bytes reply = Fields().set("ok", mp(true)).set("runner", view).build();
         return run_guarded(decoder("control_reply"), reply);
       }},
  };
}

TEST(HostileInput, WrongTypesAreRejectedAndNameTheKey) {
  for (const Schema& schema : schemas()) {
    const Verdict valid = schema.decode(schema.valid.build());
    ASSERT_FALSE(valid.rejection) << schema.name << ": " << valid.rejection->to_string();
    for (const auto& [key, kind] : schema.typed) {
      for (const Bytes& wrong : wrong_values(kind)) {
        Fields f = schema.valid;
        const Verdict v = schema.decode(f.set(key, wrong).build());
        ASSERT_EQ(v.problem, "") << schema.name << "." << key;
        ASSERT_TRUE(v.rejection) << schema.name << "." << key << " accepted " << hex(wrong);
        EXPECT_EQ(reason_of(v.rejection), "wrong_type")
            << schema.name << "." << key << "=" << hex(wrong);
        EXPECT_EQ(v.rejection->field, key) << schema.name << "=" << hex(wrong);
      }
    }
  }
}

TEST(HostileInput, RunnersArrayWithANonMapElementIsAWrongType) {
  for (const Bytes& element : {kNil, mp(1u), mp_str("r-1"), bytes({0x90})}) {
    const Bytes reply = Fields()
                            .set("ok", mp(true))
                            .set("runners", bytes({0x92}) + view_fields().build() + element)
                            .build();
    const Verdict v = run_guarded(decoder("control_reply"), reply);
    ASSERT_TRUE(v.rejection) << hex(element);
    EXPECT_EQ(reason_of(v.rejection), "wrong_type");
    EXPECT_EQ(v.rejection->field, "runners");
  }
}

TEST(HostileInput, NonMapRootsAndNonStringKeysAreMalformed) {
  const std::vector<Bytes> frames = {
      kNil,
      mp(true),
      mp(1u),
      mp(-1),
      mp(2.5),
      mp_str("hello"),
      bytes({0xc4, 0x01, 'x'}),
      bytes({0xd4, 0x01, 0x00}),
      mp(std::vector<int>{1, 2}),
      bytes({0x81, 0x01, 0x02}),             // {1: 2}
      bytes({0x81, 0xc4, 0x01, 'v', 0x01}),  // {bin "v": 1}
      bytes({0x81, 0x90, 0x01}),             // {[]: 1}
      bytes({0xc1}),                         // the one byte MessagePack never uses
      bytes({0x80, 0x80}),                   // trailing bytes after a map
  };
  for (const Decoder& d : all_decoders()) {
    if (d.name == std::string_view("progress")) continue;  // any single value is progress
    for (const Bytes& f : frames) {
      const Verdict v = run_guarded(d, f);
      ASSERT_EQ(v.problem, "") << d.name;
      ASSERT_TRUE(v.rejection) << d.name << " accepted " << hex(f);
      EXPECT_EQ(reason_of(v.rejection), "malformed") << d.name << " " << hex(f);
    }
  }
  EXPECT_EQ(reason_of(run_guarded(decoder("progress"), bytes({0xc1})).rejection), "malformed");
  EXPECT_EQ(reason_of(run_guarded(decoder("progress"), bytes({0x80, 0x80})).rejection),
            "malformed");
}

TEST(HostileInput, InvalidUtf8InIdentifiersIsABadValue) {
  for (const char* bad : {"\xc0\x80",          // overlong NUL
                          "\xed\xa0\x80",      // surrogate
                          "\xf4\x90\x80\x80",  // past U+10FFFF
                          "r\xe2\x82",         // cut sequence
                          "\x80", "\xff"}) {
    const Verdict v =
        run_guarded(decoder("heartbeat"), heartbeat_fields().set("task_id", mp_str(bad)).build());
    ASSERT_TRUE(v.rejection) << hex(bad);
    EXPECT_EQ(reason_of(v.rejection), "bad_value") << hex(bad);
    EXPECT_EQ(v.rejection->field, "task_id");
  }
}

// --- Huge declared lengths ----------------------------------------------------

struct HugeHeader {
  const char* what;
  Bytes header;
};
std::vector<HugeHeader> huge_headers() {
  return {
      {"array16", bytes({0xdc, 0xff, 0xff})},
      {"array32", bytes({0xdd, 0xff, 0xff, 0xff, 0xff})},
      {"map16", bytes({0xde, 0xff, 0xff})},
      {"map32", bytes({0xdf, 0xff, 0xff, 0xff, 0xff})},
      {"str16", bytes({0xda, 0xff, 0xff})},
      {"str32", bytes({0xdb, 0xff, 0xff, 0xff, 0xff})},
      {"bin16", bytes({0xc5, 0xff, 0xff})},
      {"bin32", bytes({0xc6, 0xff, 0xff, 0xff, 0xff})},
      {"ext16", bytes({0xc8, 0xff, 0xff, 0x01})},
      {"ext32", bytes({0xc9, 0xff, 0xff, 0xff, 0xff, 0x01})},
      {"ext32 without type", bytes({0xc9, 0xff, 0xff, 0xff, 0xff})},
  };
}

// Frames that embed `header` where each decoder would descend into it.
std::vector<Bytes> placements(const Bytes& header) {
  const Bytes tail(16, '\0');
  return {
      header,
      header + tail,
      heartbeat_fields().set("progress", header + tail).build(),
      heartbeat_fields().set("unknown", header).build(),
      bytes({0x81}) + header + tail,  // as a key
      event_fields().set("progress", header).build(),
      ack_fields().set("event_id", header + tail).build(),
      Fields().set("v", mp(1u)).set("op", mp_str("add")).set("runner", header).build(),
      Fields().set("ok", mp(true)).set("runners", header + tail).build(),
      bytes({0x91, 0x91, 0x91}) + header + tail,  // nested in arrays
  };
}

TEST(HostileInput, AllocationMeterSeesTheDecodersScratchZone) {
  SKIP_WITHOUT_ALLOC_METER();
  // A legitimate 4000-element array needs 4000 unpacked objects: if the meter
  // missed this, every "does not allocate" assertion below would be vacuous.
  const Bytes big = bytes({0xdc, 0x0f, 0xa0}) + Bytes(4000, '\0');
  Status s;
  const std::size_t used = bytes_allocated_by([&] { s = validate_progress(big); });
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_GE(used, 4000 * sizeof(msgpack::object));
}

TEST(HostileInput, HugeDeclaredLengthsAreRejectedWithoutAllocating) {
  SKIP_WITHOUT_ALLOC_METER();
  constexpr std::size_t kBudget = 4096;  // far below any declared size here
  for (const Decoder& d : all_decoders()) (void)run_guarded(d, valid_samples()[0].frame);  // warm
  for (const HugeHeader& h : huge_headers()) {
    for (const Bytes& frame : placements(h.header)) {
      for (const Decoder& d : all_decoders()) {
        Verdict v;
        const std::size_t used = bytes_allocated_by([&] { v = run_guarded(d, frame); });
        ASSERT_EQ(v.problem, "") << d.name << " " << h.what;
        ASSERT_TRUE(v.rejection) << d.name << " accepted " << h.what << ": " << hex(frame);
        EXPECT_TRUE(v.rejection->reason == Reason::kMalformed ||
                    v.rejection->reason == Reason::kTooLarge)
            << d.name << " " << h.what << ": " << v.rejection->to_string();
        EXPECT_LT(used, kBudget) << d.name << " " << h.what << ": " << hex(frame);
      }
    }
  }
}

TEST(HostileInput, HugeDeclaredArrayLengthIsRejectedWithoutAllocating) {
  SKIP_WITHOUT_ALLOC_METER();
  const Bytes frame = bytes({0xdd, 0xff, 0xff, 0xff, 0xff}) + Bytes(64, '\0');
  (void)validate_progress(mp(1u));  // the scratch zone's first chunk is not the decoder's doing
  Status s;
  const std::size_t used = bytes_allocated_by([&] { s = validate_progress(frame); });
  ASSERT_FALSE(s.ok());
  // A count the frame cannot hold is a lie or a cut, not a size over a limit.
  EXPECT_EQ(reason_name(s.error().reason), "malformed");
  EXPECT_LT(used, 1024u);
}

// Each container may declare up to frame-size elements, and the zone reserves
// count * sizeof(object) as soon as a header is read. Nesting kMaxDepth such
// headers once made an 8 KiB heartbeat allocate ~8 MiB. The decoders now check
// the total of declared elements against the frame first.
TEST(HostileInput, NestedNearLimitCountsDoNotMultiplyAllocation) {
  SKIP_WITHOUT_ALLOC_METER();
  for (const Decoder& d : all_decoders()) {
    const std::size_t n = d.name == std::string_view("heartbeat")  ? kMaxHeartbeatFrame
                          : d.name == std::string_view("progress") ? kMaxProgressBytes
                                                                   : kMaxFrame;
    Bytes frame;
    const auto count = static_cast<uint32_t>(n - 8);  // within the frame-size guard
    while (frame.size() + 5 <= n) {
      frame += bytes({0xdd, static_cast<int>(count >> 24), static_cast<int>((count >> 16) & 0xff),
                      static_cast<int>((count >> 8) & 0xff), static_cast<int>(count & 0xff)});
    }
    Verdict v;
    const std::size_t used = bytes_allocated_by([&] { v = run_guarded(d, frame); });
    ASSERT_TRUE(v.rejection) << d.name;
    EXPECT_LE(used, 32 * n) << d.name << ": " << used << " bytes for a " << n << "-byte frame";
  }
}

// decode_control_reply once resized `runners` to the declared count (312 bytes
// per RunnerView) before validating any element: ~330 bytes of memory per byte
// received. Now only the object tree is built first: sizeof(msgpack::object)
// (24 bytes) per element, in zone chunks that grow by doubling, so at most
// ~48 bytes per byte.
TEST(HostileInput, ControlReplyRunnersAreValidatedBeforeBeingAllocated) {
  SKIP_WITHOUT_ALLOC_METER();
  constexpr uint32_t kCount = 60000;
  const Bytes frame = Fields()
                          .set("ok", mp(true))
                          .set("runners", bytes({0xdc, kCount >> 8, kCount & 0xff}) +
                                              Bytes(kCount, static_cast<char>(0x80)))
                          .build();
  Verdict v;
  const std::size_t used =
      bytes_allocated_by([&] { v = run_guarded(decoder("control_reply"), frame); });
  ASSERT_TRUE(v.rejection);
  EXPECT_EQ(reason_of(v.rejection), "missing_field");
  EXPECT_LE(used, 48 * frame.size()) << used << " bytes for a " << frame.size() << "-byte frame";
}

// --- Deep nesting -------------------------------------------------------------

Bytes nested_arrays(std::size_t depth) { return Bytes(depth, static_cast<char>(0x91)) + kNil; }
Bytes nested_maps(std::size_t depth) {
  Bytes out;
  for (std::size_t i = 0; i < depth; ++i) out += bytes({0x81, 0xa1, 'a'});
  return out + kNil;
}

TEST(HostileInput, ThousandNestedArraysOrMapsAreTooLargeWhereverTheyAppear) {
  for (const Bytes& deep : {nested_arrays(1000), nested_maps(1000)}) {
    const std::vector<std::pair<const char*, Bytes>> cases = {
        {"heartbeat", heartbeat_fields().set("progress", deep).build()},
        {"heartbeat", heartbeat_fields().set("unknown", deep).build()},
        {"timeout_event", event_fields().set("progress", deep).build()},
        {"ack", ack_fields().set("unknown", deep).build()},
        {"control_request", Fields()
                                .set("v", mp(1u))
                                .set("op", mp_str("add"))
                                .set("runner", add_runner_fields().set("progress", deep).build())
                                .build()},
        {"control_reply",
         Fields().set("ok", mp(true)).set("runners", bytes({0x91}) + deep).build()},
        {"progress", deep},
    };
    for (const auto& [name, frame] : cases) {
      const Verdict v = run_guarded(decoder(name), frame);
      ASSERT_EQ(v.problem, "") << name;
      ASSERT_TRUE(v.rejection) << name;
      EXPECT_EQ(reason_of(v.rejection), "too_large") << name;
    }
  }
}

TEST(HostileInput, NestingUpToTheDepthLimitIsAcceptedAndOneMoreIsTooLarge) {
  EXPECT_TRUE(validate_progress(nested_arrays(kMaxDepth)).ok());
  EXPECT_TRUE(validate_progress(nested_maps(kMaxDepth)).ok());
  const Status arrays = validate_progress(nested_arrays(kMaxDepth + 1));
  ASSERT_FALSE(arrays.ok());
  EXPECT_EQ(reason_name(arrays.error().reason), "too_large");
  const Status maps = validate_progress(nested_maps(kMaxDepth + 1));
  ASSERT_FALSE(maps.ok());
  EXPECT_EQ(reason_name(maps.error().reason), "too_large");
}

// --- Size limits --------------------------------------------------------------

// `fields` padded with an unknown key so that the whole map is `size` bytes.
Bytes padded_to(Fields fields, std::size_t size) {
  // An empty pad is a 1-byte fixstr; a pad of 256 to 65535 bytes is a str16,
  // whose header is 2 bytes longer.
  const std::size_t base = fields.set("pad", mp_str("")).build().size();
  return fields.set("pad", mp_str(Bytes(size - base - 2, 'p'))).build();
}

TEST(HostileInput, FramesExactlyAtTheSizeLimitAreAccepted) {
  const Bytes hb = padded_to(heartbeat_fields(), kMaxHeartbeatFrame);
  ASSERT_EQ(hb.size(), kMaxHeartbeatFrame);
  EXPECT_FALSE(run_guarded(decoder("heartbeat"), hb).rejection);
  const Bytes ack = padded_to(ack_fields(), kMaxFrame);
  ASSERT_EQ(ack.size(), kMaxFrame);
  EXPECT_FALSE(run_guarded(decoder("ack"), ack).rejection);
}

TEST(HostileInput, FramesOverTheSizeLimitAreTooLargeAndNeverParsed) {
  SKIP_WITHOUT_ALLOC_METER();
  // A nesting bomb one byte over each limit: if it were parsed at all the
  // meter would see the zone reserve megabytes.
  const auto bomb = [](std::size_t n) {
    const auto count = static_cast<int>(n / 2);  // within the codec's per-container guard
    Bytes out;
    while (out.size() < n) out += bytes({0xdd, 0, 0, count >> 8, count & 0xff});
    out.resize(n, '\0');
    return out;
  };
  const Bytes hb = bomb(kMaxHeartbeatFrame + 1);
  const Bytes frame = bomb(kMaxFrame + 1);
  const Bytes progress = bomb(kMaxProgressBytes + 1);
  const std::vector<std::pair<const char*, const Bytes*>> cases = {{"heartbeat", &hb},
                                                                   {"timeout_event", &frame},
                                                                   {"ack", &frame},
                                                                   {"control_request", &frame},
                                                                   {"progress", &progress}};
  std::vector<std::pair<const char*, Outcome>> outcomes;
  outcomes.reserve(cases.size());
  const std::size_t used = bytes_allocated_by([&] {
    for (const auto& [name, f] : cases) {
      outcomes.emplace_back(name, run_guarded(decoder(name), *f).rejection);
    }
  });
  for (const auto& [name, o] : outcomes) {
    ASSERT_TRUE(o) << name;
    EXPECT_EQ(reason_of(o), "too_large") << name;
  }
  EXPECT_LT(used, 4096u);

  auto reply = decode_control_reply(frame, kMaxFrame);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reason_name(reply.error().reason), "too_large");
  const Bytes over_default(kMaxReplyFrame + 1, static_cast<char>(0x80));
  reply = decode_control_reply(over_default);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reason_name(reply.error().reason), "too_large");
}

TEST(HostileInput, ProgressThatReencodesOverItsLimitIsTooLarge) {
  const Bytes big = mp(std::vector<std::string>{Bytes(2100, 'a'), Bytes(2100, 'b')});
  const Verdict v =
      run_guarded(decoder("heartbeat"), heartbeat_fields().set("progress", big).build());
  ASSERT_TRUE(v.rejection);
  EXPECT_EQ(reason_of(v.rejection), "too_large");
  EXPECT_EQ(v.rejection->field, "progress");
}

TEST(HostileInput, TopicsOverTheLimitOrWithoutThePrefixAreRejected) {
  const Bytes payload = heartbeat_fields().build();
  auto d = decode_heartbeat("hb/" + Bytes(1 << 20, 'r'), payload);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(reason_name(d.error().reason), "too_large");
  EXPECT_EQ(d.error().field, "topic");
  for (const Bytes& topic : {Bytes("hb"), Bytes("hb/r-1\0", 7), Bytes("\0hb/r-1", 7), Bytes()}) {
    d = decode_heartbeat(topic, payload);
    ASSERT_FALSE(d.ok()) << hex(topic);
    EXPECT_EQ(reason_name(d.error().reason), "topic_mismatch") << hex(topic);
  }
}

// --- Random bytes and mutations -----------------------------------------------

class Mutator {
 public:
  explicit Mutator(uint32_t seed) : rng_(seed) {}

  Bytes random_frame() {
    Bytes out(pick(pick(4) == 0 ? 2048 : 48), '\0');
    for (char& c : out) c = random_byte();
    // Half of them start like a map so decoders get past the root check.
    if (!out.empty() && pick(2) == 0) out[0] = static_cast<char>(0x80 | pick(16));
    return out;
  }

  Bytes mutate(Bytes f) {
    const std::size_t ops = 1 + pick(4);
    for (std::size_t i = 0; i < ops; ++i) mutate_once(f);
    return f;
  }

 private:
  std::size_t pick(std::size_t n) {
    return n == 0 ? 0 : std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_);
  }
  char random_byte() { return static_cast<char>(pick(256)); }
  char interesting_byte() {
    static constexpr unsigned char kBytes[] = {0x00, 0x01, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf,
                                               0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc6, 0xc7, 0xc9, 0xca,
                                               0xcb, 0xcc, 0xcf, 0xd0, 0xd3, 0xd4, 0xd8, 0xd9, 0xdb,
                                               0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff};
    return static_cast<char>(kBytes[pick(sizeof kBytes)]);
  }

  void mutate_once(Bytes& f) {
    const std::size_t at = pick(f.size() + 1);
    switch (pick(9)) {
      case 0:
        if (at < f.size()) f[at] = static_cast<char>(f[at] ^ (1 << pick(8)));
        break;
      case 1:
        if (at < f.size()) f[at] = random_byte();
        break;
      case 2:
        if (at < f.size()) f[at] = interesting_byte();
        break;
      case 3:
        f.insert(at, 1, pick(2) ? interesting_byte() : random_byte());
        break;
      case 4:
        f.erase(at, 1 + pick(4));
        break;
      case 5:
        f.resize(at);
        break;
      case 6:  // a length header that claims far more than the frame holds
        f.insert(at, pick(2) ? bytes({0xdd, 0xff, 0xff, 0xff, 0xff})
                             : bytes({0xdf, 0x00, 0x00, 0xff, 0xff}));
        break;
      case 7:
        if (!f.empty()) {  // copy a slice elsewhere
          const std::size_t from = pick(f.size());
          const Bytes slice = f.substr(from, 1 + pick(16));
          f.insert(pick(f.size() + 1), slice);
        }
        break;
      default:  // boundary values over a 1, 2 or 4-byte field
        for (std::size_t k = 0, n = std::size_t{1} << pick(3); k < n && at + k < f.size(); ++k) {
          f[at + k] = pick(2) ? '\xff' : '\0';
        }
        break;
    }
  }

  std::mt19937 rng_;
};

// Feeds `frame` to every decoder; returns how many accepted it.
int check_everywhere(std::string_view frame, const char* origin) {
  int accepted = 0;
  for (const Decoder& d : all_decoders()) {
    const Verdict v = run_guarded(d, frame);
    EXPECT_EQ(v.problem, "") << d.name << " on " << origin << ": " << hex(frame, 4096);
    if (v.rejection) {
      EXPECT_TRUE(known_reason(*v.rejection)) << d.name << ": " << hex(frame);
      EXPECT_FALSE(reason_name(v.rejection->reason).empty());
    } else {
      ++accepted;
    }
  }
  return accepted;
}

TEST(HostileInput, RandomBytesNeverThrowAndAreRejectedWithAKnownReason) {
  Mutator m(20240601);
  int accepted = 0;
  for (int i = 0; i < 20000 && !::testing::Test::HasFailure(); ++i) {
    accepted += check_everywhere(m.random_frame(), "random bytes");
  }
  EXPECT_GT(accepted, 0);  // validate_progress takes any single value
}

TEST(HostileInput, MutatedValidFramesNeverThrowAndWhatIsAcceptedReencodesStably) {
  Mutator m(7);
  const std::vector<Sample> samples = valid_samples();
  int accepted = 0;
  int accepted_messages = 0;
  for (int round = 0; round < 1500 && !::testing::Test::HasFailure(); ++round) {
    for (const Sample& s : samples) {
      const Bytes mutant = m.mutate(s.frame);
      accepted += check_everywhere(mutant, s.decoder);
      const Verdict own = run_guarded(decoder(s.decoder), mutant);
      if (!own.rejection && s.decoder != std::string_view("progress")) ++accepted_messages;
    }
  }
  // Some mutations land in values and keys the decoders tolerate: the
  // re-encoding property above was exercised, not vacuous.
  EXPECT_GT(accepted_messages, 100);
  EXPECT_GT(accepted, accepted_messages);
}

}  // namespace
}  // namespace rmon::protocol
