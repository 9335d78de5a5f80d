#pragma once
// Helpers shared by pool-manager's tests: reading reply maps, building
// timeout events and requests, and waiting on observable state.

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../support/wait.hpp"
#include "rmon/protocol/messages.hpp"
#include "rmon/protocol/msgmap.hpp"

namespace rmon::pool::testing {

// The top-level keys of a reply that tests look at.
struct Reply {
  bool decoded = false;
  bool ok = false;
  std::string error, detail;
  std::optional<uint64_t> slot;
  std::optional<bool> released, truncated;
  std::string json;  // the whole reply, for assertions' messages
};

inline Reply read_reply(const std::string& bytes) {
  Reply r;
  r.json = protocol::to_json(bytes);
  auto m = protocol::MapReader::parse(bytes, protocol::kMaxReplyFrame);
  if (!m) return r;
  r.decoded = m->boolean("ok", r.ok).ok();
  std::optional<std::string> error, detail;
  (void)m->opt_str("error", error, 64);
  (void)m->opt_str("detail", detail, 4096);
  r.error = error.value_or("");
  r.detail = detail.value_or("");
  (void)m->opt_u64("slot", r.slot);
  (void)m->opt_bool("released", r.released);
  (void)m->opt_bool("truncated", r.truncated);
  return r;
}

// A top-level unsigned value of a reply (stats counters); nullopt if absent.
inline std::optional<uint64_t> reply_u64(const std::string& bytes, const char* key) {
  auto m = protocol::MapReader::parse(bytes, protocol::kMaxReplyFrame);
  std::optional<uint64_t> out;
  if (m) (void)m->opt_u64(key, out);
  return out;
}

struct HolderView {
  uint64_t slot = 0;
  std::string runner_id;
};
struct PoolReplyView {
  std::string name, type;
  uint64_t slots = 0, in_use = 0;
  bool configured = true;
  std::vector<HolderView> holders;
};

// The `pools` of a status reply.
inline std::vector<PoolReplyView> read_pools(const std::string& bytes) {
  std::vector<PoolReplyView> out;
  auto m = protocol::MapReader::parse(bytes, protocol::kMaxReplyFrame);
  if (!m) return out;
  std::vector<protocol::MapReader> pools;
  if (!m->opt_maps("pools", pools)) return out;
  for (const auto& p : pools) {
    PoolReplyView v;
    (void)p.str("name", v.name);
    (void)p.str("type", v.type);
    (void)p.u64("slots", v.slots);
    (void)p.u64("in_use", v.in_use);
    (void)p.boolean("configured", v.configured);
    std::vector<protocol::MapReader> holders;
    (void)p.opt_maps("holders", holders);
    for (const auto& h : holders) {
      HolderView hv;
      (void)h.u64("slot", hv.slot);
      (void)h.str("runner_id", hv.runner_id);
      v.holders.push_back(hv);
    }
    out.push_back(std::move(v));
  }
  return out;
}

inline protocol::TimeoutEvent timeout_event(const std::string& event_id,
                                            const std::string& runner_id,
                                            const std::string& task_id, uint64_t attempt) {
  protocol::TimeoutEvent ev;
  ev.event_id = event_id;
  ev.runner.runner_id = runner_id;
  ev.runner.task_id = task_id;
  ev.runner.attempt = attempt;
  ev.runner.pool = "local";
  ev.timeout_ms = 1000;
  return ev;
}

inline protocol::MapBuilder acquire_fields(const std::string& pool, const std::string& runner_id,
                                           const std::string& task_id, uint64_t attempt) {
  protocol::MapBuilder b;
  b.str("pool", pool).str("runner_id", runner_id).str("task_id", task_id).u64("attempt", attempt);
  return b;
}

// Polling: rmon::testing::wait_until (tests/support/wait.hpp).
using rmon::testing::wait_until;

}  // namespace rmon::pool::testing
