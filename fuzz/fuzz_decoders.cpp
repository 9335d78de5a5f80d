// libFuzzer target for every protocol decoder.
//
// Input layout: byte 0 chooses the decoder (modulo kDecoders); the rest is the
// frame. Heartbeats carry two frames: byte 1 is the topic length, then the
// topic, then the payload. Besides "never crash, never throw" (libFuzzer turns
// an escaping exception into a crash), each accepted message must survive its
// own re-encoding, and decode_heartbeat_into on a reused struct must agree
// with a fresh decode_heartbeat and with the generic (object tree) decoder,
// as must each of the heartbeat decoder's routes (direct, events).
//
// With RMON_FUZZ_WRITE_SEEDS=<dir> in the environment the binary writes a few
// valid inputs of each kind into <dir> and exits: scripts/fuzz.sh seeds the
// corpus that way.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rmon/protocol/codec.hpp"

namespace rmon::protocol {
namespace {

enum Selector : uint8_t {
  kHeartbeat,
  kHeartbeatInto,
  kTimeoutEvent,
  kAck,
  kControlRequest,
  kControlReply,
  kProgress,
  kLookupReply,  // after kProgress: earlier selectors keep their meaning
  kDecoders,
};

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_decoders: property violated: %s\n", what);
  std::abort();
}

bool same(const Rejection& a, const Rejection& b) {
  return a.reason == b.reason && a.field == b.field;
}

void check_rejection(const Rejection& r) {
  if (static_cast<int>(r.reason) >= kReasonCount || reason_name(r.reason).empty()) {
    fail("unknown rejection reason");
  }
}

// encode(decode(x)) must be accepted again and be a fixed point.
template <class T, class Decode, class Encode>
void check_reencodes(const Result<T>& first, Decode decode, Encode encode) {
  if (!first.ok()) return check_rejection(first.error());
  const std::string once = encode(first.value());
  auto second = decode(once);
  if (!second.ok()) fail("own re-encoding rejected");
  if (encode(second.value()) != once) fail("re-encoding is not a fixed point");
}

// A client's view of a lookup reply, encoded back as the monitor would.
std::string encode_lookup_reply(const LookupReply& r) {
  if (!r.ok) return encode_control_reply(ControlReply::failure(r.error, r.detail));
  ControlReply c;
  c.lookup = r.runners;
  c.uptime_ms = r.uptime_ms;
  return encode_control_reply(c);
}

void fuzz_heartbeat(std::string_view in, bool reuse) {
  static Heartbeat reused;  // keeps whatever earlier inputs left in it
  std::size_t topic_len = 0;
  if (!in.empty()) {
    topic_len = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
  }
  const std::string_view topic = in.substr(0, topic_len);
  const std::string_view payload = in.substr(topic.size());
  auto fresh = decode_heartbeat(topic, payload);
  {
    // The fast path must reach the generic decoder's verdict on every input.
    Heartbeat generic;
    const Status g = detail::decode_heartbeat_generic(topic, payload, generic);
    if (g.ok() != fresh.ok()) fail("fast and generic heartbeat decoders disagree on acceptance");
    if (!g.ok() && !same(g.error(), fresh.error())) fail("fast and generic decoders: reason");
    if (g.ok() && !(generic == fresh.value())) fail("fast and generic decoders: value");
    // The direct route may decline anything, but what it accepts must be
    // exactly the generic decoder's result; so must the event route's.
    Heartbeat direct;
    if (detail::decode_heartbeat_direct(topic, payload, direct)) {
      if (!g.ok()) fail("direct route accepted what the generic decoder rejects");
      if (!(direct == generic)) fail("direct route and generic decoder: value");
    }
    Heartbeat events;
    const Status e = detail::decode_heartbeat_events(topic, payload, events);
    if (e.ok() != g.ok()) fail("event route and generic decoder disagree on acceptance");
    if (!g.ok() && !same(g.error(), e.error())) fail("event route and generic decoder: reason");
    if (g.ok() && !(events == generic)) fail("event route and generic decoder: value");
  }
  if (reuse) {
    const Status into = decode_heartbeat_into(topic, payload, reused);
    if (into.ok() != fresh.ok()) fail("decode_heartbeat_into disagrees on acceptance");
    if (!into.ok() && !same(into.error(), fresh.error())) fail("decode_heartbeat_into reason");
    if (into.ok() && !(reused == fresh.value())) fail("reused heartbeat kept stale fields");
  }
  if (!fresh.ok()) return check_rejection(fresh.error());
  const std::string own_topic = heartbeat_topic(fresh->runner.runner_id);
  check_reencodes(
      fresh, [&](const std::string& b) { return decode_heartbeat(own_topic, b); },
      [](const Heartbeat& hb) { return encode_heartbeat(hb); });
}

void fuzz_one(uint8_t selector, std::string_view frame) {
  switch (selector % kDecoders) {
    case kHeartbeat:
    case kHeartbeatInto:
      return fuzz_heartbeat(frame, selector % kDecoders == kHeartbeatInto);
    case kTimeoutEvent:
      return check_reencodes(
          decode_timeout_event(frame), [](const std::string& b) { return decode_timeout_event(b); },
          [](const TimeoutEvent& ev) { return encode_timeout_event(ev); });
    case kAck:
      return check_reencodes(
          decode_ack(frame), [](const std::string& b) { return decode_ack(b); },
          [](const Ack& a) { return encode_ack(a); });
    case kControlRequest:
      return check_reencodes(
          decode_control_request(frame),
          [](const std::string& b) { return decode_control_request(b); },
          [](const ControlRequest& r) { return encode_control_request(r); });
    case kControlReply:
      return check_reencodes(
          decode_control_reply(frame), [](const std::string& b) { return decode_control_reply(b); },
          [](const ControlReply& r) { return encode_control_reply(r); });
    case kLookupReply:
      return check_reencodes(
          decode_lookup_reply(frame), [](const std::string& b) { return decode_lookup_reply(b); },
          encode_lookup_reply);
    default: {
      const Status s = validate_progress(frame);
      if (!s.ok()) check_rejection(s.error());
      return;
    }
  }
}

// --- seeds ---

void write_seed(const std::string& dir, const std::string& name, uint8_t selector,
                std::string_view body) {
  std::ofstream out(dir + "/seed-" + name, std::ios::binary | std::ios::trunc);
  out.put(static_cast<char>(selector));
  out.write(body.data(), static_cast<std::streamsize>(body.size()));
  if (!out) {
    std::fprintf(stderr, "fuzz_decoders: cannot write seeds into %s\n", dir.c_str());
    std::exit(1);
  }
}

std::string heartbeat_input(const Heartbeat& hb) {
  const std::string topic = heartbeat_topic(hb.runner.runner_id);
  return std::string(1, static_cast<char>(topic.size())) + topic + encode_heartbeat(hb);
}

void write_seeds(const std::string& dir) {
  Heartbeat hb;
  hb.runner.runner_id = "runner-7f3a";
  hb.runner.task_id = "task-42";
  hb.runner.pool = "default";
  hb.runner.pid = 4242;
  hb.seq = 1;
  Heartbeat full = hb;
  full.runner.attempt = 3;
  full.runner.pool_type = PoolType::kKubernetes;
  full.runner.pid.reset();
  full.runner.job_name = "job-abc";
  full.runner.container_id = "c0ffee";
  full.runner.progress = std::string("\x82\xa4") + "done" + "\x03\xa5" + "total" + "\x0a";
  full.state = RunnerState::kCompleted;
  full.seq = 99;
  full.timeout_ms = 5000;
  full.interval_ms = 1000;
  full.sent_at_ms = -5;
  write_seed(dir, "heartbeat-min", kHeartbeat, heartbeat_input(hb));
  write_seed(dir, "heartbeat-full", kHeartbeat, heartbeat_input(full));
  write_seed(dir, "heartbeat-into", kHeartbeatInto, heartbeat_input(full));

  TimeoutEvent ev;
  ev.event_id = "mon-1:00000042";
  ev.runner = full.runner;
  ev.last_seq = 99;
  ev.last_heartbeat_ms = 1'700'000'000'000;
  ev.detected_at_ms = 1'700'000'060'000;
  ev.timeout_ms = 60000;
  write_seed(dir, "event", kTimeoutEvent, encode_timeout_event(ev));
  write_seed(dir, "ack", kAck, encode_ack({"task-queue", "mon-1:00000042"}));

  std::vector<std::pair<std::string, ControlRequest>> requests(7);
  requests[0] = {"ping", ControlRequest{}};
  requests[1].first = "get";
  requests[1].second.op = Op::kGet;
  requests[1].second.runner_id = "runner-7f3a";
  requests[2].first = "list";
  requests[2].second.op = Op::kList;
  requests[2].second.state = RunnerState::kSuspect;
  requests[2].second.pool = "default";
  requests[2].second.limit = 10;
  requests[3].first = "add";
  requests[3].second.op = Op::kAdd;
  requests[3].second.runner = full;
  requests[4].first = "set-state";
  requests[4].second.op = Op::kSetState;
  requests[4].second.runner_id = "runner-7f3a";
  requests[4].second.state = RunnerState::kFailed;
  requests[5].first = "stats";
  requests[5].second.op = Op::kStats;
  requests[6].first = "lookup";
  requests[6].second.op = Op::kLookup;
  requests[6].second.runner_ids = {"runner-7f3a", "runner-0", "runner-7f3a"};
  for (const auto& [name, req] : requests) {
    write_seed(dir, "request-" + name, kControlRequest, encode_control_request(req));
  }

  RunnerView view;
  view.runner = full.runner;
  view.state = RunnerState::kSuspect;
  view.last_seq = 99;
  view.timeout_ms = 5000;
  view.interval_ms = 1000;
  ControlReply get;
  get.runner = view;
  ControlReply list;
  list.runners = std::vector<RunnerView>{view, view};
  ControlReply stats;
  stats.stats = {{"heartbeats", 10}, {"rejected", 2}, {"timeouts", 1}, {"runners", 4}};
  ControlReply ping;
  ping.version = 1;
  ping.count = 3;
  ping.removed = true;
  write_seed(dir, "reply-get", kControlReply, encode_control_reply(get));
  write_seed(dir, "reply-list", kControlReply, encode_control_reply(list));
  write_seed(dir, "reply-stats", kControlReply, encode_control_reply(stats));
  write_seed(dir, "reply-ping", kControlReply, encode_control_reply(ping));
  write_seed(dir, "reply-failure", kControlReply,
             encode_control_reply(ControlReply::failure("not_found", "no such runner")));
  ControlReply lookup;
  lookup.lookup = {LookupEntry{"task-42", 3, RunnerState::kFailed, true, 1500}, std::nullopt};
  lookup.uptime_ms = 60'000;
  write_seed(dir, "reply-lookup", kLookupReply, encode_control_reply(lookup));
  write_seed(dir, "reply-lookup-refused", kLookupReply,
             encode_control_reply(ControlReply::failure("bad_request", "too_large: runner_ids")));
  write_seed(dir, "progress", kProgress, *full.runner.progress);
  std::fprintf(stderr, "fuzz_decoders: seeds written to %s\n", dir.c_str());
}

}  // namespace
}  // namespace rmon::protocol

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  if (const char* dir = std::getenv("RMON_FUZZ_WRITE_SEEDS"); dir != nullptr && *dir != '\0') {
    rmon::protocol::write_seeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  rmon::protocol::fuzz_one(data[0],
                           std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  return 0;
}
