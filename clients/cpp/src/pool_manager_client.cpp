#include "rmon/runner/pool_manager_client.hpp"

#include "rmon/runner/task_queue_client.hpp"  // read_counters

namespace rmon::runner {

using protocol::MapBuilder;
using protocol::MapReader;
using protocol::Status;

Outcome<uint64_t> PoolManagerClient::acquire(const std::string& pool, const std::string& runner_id,
                                             const std::string& task_id, uint64_t attempt) {
  MapBuilder f;
  f.str("pool", pool).str("runner_id", runner_id).str("task_id", task_id).u64("attempt", attempt);
  auto r = api_.call("acquire", f);
  if (!r) return r.error();
  uint64_t slot = 0;
  if (auto err = read_reply(r.value(), [&](const MapReader& m) { return m.u64("slot", slot); })) {
    return *err;
  }
  return slot;
}

Outcome<bool> PoolManagerClient::release(const std::string& runner_id,
                                         const std::optional<std::string>& pool) {
  MapBuilder f;
  f.str("runner_id", runner_id).opt_str("pool", pool);
  auto r = api_.call("release", f);
  if (!r) return r.error();
  bool released = false;
  if (auto err = read_reply(r.value(),
                            [&](const MapReader& m) { return m.boolean("released", released); })) {
    return *err;
  }
  return released;
}

Outcome<std::vector<PoolStatus>> PoolManagerClient::status(const std::optional<std::string>& pool) {
  auto r = api_.call("status", MapBuilder().opt_str("pool", pool));
  if (!r) return r.error();
  std::vector<PoolStatus> out;
  auto err = read_reply(r.value(), [&](const MapReader& m) {
    std::vector<MapReader> pools;
    if (Status s = m.opt_maps("pools", pools); !s) return s;
    for (const MapReader& p : pools) {
      PoolStatus ps;
      std::vector<MapReader> holders;
      Status s = p.str("name", ps.name);
      if (s) s = p.str("type", ps.type);
      if (s) s = p.u64("slots", ps.slots);
      if (s) s = p.u64("in_use", ps.in_use);
      if (s) s = p.opt_maps("holders", holders);
      if (!s) return s;
      for (const MapReader& h : holders) {
        SlotHolder sh;
        Status t = h.u64("slot", sh.slot);
        if (t) t = h.str("runner_id", sh.runner_id);
        if (t) t = h.str("task_id", sh.task_id);
        if (t) t = h.u64("attempt", sh.attempt);
        if (t) t = h.i64("since_ms", sh.since_ms);
        if (!t) return t;
        ps.holders.push_back(std::move(sh));
      }
      out.push_back(std::move(ps));
    }
    return Status{};
  });
  if (err) return *err;
  return out;
}

Outcome<std::map<std::string, uint64_t>> PoolManagerClient::stats() {
  auto r = api_.call("stats");
  if (!r) return r.error();
  return read_counters(r.value());
}

Outcome<Done> PoolManagerClient::ping() {
  auto r = api_.call("ping");
  if (!r) return r.error();
  return Done{};
}

}  // namespace rmon::runner
