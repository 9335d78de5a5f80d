#include "hostile_garbage.hpp"

#include <cstring>
#include <msgpack.hpp>
#include <random>

#include "rmon/protocol/codec.hpp"
#include "rmon/protocol/msgmap.hpp"

namespace rmon::fault {

namespace {

template <class T>
std::string pack(const T& v) {
  msgpack::sbuffer b;
  msgpack::pack(b, v);
  return {b.data(), b.size()};
}

Fields with(Fields f, const std::string& key, const std::string& value) {
  for (auto& kv : f) {
    if (kv.first == key) {
      kv.second = value;
      return f;
    }
  }
  f.emplace_back(key, value);
  return f;
}

Fields without(Fields f, const std::string& key) {
  std::erase_if(f, [&](const auto& kv) { return kv.first == key; });
  return f;
}

std::string random_bytes(std::mt19937_64& rng, std::size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  // Half of them start like a small map, so decoders get past the first byte.
  if (n > 0 && (rng() & 1)) s[0] = static_cast<char>(0x80 | (rng() % 10));
  return s;
}

// `depth` nested one-element arrays around an integer.
std::string deep(std::size_t depth) { return std::string(depth, '\x91') + '\x01'; }

// Values that are not one map with string keys, or that declare more than
// any frame holds.
std::vector<std::string> not_a_map() {
  using namespace std::string_literals;
  return {""s,
          "\xc0"s,
          "\x01"s,
          "\xa3"
          "abc"s,
          "\x93\x01\x02\x03"s,
          "\x81\x01\x02"s,
          "\x81\xc4\x01k\x01"s,
          "\xd4\x01\x01"s,
          "\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00"s,
          "\xdf\xff\xff\xff\xff"s,
          "\xde\xff\xff"s,
          "\xdd\xff\xff\xff\xff"s,
          "\xdb\xff\xff\xff\xff"s,
          "\xc6\xff\xff\xff\xff"s,
          "\x81\xa1v\xdb\xff\xff\xff\xff"s,
          "\x81\xa1v\xdd\xff\xff\xff\xff"s,
          "\x81\xa1v\xdf\xff\xff\xff\xff"s,
          "\xc1"s,
          deep(200)};
}

// Every proper prefix of `valid`, and `valid` with a trailing byte.
void truncations(const std::string& valid, std::vector<std::string>& out) {
  for (std::size_t n = 0; n < valid.size(); ++n) out.push_back(valid.substr(0, n));
  out.push_back(valid + '\xc0');
  out.push_back(valid + valid);
}

// Every value in `bad` for each key, and each required key missing.
void field_variants(const Fields& base,
                    const std::vector<std::pair<std::string, std::vector<std::string>>>& bad,
                    const std::vector<std::string>& required, std::vector<std::string>& out) {
  for (const auto& [key, values] : bad) {
    for (const std::string& v : values) out.push_back(map_of(with(base, key, v)));
  }
  for (const std::string& key : required) out.push_back(map_of(without(base, key)));
}

std::string big_str(std::size_t n, char c = 'x') { return mp_str(std::string(n, c)); }

// Bodies common to every request socket: structure, random bytes, deep
// nesting around an op that would otherwise be answered ok.
void common_request_garbage(std::mt19937_64& rng, const std::string& harmless_op,
                            std::vector<std::string>& out) {
  for (const std::string& s : not_a_map()) out.push_back(s);
  for (int i = 0; i < 150; ++i) out.push_back(random_bytes(rng, 1 + rng() % 400));
  const Fields op{{"v", mp_uint(1)}, {"op", mp_str(harmless_op)}};
  truncations(map_of(op), out);
  field_variants(op,
                 {{"v", {mp_str("1"), mp_uint(2), mp_int(-1), mp_float(1.0), mp_nil()}},
                  {"op", {mp_uint(5), mp_nil(), mp_str(""), mp_str("explode"), big_str(300)}},
                  {"deep", {deep(40)}}},
                 {"v", "op"}, out);
}

std::vector<Garbage> as_requests(std::vector<std::string> bodies, const std::string& what) {
  std::vector<Garbage> g;
  for (auto& b : bodies) g.push_back({{std::move(b)}, true, what});
  return g;
}

}  // namespace

std::string map_of(const Fields& f) {
  protocol::MapBuilder m;
  for (const auto& [k, v] : f) m.raw(k, v);
  return m.finish();
}

std::string mp_str(const std::string& s) { return pack(s); }
std::string mp_uint(uint64_t v) { return pack(v); }
std::string mp_int(int64_t v) { return pack(v); }
// By hand: msgpack-cxx packs an integral double as an integer.
std::string mp_float(double v) {
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof bits);
  std::string out(1, '\xcb');
  for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((bits >> shift) & 0xff);
  return out;
}
std::string mp_bool(bool v) { return pack(v); }
std::string mp_nil() { return pack(msgpack::type::nil_t()); }

