// Encoders: each writes a map with exactly the keys PROTOCOL.md documents.

#include "rmon/protocol/codec.hpp"
#include "wire.hpp"

namespace rmon::protocol {
namespace {

using wire::pack_kv;
using wire::pack_raw_kv;
using wire::pack_str;
using wire::Packer;

uint32_t runner_info_keys(const RunnerInfo& r) {
  return 5 + (r.pid ? 1 : 0) + (r.container_id ? 1 : 0) + (r.job_name ? 1 : 0) +
         (r.progress ? 1 : 0);
}

void pack_runner_info(Packer& p, const RunnerInfo& r) {
  pack_kv(p, "runner_id", r.runner_id);
  pack_kv(p, "task_id", r.task_id);
  pack_kv(p, "attempt", r.attempt);
  pack_kv(p, "pool", r.pool);
  pack_kv(p, "pool_type", to_string(r.pool_type));
  if (r.pid) pack_kv(p, "pid", *r.pid);
  if (r.container_id) pack_kv(p, "container_id", *r.container_id);
  if (r.job_name) pack_kv(p, "job_name", *r.job_name);
  if (r.progress) pack_raw_kv(p, "progress", *r.progress);
}

// The heartbeat's keys; `with_envelope` adds `v` and `seq` (absent in `add`).
void pack_heartbeat(Packer& p, const Heartbeat& hb, bool with_envelope) {
  p.pack_map(runner_info_keys(hb.runner) + 1 + (with_envelope ? 2 : 0) + (hb.timeout_ms ? 1 : 0) +
             (hb.interval_ms ? 1 : 0) + (hb.sent_at_ms ? 1 : 0));
  if (with_envelope) pack_kv(p, "v", kVersion);
  pack_runner_info(p, hb.runner);
  pack_kv(p, "state", to_string(hb.state));
  if (with_envelope) pack_kv(p, "seq", hb.seq);
  if (hb.timeout_ms) pack_kv(p, "timeout_ms", *hb.timeout_ms);
  if (hb.interval_ms) pack_kv(p, "interval_ms", *hb.interval_ms);
  if (hb.sent_at_ms) pack_kv(p, "sent_at_ms", *hb.sent_at_ms);
}

void pack_runner_view(Packer& p, const RunnerView& v) {
  p.pack_map(runner_info_keys(v.runner) + 6 + (v.interval_ms ? 1 : 0));
  pack_runner_info(p, v.runner);
  pack_kv(p, "state", to_string(v.state));
  pack_kv(p, "last_seq", v.last_seq);
  pack_kv(p, "last_heartbeat_ms", v.last_heartbeat_ms);
  pack_kv(p, "silence_ms", v.silence_ms);
  pack_kv(p, "timeout_ms", v.timeout_ms);
  pack_kv(p, "added_at_ms", v.added_at_ms);
  if (v.interval_ms) pack_kv(p, "interval_ms", *v.interval_ms);
}

void pack_lookup_entry(Packer& p, const std::optional<LookupEntry>& e) {
  if (!e) {
    p.pack_nil();
    return;
  }
  p.pack_map(5);
  pack_kv(p, "task_id", e->task_id);
  pack_kv(p, "attempt", e->attempt);
  pack_kv(p, "state", to_string(e->state));
  pack_kv(p, "timed_out", e->timed_out);
  pack_kv(p, "state_for_ms", e->state_for_ms);
}

template <class Fn>
std::string encode_with(Fn&& fn) {
  std::string out;
  Packer p(out);
  fn(p);
  return out;
}

}  // namespace

std::string heartbeat_topic(std::string_view runner_id) {
  std::string t(kTopicPrefix);
  t += runner_id;
  return t;
}

void encode_heartbeat(const Heartbeat& hb, std::string& out) {
  out.clear();
  Packer p(out);
  pack_heartbeat(p, hb, true);
}

std::string encode_heartbeat(const Heartbeat& hb) {
  std::string out;
  encode_heartbeat(hb, out);
  return out;
}

std::string encode_timeout_event(const TimeoutEvent& ev) {
  return encode_with([&](Packer& p) {
    p.pack_map(runner_info_keys(ev.runner) + 8);
    pack_kv(p, "v", kVersion);
    pack_kv(p, "type", kTimeoutType);
    pack_kv(p, "event_id", ev.event_id);
    pack_runner_info(p, ev.runner);
    pack_kv(p, "last_seq", ev.last_seq);
    pack_kv(p, "last_heartbeat_ms", ev.last_heartbeat_ms);
    pack_kv(p, "detected_at_ms", ev.detected_at_ms);
    pack_kv(p, "timeout_ms", ev.timeout_ms);
    pack_kv(p, "delivery", ev.delivery);
  });
}

std::string encode_ack(const Ack& ack) {
  return encode_with([&](Packer& p) {
    p.pack_map(4);
    pack_kv(p, "v", kVersion);
    pack_kv(p, "type", kAckType);
    pack_kv(p, "group", ack.group);
    pack_kv(p, "event_id", ack.event_id);
  });
}

std::string encode_control_request(const ControlRequest& req) {
  return encode_with([&](Packer& p) {
    p.pack_map(2 + (req.runner_id ? 1 : 0) + (req.state ? 1 : 0) + (req.pool ? 1 : 0) +
               (req.limit ? 1 : 0) + (req.after ? 1 : 0) + (req.runner ? 1 : 0) +
               (req.runner_ids ? 1 : 0));
    pack_kv(p, "v", kVersion);
    pack_kv(p, "op", to_string(req.op));
    if (req.runner_id) pack_kv(p, "runner_id", *req.runner_id);
    if (req.state) pack_kv(p, "state", to_string(*req.state));
    if (req.pool) pack_kv(p, "pool", *req.pool);
    if (req.limit) pack_kv(p, "limit", *req.limit);
    if (req.after) pack_kv(p, "after", *req.after);
    if (req.runner) {
      pack_str(p, "runner");
      pack_heartbeat(p, *req.runner, false);
    }
    if (req.runner_ids) {
      pack_str(p, "runner_ids");
      p.pack_array(static_cast<uint32_t>(req.runner_ids->size()));
      for (const std::string& id : *req.runner_ids) pack_str(p, id);
    }
  });
}

std::size_t encoded_size_bound(const RunnerView& v) {
  // Every key, the map header, eight integers at 9 bytes, pool_type and state
  // come to under 320 bytes; each string adds at most a 5-byte header.
  const auto str = [](const std::optional<std::string>& s) { return s ? s->size() + 5 : 0; };
  return 320 + v.runner.runner_id.size() + v.runner.task_id.size() + v.runner.pool.size() + 15 +
         str(v.runner.container_id) + str(v.runner.job_name) +
         (v.runner.progress ? v.runner.progress->size() : 0);
}

std::string encode_control_reply(const ControlReply& r) {
  return encode_with([&](Packer& p) {
    if (!r.ok) {
      p.pack_map(3);
      pack_kv(p, "ok", false);
      pack_kv(p, "error", r.error);
      pack_kv(p, "detail", r.detail);
      return;
    }
    // `runners` carries a `list`'s views or a `lookup`'s entries: one of them.
    const bool list = r.runners && !r.lookup;
    p.pack_map(static_cast<uint32_t>(1 + (r.version ? 1 : 0) + (r.runner ? 1 : 0) +
                                     (list || r.lookup ? 1 : 0) + (r.more ? 1 : 0) +
                                     (r.count ? 1 : 0) + (r.removed ? 1 : 0) +
                                     (r.uptime_ms ? 1 : 0) + r.stats.size()));
    pack_kv(p, "ok", true);
    if (r.version) pack_kv(p, "version", *r.version);
    if (r.runner) {
      pack_str(p, "runner");
      pack_runner_view(p, *r.runner);
    }
    if (list) {
      pack_str(p, "runners");
      p.pack_array(static_cast<uint32_t>(r.runners->size()));
      for (const RunnerView& v : *r.runners) pack_runner_view(p, v);
    }
    if (r.more) pack_kv(p, "more", *r.more);
    if (r.count) pack_kv(p, "count", *r.count);
    if (r.removed) pack_kv(p, "removed", *r.removed);
    if (r.lookup) {
      pack_str(p, "runners");
      p.pack_array(static_cast<uint32_t>(r.lookup->size()));
      for (const auto& e : *r.lookup) pack_lookup_entry(p, e);
    }
    if (r.uptime_ms) pack_kv(p, "uptime_ms", *r.uptime_ms);
    for (const auto& [name, value] : r.stats) pack_kv(p, name, value);
  });
}

}  // namespace rmon::protocol
