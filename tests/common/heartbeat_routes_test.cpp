// The heartbeat decoder's three routes (direct, events, generic) must reach
// the same verdict on every input; the direct one must take what runners send.

#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <random>
#include <string>
#include <vector>

#include "codec_test_support.hpp"

namespace rmon::protocol::codec_testing {
namespace {

// decode_heartbeat_into takes the direct route, else the event route; both
// must agree with the generic decoder on every input, valid or not: same
// verdict, reason, field and value. The direct route may decline anything,
// but what it accepts must be exactly what the generic decoder accepts.
// Returns whether the direct route accepted.
bool expect_same_verdict(const std::string& topic, const std::string& payload) {
  Heartbeat direct, events, generic, into;
  const bool d = detail::decode_heartbeat_direct(topic, payload, direct);
  const Status e = detail::decode_heartbeat_events(topic, payload, events);
  const Status g = detail::decode_heartbeat_generic(topic, payload, generic);
  const Status i = decode_heartbeat_into(topic, payload, into);
  EXPECT_EQ(e.ok(), g.ok()) << testing::PrintToString(payload);
  EXPECT_EQ(i.ok(), g.ok()) << testing::PrintToString(payload);
  if (d) {
    EXPECT_TRUE(g.ok()) << "direct accepted what generic rejects: "
                        << testing::PrintToString(payload);
    EXPECT_EQ(direct, generic);
  }
  if (g.ok()) {
    EXPECT_EQ(events, generic);
    EXPECT_EQ(into, generic);
  } else {
    for (const Status* s : {&e, &i}) {
      if (s->ok()) continue;
      EXPECT_EQ(s->error().reason, g.error().reason) << testing::PrintToString(payload);
      EXPECT_EQ(s->error().field, g.error().field) << testing::PrintToString(payload);
    }
  }
  return d;
}

// The direct route is the hot path: it must take what runners really send,
// including canonical progress of every kind, or the speed is not there.
TEST(HeartbeatCodec, DirectRouteAcceptsWhatRunnersSend) {
  std::vector<Heartbeat> hbs = {full_heartbeat()};
  for (PoolType t : {PoolType::kLocalProcess, PoolType::kDocker, PoolType::kKubernetes}) {
    Heartbeat h = full_heartbeat();
    h.runner.pool_type = t;
    h.runner.pid.reset();
    h.runner.container_id.reset();
    h.runner.job_name.reset();
    if (t == PoolType::kDocker) h.runner.container_id = std::string(200, 'c');
    if (t == PoolType::kKubernetes) h.runner.job_name = "job-1";
    if (t == PoolType::kLocalProcess) h.runner.pid = 4'000'000'000ULL;
    h.sent_at_ms = -5;
    h.seq = uint64_t{1} << 40;
    hbs.push_back(h);
  }
  Heartbeat minimal = full_heartbeat();
  minimal.runner.progress.reset();
  minimal.timeout_ms.reset();
  minimal.interval_ms.reset();
  minimal.sent_at_ms.reset();
  hbs.push_back(minimal);
  for (const Heartbeat& h : hbs) {
    const std::string topic = heartbeat_topic(h.runner.runner_id);
    EXPECT_TRUE(expect_same_verdict(topic, encode_heartbeat(h)));
  }
  // Canonical progress of every type: msgpack's own packing.
  const std::vector<std::string> progress = {
      pack(std::map<std::string, int>{{"step", 3}, {"of", 10}}),
      pack(std::vector<int64_t>{0, 127, 128, 255, 256, 65535, 65536, int64_t{1} << 40, -1, -32, -33,
                                -128, -129, -32768, -32769, int64_t{-1} << 40}),
      pack(std::string(31, 's')),
      pack(std::string(32, 's')),
      pack(std::string(300, 's')),
      pack(1.5),
      pack(1.5f),
      pack(msgpack::type::nil_t()),
      pack(true),
      pack(std::vector<int>(20, 1)),
      pack(msgpack::type::raw_ref("bin", 3)),
  };
  for (const std::string& p : progress) {
    EXPECT_TRUE(expect_same_verdict("hb/r-1", valid_heartbeat_map().raw("progress", p).build()))
        << testing::PrintToString(p);
  }
  // Unknown keys of any shape are stepped over.
  EXPECT_TRUE(expect_same_verdict(
      "hb/r-1", valid_heartbeat_map()
                    .set("extra", std::map<std::string, std::vector<int>>{{"a", {1, -300}}})
                    .raw("odd", "\xd0\x05")
                    .build()));
}

// Every MessagePack header at each boundary between its encodings, as the
// value of `progress`: in its smallest form the direct route keeps the bytes
// as sent; in any larger form it must decline (the generic decoder re-encodes
// it smaller), and every route must agree.
TEST(HeartbeatCodec, ProgressHeadersAtEveryBoundaryAgreeOnAllRoutes) {
  const auto be = [](uint64_t v, int bytes) {
    std::string out;
    for (int i = bytes - 1; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xff);
    return out;
  };
  const auto check = [&](const std::string& progress, bool smallest) {
    const std::string payload = valid_heartbeat_map().raw("progress", progress).build();
    EXPECT_EQ(expect_same_verdict("hb/r-1", payload), smallest) << testing::PrintToString(progress);
  };
  // Integers: each value in every encoding it fits; the smallest comes first.
  const uint64_t unsigned_values[] = {
      0,    31, 32, 127, 128, 255, 256, 65535, 65536, 0xffffffffULL, 1ULL << 32, (1ULL << 63) - 1,
      ~0ULL};
  for (uint64_t v : unsigned_values) {
    std::vector<std::string> enc;
    if (v < 128) enc.push_back(std::string(1, static_cast<char>(v)));
    if (v < 256) enc.push_back("\xcc" + be(v, 1));
    if (v < 65536) enc.push_back("\xcd" + be(v, 2));
    if (v <= 0xffffffffULL) enc.push_back("\xce" + be(v, 4));
    enc.push_back("\xcf" + be(v, 8));
    if (v < 128) enc.push_back("\xd0" + be(v, 1));
    if (v < 32768) enc.push_back("\xd1" + be(v, 2));
    if (v < (1ULL << 31)) enc.push_back("\xd2" + be(v, 4));
    if (v < (1ULL << 63)) enc.push_back("\xd3" + be(v, 8));
    for (std::size_t i = 0; i < enc.size(); ++i) check(enc[i], i == 0);
  }
  const int64_t negative_values[] = {-1,       -31,    -32,       -33,
                                     -127,     -128,   -129,      -32767,
                                     -32768,   -32769, INT32_MIN, INT64_C(-2147483649),
                                     INT64_MIN};
  for (int64_t v : negative_values) {
    const auto u = static_cast<uint64_t>(v);
    std::vector<std::string> enc;
    if (v >= -32) enc.push_back(std::string(1, static_cast<char>(v)));
    if (v >= -128) enc.push_back("\xd0" + be(u, 1));
    if (v >= -32768) enc.push_back("\xd1" + be(u, 2));
    if (v >= INT32_MIN) enc.push_back("\xd2" + be(u, 4));
    enc.push_back("\xd3" + be(u, 8));
    for (std::size_t i = 0; i < enc.size(); ++i) check(enc[i], i == 0);
  }
  // Strings, bin and ext by length; arrays and maps by count.
  for (uint64_t n : {0, 1, 2, 4, 8, 15, 16, 17, 31, 32, 255, 256}) {
    const std::string body(n, 'b');
    std::vector<std::string> str, bin, ext, arr, map;
    if (n < 32) str.push_back(std::string(1, static_cast<char>(0xa0 | n)) + body);
    if (n < 256) str.push_back("\xd9" + be(n, 1) + body);
    str.push_back("\xda" + be(n, 2) + body);
    str.push_back("\xdb" + be(n, 4) + body);
    if (n < 256) bin.push_back("\xc4" + be(n, 1) + body);
    bin.push_back("\xc5" + be(n, 2) + body);
    bin.push_back("\xc6" + be(n, 4) + body);
    const char fixext[] = {0, '\xd4', '\xd5', 0, '\xd6', 0, 0, 0,     '\xd7',
                           0, 0,      0,      0, 0,      0, 0, '\xd8'};
    if (n <= 16 && n > 0 && fixext[n] != 0)
      ext.push_back(std::string(1, fixext[n]) + "\x07" + body);
    if (n < 256) ext.push_back("\xc7" + be(n, 1) + "\x07" + body);
    ext.push_back("\xc8" + be(n, 2) + "\x07" + body);
    ext.push_back("\xc9" + be(n, 4) + "\x07" + body);
    const std::string items(n, '\x01'), pairs(2 * n, '\x01');
    if (n < 16) arr.push_back(std::string(1, static_cast<char>(0x90 | n)) + items);
    arr.push_back("\xdc" + be(n, 2) + items);
    arr.push_back("\xdd" + be(n, 4) + items);
    if (n < 16) map.push_back(std::string(1, static_cast<char>(0x80 | n)) + pairs);
    map.push_back("\xde" + be(n, 2) + pairs);
    map.push_back("\xdf" + be(n, 4) + pairs);
    for (const auto* kind : {&str, &bin, &ext, &arr, &map}) {
      for (std::size_t i = 0; i < kind->size(); ++i) check((*kind)[i], i == 0);
    }
  }
}

// Anything wrong or unusual is declined by the direct route and decided by
// the event route, with the generic decoder's reason.
TEST(HeartbeatCodec, DirectRouteDeclinesWhatItDoesNotAccept) {
  const std::vector<std::string> declined = {
      valid_heartbeat_map().set("v", 2).build(),
      valid_heartbeat_map().set("attempt", 0).build(),
      valid_heartbeat_map().set("state", std::string("suspect")).build(),
      valid_heartbeat_map().set("pool", std::string()).build(),
      valid_heartbeat_map().set("pool_type", std::string("vm")).build(),
      valid_heartbeat_map().set("seq", -1).build(),
      valid_heartbeat_map().raw("progress", "\xd0\x05").build(),  // non-canonical: re-encoded
      valid_heartbeat_map().raw("progress", "\xca\x7f\x80\x00\x01").build(),  // float32 NaN
      valid_heartbeat_map().build() + "x",
  };
  for (const std::string& m : declined) {
    EXPECT_FALSE(expect_same_verdict("hb/r-1", m)) << testing::PrintToString(m);
  }
  EXPECT_FALSE(expect_same_verdict("hb/r-2", valid_heartbeat_map().build()));
}

// Every MessagePack integer encoding of every integer field, minimal or not.
TEST(HeartbeatCodec, EveryIntegerEncodingDecodesAlikeOnBothPaths) {
  const std::vector<std::string> fields = {"v",          "seq",         "attempt",   "pid",
                                           "timeout_ms", "interval_ms", "sent_at_ms"};
  for (const std::string& field : fields) {
    for (int64_t value : {int64_t{1}, int64_t{7}, int64_t{-3}}) {
      std::vector<std::string> encodings;
      const auto be = [](uint64_t v, int bytes) {
        std::string out;
        for (int i = bytes - 1; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xff);
        return out;
      };
      const auto u = static_cast<uint64_t>(value);
      if (value >= 0) {
        encodings.push_back(std::string(1, static_cast<char>(value)));  // positive fixint
        encodings.push_back("\xcc" + be(u, 1));                         // uint8
        encodings.push_back("\xcd" + be(u, 2));                         // uint16
        encodings.push_back("\xce" + be(u, 4));                         // uint32
        encodings.push_back("\xcf" + be(u, 8));                         // uint64
      } else {
        encodings.push_back(std::string(1, static_cast<char>(value)));  // negative fixint
      }
      encodings.push_back("\xd0" + be(u, 1));  // int8
      encodings.push_back("\xd1" + be(u, 2));  // int16
      encodings.push_back("\xd2" + be(u, 4));  // int32
      encodings.push_back("\xd3" + be(u, 8));  // int64
      for (const std::string& enc : encodings) {
        const std::string payload = valid_heartbeat_map().raw(field, enc).build();
        expect_same_verdict("hb/r-1", payload);
        auto d = decode_heartbeat("hb/r-1", payload);
        const bool version_ok = field != "v" || value == 1;
        const bool sign_ok = value >= 0 || field == "sent_at_ms";
        EXPECT_EQ(d.ok(), version_ok && sign_ok)
            << field << " " << value << " " << testing::PrintToString(enc);
      }
    }
  }
}

// progress is re-encoded on both paths; odd encodings inside it must come out
// the same (both normalise them the way msgpack packs an object).
TEST(HeartbeatCodec, ProgressInAnyEncodingIsReencodedAlikeOnBothPaths) {
  static constexpr char kOdd[] =
      "\x9b"                                  // array of 11
      "\xd0\x05"                              // int8 5
      "\xd1\xff\xfe"                          // int16 -2
      "\xcf\x00\x00\x00\x00\x00\x00\x00\x07"  // uint64 7
      "\xca\x3f\xc0\x00\x00"                  // float32 1.5
      "\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00"  // float64 1.0
      "\xd9\x01z"                             // str8 "z"
      "\xc4\x01\x00"                          // bin8
      "\xc7\x02\x05"
      "ab"                     // ext8 type 5
      "\xd4\x01q"              // fixext1
      "\xde\x00\x01\xa1k\x90"  // map16 {k: []}
      "\xc0";                  // nil
  const std::vector<std::string> progress = {
      std::string(kOdd, sizeof kOdd - 1), pack(5), pack(-5), pack(std::string("x")),
      std::string("\xd3\x00\x00\x00\x00\x00\x00\x00\x09", 9)};
  for (const std::string& p : progress) {
    const std::string payload = valid_heartbeat_map().raw("progress", p).build();
    expect_same_verdict("hb/r-1", payload);
    auto d = decode_heartbeat("hb/r-1", payload);
    ASSERT_TRUE(d.ok()) << testing::PrintToString(p);
    EXPECT_TRUE(validate_progress(*d->runner.progress));
  }
}

TEST(HeartbeatCodec, FloatsInProgressKeepTheirTypeAndBits) {
  // 50.0, -0.0 and 2^64 as float64, 1.5 as float32: forwarded as sent.
  static constexpr char kFloats[] =
      "\x94"
      "\xcb\x40\x49\x00\x00\x00\x00\x00\x00"
      "\xcb\x80\x00\x00\x00\x00\x00\x00\x00"
      "\xcb\x43\xf0\x00\x00\x00\x00\x00\x00"
      "\xca\x3f\xc0\x00\x00";
  const std::string progress(kFloats, sizeof kFloats - 1);
  const std::string payload = valid_heartbeat_map().raw("progress", progress).build();
  expect_same_verdict("hb/r-1", payload);
  auto d = decode_heartbeat("hb/r-1", payload);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d->runner.progress, progress);
}

TEST(HeartbeatCodec, FastAndGenericDecodersAgreeOnEveryInput) {
  std::vector<std::string> seeds = {
      valid_heartbeat_map().build(),
      encode_heartbeat(full_heartbeat()),
      valid_heartbeat_map().set("attempt", -1).set("seq", std::string("x")).build(),
      valid_heartbeat_map()
          .set("extra", std::map<std::string, std::vector<int>>{{"a", {1}}})
          .build(),
      valid_heartbeat_map().set("pool", std::vector<int>{1, 2}).build(),
      pack(std::vector<int>{1, 2, 3}),
      pack(std::map<int, int>{{1, 2}}),
  };
  for (const auto& s : seeds) expect_same_verdict("hb/r-1", s);
  expect_same_verdict("hb/runner-7f3a", seeds[1]);
  std::mt19937 rng(7);
  for (int i = 0; i < 20'000; ++i) {
    std::string m = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !m.empty(); ++e) {
      switch (rng() % 4) {
        case 0:
          m[rng() % m.size()] = static_cast<char>(rng());
          break;
        case 1:
          m.erase(rng() % m.size(), 1 + rng() % 3);
          break;
        case 2:
          m.insert(m.begin() + static_cast<long>(rng() % m.size()), static_cast<char>(rng()));
          break;
        case 3:
          m.resize(rng() % (m.size() + 1));
          break;
      }
    }
    expect_same_verdict("hb/r-1", m);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace rmon::protocol::codec_testing