std::vector<Garbage> heartbeat_garbage(uint64_t seed) {
  std::mt19937_64 rng(seed);
  const std::string id = "garbage-hb";
  const std::string topic = protocol::heartbeat_topic(id);
  const Fields base{{"v", mp_uint(1)},
                    {"runner_id", mp_str(id)},
                    {"task_id", mp_str("t-garbage")},
                    {"attempt", mp_uint(1)},
                    {"pool", mp_str("fault")},
                    {"pool_type", mp_str("local-process")},
                    {"state", mp_str("running")},
                    {"seq", mp_uint(1)},
                    {"timeout_ms", mp_uint(30'000)}};
  const std::string valid = map_of(base);
  std::vector<std::string> payloads = not_a_map();
  truncations(valid, payloads);
  field_variants(
      base,
      {{"v", {mp_str("1"), mp_int(-1), mp_float(1.0), mp_uint(2), mp_nil()}},
       {"runner_id", {mp_uint(7), mp_str(""), mp_str("other"), big_str(200), mp_str("\xff\xfe")}},
       {"task_id", {mp_uint(1), mp_str(""), big_str(200), "\x91\x01"}},
       {"attempt", {mp_uint(0), mp_str("1"), mp_int(-1), mp_float(1.5)}},
       {"pool", {mp_uint(5), mp_str(""), big_str(200)}},
       {"pool_type", {mp_str("vm"), mp_uint(3), mp_str("")}},
       {"state", {mp_str("zombie"), mp_str("suspect"), mp_uint(1), mp_str("")}},
       {"seq", {mp_str("1"), mp_int(-1), mp_float(1.5), mp_nil()}},
       {"timeout_ms", {mp_str("fast"), mp_int(-5), mp_float(1.5)}},
       {"interval_ms", {mp_str("x")}},
       {"sent_at_ms", {mp_str("now"), mp_float(1.5)}},
       {"pid", {mp_str("x"), mp_int(-1)}},
       {"container_id", {big_str(300), mp_uint(5)}},
       {"job_name", {big_str(300)}},
       {"progress", {deep(40), big_str(5000)}}},
      {"v", "runner_id", "task_id", "pool", "pool_type", "state", "seq"}, payloads);
  for (int i = 0; i < 150; ++i) payloads.push_back(random_bytes(rng, 1 + rng() % 400));
  for (int i = 0; i < 150; ++i) {  // a few bytes of a valid one changed
    std::string m = valid;
    for (int k = 0, n = 1 + static_cast<int>(rng() % 3); k < n; ++k) {
      m[rng() % m.size()] = static_cast<char>(rng() & 0xff);
    }
    payloads.push_back(m);
  }
  payloads.push_back(map_of(with(base, "progress", big_str(9000))));  // over 8 KiB
  payloads.push_back(random_bytes(rng, 60 * 1024));

  std::vector<Garbage> out;
  protocol::Heartbeat scratch;
  for (auto& p : payloads) {
    // What the monitor's own decoder accepts is no garbage: left out.
    if (protocol::decode_heartbeat_into(topic, p, scratch)) continue;
    out.push_back({{topic, std::move(p)}, true, "payload"});
  }
  out.push_back({{"hb/other", valid}, true, "topic mismatch"});
  out.push_back({{"hb/", valid}, true, "empty topic id"});
  out.push_back({{"hb/" + std::string(200, 'r'), valid}, true, "long topic"});
  out.push_back({{topic}, true, "one frame"});
  out.push_back({{topic, valid, ""}, true, "three frames"});
  out.push_back({{topic, valid, valid}, true, "three frames"});
  out.push_back({{topic, "", "", ""}, true, "four frames"});
  out.push_back({{"xx/" + id, valid}, false, "topic outside the subscription"});
  out.push_back({{topic, random_bytes(rng, 70 * 1024)}, false, "over ZMQ_MAXMSGSIZE"});
  return out;
}

std::vector<Garbage> ack_garbage(uint64_t seed) {
  std::mt19937_64 rng(seed);
  const Fields base{{"v", mp_uint(1)},
                    {"type", mp_str("ack")},
                    {"group", mp_str("task-queue")},
                    {"event_id", mp_str("garbage-ack-0")}};
  std::vector<std::string> bodies = not_a_map();
  truncations(map_of(base), bodies);
  field_variants(base,
                 {{"v", {mp_str("1"), mp_uint(2), mp_nil()}},
                  {"type", {mp_str("nack"), mp_uint(5), mp_str("")}},
                  {"group", {mp_uint(5), mp_str(""), big_str(300)}},
                  {"event_id", {mp_uint(5), mp_str(""), big_str(200), mp_str("\xff")}}},
                 {"v", "type", "group", "event_id"}, bodies);
  for (int i = 0; i < 150; ++i) bodies.push_back(random_bytes(rng, 1 + rng() % 400));
  // Well-formed, for events nobody sent and a group nobody has.
  for (int i = 0; i < 30; ++i) {
    const std::string group = i % 3 == 0 ? "nobody" : (i % 3 == 1 ? "task-queue" : "pool-manager");
    bodies.push_back(protocol::encode_ack({group, "garbage-ack-" + std::to_string(rng())}));
  }
  bodies.push_back(random_bytes(rng, 60 * 1024));
  std::vector<Garbage> out = as_requests(std::move(bodies), "ack");
  const std::string ack = map_of(base);
  out.push_back({{ack, ack}, true, "two frames"});
  out.push_back({{"", ""}, true, "two empty frames"});
  out.push_back({{random_bytes(rng, 70 * 1024)}, false, "over ZMQ_MAXMSGSIZE"});
  return out;
}

std::vector<Garbage> event_garbage(uint64_t seed) {
  std::mt19937_64 rng(seed);
  const Fields base{{"v", mp_uint(1)},
                    {"type", mp_str("runner_timeout")},
                    {"event_id", mp_str("garbage-ev-0")},
                    {"runner_id", mp_str("garbage-runner")},
                    {"task_id", mp_str("t-garbage")},
                    {"attempt", mp_uint(1)},
                    {"pool", mp_str("fault")},
                    {"pool_type", mp_str("local-process")},
                    {"last_seq", mp_uint(3)},
                    {"last_heartbeat_ms", mp_int(1'700'000'000'000)},
                    {"detected_at_ms", mp_int(1'700'000'001'500)},
                    {"timeout_ms", mp_uint(1500)},
                    {"delivery", mp_uint(1)}};
  const std::string valid = map_of(base);
  std::vector<std::string> bodies = not_a_map();
  truncations(valid, bodies);
  field_variants(base,
                 {{"v", {mp_str("1"), mp_uint(2)}},
                  {"type", {mp_str("runner_dead"), mp_uint(1)}},
                  {"event_id", {mp_uint(5), mp_str(""), big_str(200)}},
                  {"runner_id", {mp_uint(5), mp_str(""), big_str(200)}},
                  {"task_id", {mp_uint(5), mp_str(""), big_str(200)}},
                  {"attempt", {mp_uint(0), mp_str("1"), mp_int(-1)}},
                  {"pool", {mp_uint(5), mp_str("")}},
                  {"pool_type", {mp_str("vm")}},
                  {"last_seq", {mp_str("3"), mp_int(-3)}},
                  {"last_heartbeat_ms", {mp_str("then")}},
                  {"detected_at_ms", {mp_float(1.5)}},
                  {"timeout_ms", {mp_int(-1)}},
                  {"delivery", {mp_str("1")}},
                  {"progress", {deep(40), big_str(5000)}}},
                 {"v", "type", "event_id", "runner_id", "task_id", "attempt", "pool", "pool_type",
                  "last_seq", "last_heartbeat_ms", "detected_at_ms", "timeout_ms", "delivery"},
                 bodies);
  for (int i = 0; i < 150; ++i) bodies.push_back(random_bytes(rng, 1 + rng() % 400));
  for (int i = 0; i < 150; ++i) {
    std::string m = valid;
    m[rng() % m.size()] = static_cast<char>(rng() & 0xff);
    bodies.push_back(m);
  }
  bodies.push_back(random_bytes(rng, 60 * 1024));
  std::vector<Garbage> out;
  for (auto& b : bodies) {
    // What the consumers' decoder accepts is no garbage: left out.
    if (protocol::decode_timeout_event(b)) continue;
    out.push_back({{std::move(b)}, true, "event"});
  }
  out.push_back({{valid, valid}, true, "two frames"});
  out.push_back({{"", "", ""}, true, "three empty frames"});
  // Oversized frames are tested on their own (HostileEventSocket in
  // hostile_faults_test.cpp).
  return out;
}

std::vector<Garbage> control_garbage(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> b;
  common_request_garbage(rng, "stats", b);
  const Fields v1{{"v", mp_uint(1)}};
  auto op = [&](const std::string& name) { return with(v1, "op", mp_str(name)); };
  const Fields runner{{"runner_id", mp_str("garbage-add")},
                      {"task_id", mp_str("t-garbage")},
                      {"pool", mp_str("fault")},
                      {"pool_type", mp_str("local-process")},
                      {"state", mp_str("running")},
                      {"timeout_ms", mp_uint(30'000)}};
  truncations(map_of(with(op("add"), "runner", map_of(runner))), b);
  field_variants(op("get"), {{"runner_id", {mp_uint(5), mp_str(""), big_str(300), mp_nil()}}},
                 {"runner_id"}, b);
  field_variants(op("list"),
                 {{"limit", {mp_str("x"), mp_int(-1), mp_float(2.5)}},
                  {"state", {mp_str("zombie"), mp_uint(7)}},
                  {"pool", {mp_uint(5)}},
                  {"after", {mp_uint(5)}}},
                 {}, b);
  field_variants(op("count"), {{"state", {mp_str("zombie")}}, {"pool", {mp_uint(5)}}}, {}, b);
  field_variants(op("remove"), {{"runner_id", {mp_uint(7), mp_str("")}}}, {"runner_id"}, b);
  field_variants(
      with(op("set_state"), "runner_id", mp_str("fleet-0000000")),
      {{"state", {mp_str("suspect"), mp_str("x"), mp_uint(1)}}, {"runner_id", {mp_uint(1)}}},
      {"state"}, b);
  field_variants(
      with(op("add"), "runner", map_of(runner)),
      {{"runner",
        {mp_str("x"), mp_uint(1), map_of(with(runner, "pool_type", mp_str("vm"))),
         map_of(with(runner, "attempt", mp_uint(0))), map_of(with(runner, "runner_id", mp_uint(5))),
         map_of(with(runner, "state", mp_str("zombie"))), map_of(without(runner, "task_id")),
         map_of(with(runner, "progress", deep(40)))}}},
      {"runner"}, b);
  b.push_back(random_bytes(rng, 60 * 1024));
  b.push_back(random_bytes(rng, 100 * 1024));  // over other frames' 64 KiB: the decoder's
  auto out = as_requests(std::move(b), "control");
  // The control socket takes 160 KiB (a full `lookup`).
  out.push_back({{random_bytes(rng, 170 * 1024)}, false, "over ZMQ_MAXMSGSIZE"});
  return out;
}

std::vector<Garbage> task_api_garbage(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> b;
  common_request_garbage(rng, "stats", b);
  const Fields v1{{"v", mp_uint(1)}};
  auto op = [&](const std::string& name) { return with(v1, "op", mp_str(name)); };
  const Fields submit = with(op("submit"), "payload", mp_str("garbage"));
  truncations(map_of(submit), b);
  field_variants(submit,
                 {{"priority", {mp_str("high"), mp_float(1.5)}},
                  {"max_attempts", {mp_uint(0), mp_uint(5000), mp_int(-1), mp_str("5")}},
                  {"pool", {mp_str(""), big_str(300), mp_uint(5)}},
                  {"idempotency_key", {big_str(300), mp_uint(5), mp_str("")}},
                  {"delay_ms", {mp_int(-5), mp_str("soon"), mp_uint(40ull * 86'400'000)}},
                  {"payload", {big_str(70 * 1024)}}},
                 {"payload"}, b);
  field_variants(with(op("lease"), "runner_id", mp_str("garbage")),
                 {{"runner_id", {mp_uint(5), mp_str(""), big_str(300)}}, {"pool", {mp_uint(5)}}},
                 {"runner_id"}, b);
  const Fields complete =
      with(with(op("complete"), "task_id", mp_str("t-garbage")), "attempt", mp_uint(1));
  field_variants(complete,
                 {{"task_id", {mp_uint(5), mp_str("")}},
                  {"attempt", {mp_str("1"), mp_int(-1)}},
                  {"result", {big_str(70 * 1024)}}},
                 {"task_id", "attempt"}, b);
  field_variants(with(with(op("fail"), "task_id", mp_str("t-garbage")), "attempt", mp_uint(1)),
                 {{"error", {mp_uint(5), big_str(5000)}}, {"retry", {mp_str("yes")}}},
                 {"task_id", "attempt"}, b);
  field_variants(with(op("cancel"), "task_id", mp_str("t-garbage")), {{"task_id", {mp_uint(5)}}},
                 {"task_id"}, b);
  field_variants(with(op("get"), "task_id", mp_str("t-garbage")),
                 {{"task_id", {mp_uint(5), mp_str("")}}}, {"task_id"}, b);
  field_variants(
      op("list"),
      {{"limit", {mp_str("all"), mp_int(-1)}}, {"state", {mp_uint(5)}}, {"after", {mp_uint(5)}}},
      {}, b);
  auto out = as_requests(std::move(b), "task-queue");
  // Over the request limit (80 KiB) but under the socket's (4x, as every
  // consumer service): answered bad_request; far larger drops the peer.
  out.push_back({{random_bytes(rng, 90 * 1024)}, true, "over the request limit"});
  out.push_back({{random_bytes(rng, 330 * 1024)}, false, "over ZMQ_MAXMSGSIZE"});
  return out;
}

std::vector<Garbage> pool_api_garbage(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> b;
  common_request_garbage(rng, "stats", b);
  const Fields v1{{"v", mp_uint(1)}};
  auto op = [&](const std::string& name) { return with(v1, "op", mp_str(name)); };
  const Fields acquire{{"v", mp_uint(1)},
                       {"op", mp_str("acquire")},
                       {"pool", mp_str("fault")},
                       {"runner_id", mp_str("garbage")},
                       {"task_id", mp_str("t-garbage")},
                       {"attempt", mp_uint(1)}};
  truncations(map_of(acquire), b);
  field_variants(acquire,
                 {{"pool", {mp_uint(5), mp_str(""), big_str(300)}},
                  {"runner_id", {mp_uint(5), mp_str(""), big_str(300)}},
                  {"task_id", {mp_uint(5), mp_str(""), big_str(300)}},
                  {"attempt", {mp_str("1"), mp_int(-1), mp_uint(0), mp_float(1.0)}}},
                 {"pool", "runner_id", "task_id", "attempt"}, b);
  field_variants(with(op("release"), "runner_id", mp_str("garbage")),
                 {{"runner_id", {mp_uint(5), mp_str("")}}, {"pool", {mp_uint(5)}}}, {"runner_id"},
                 b);
  field_variants(op("status"), {{"pool", {mp_uint(5)}}}, {}, b);
  b.push_back(random_bytes(rng, 100 * 1024));
  auto out = as_requests(std::move(b), "pool-manager");
  out.push_back({{random_bytes(rng, 300 * 1024)}, false, "over ZMQ_MAXMSGSIZE"});
  return out;
}

}  // namespace rmon::fault
