#include "rmon/runner/task_queue_client.hpp"

#include <msgpack.hpp>

namespace rmon::runner {

using protocol::MapBuilder;
using protocol::MapReader;
using protocol::Status;

namespace {
constexpr std::size_t kBig = 64 * 1024 * 1024;

template <class T, class Read>
Outcome<T> decode(Outcome<std::string>&& reply, Read&& read) {
  if (!reply) return reply.error();
  T out{};
  if (auto err = read_reply(reply.value(), [&](const MapReader& m) { return read(m, out); })) {
    return *err;
  }
  return out;
}
}  // namespace

Status read_task(const MapReader& m, TaskInfo& t) {
  Status s;
  auto step = [&](Status x) {
    if (s) s = x;
  };
  std::optional<std::string> payload;
  step(m.str("task_id", t.task_id));
  step(m.str("state", t.state));
  step(m.u64("attempt", t.attempt));
  step(m.u64("max_attempts", t.max_attempts));
  step(m.i64("priority", t.priority));
  step(m.opt_raw("payload", payload, kBig));
  step(m.opt_str("runner_id", t.runner_id));
  step(m.opt_str("pool", t.pool));
  step(m.opt_str("idempotency_key", t.idempotency_key, protocol::kMaxShortString));
  step(m.i64("created_at_ms", t.created_at_ms));
  step(m.i64("updated_at_ms", t.updated_at_ms));
  step(m.i64("available_at_ms", t.available_at_ms));
  step(m.opt_str("last_error", t.last_error, kBig));
  step(m.opt_raw("result", t.result, kBig));
  t.payload = payload.value_or(std::string(1, '\xc0'));
  return s;
}

std::map<std::string, uint64_t> read_counters(std::string_view frame) {
  std::map<std::string, uint64_t> out;
  msgpack::object_handle h;
  try {
    h = msgpack::unpack(frame.data(), frame.size());
  } catch (const std::exception&) {
    return out;
  }
  const msgpack::object& o = h.get();
  if (o.type != msgpack::type::MAP) return out;
  for (uint32_t i = 0; i < o.via.map.size; ++i) {
    const auto& kv = o.via.map.ptr[i];
    if (kv.key.type == msgpack::type::STR && kv.val.type == msgpack::type::POSITIVE_INTEGER) {
      out[std::string(kv.key.via.str.ptr, kv.key.via.str.size)] = kv.val.via.u64;
    }
  }
  return out;
}

Outcome<Submitted> TaskQueueClient::submit(const std::string& payload, const SubmitOptions& o) {
  MapBuilder f;
  f.raw("payload", payload)
      .i64("priority", o.priority)
      .u64("max_attempts", o.max_attempts)
      .opt_str("pool", o.pool)
      .opt_str("idempotency_key", o.idempotency_key)
      .u64("delay_ms", o.delay_ms);
  return decode<Submitted>(api_.call("submit", f), [](const MapReader& m, Submitted& s) {
    if (Status x = m.str("task_id", s.task_id); !x) return x;
    return m.boolean("created", s.created);
  });
}

Outcome<std::optional<TaskInfo>> TaskQueueClient::lease(const std::string& runner_id,
                                                        const std::optional<std::string>& pool) {
  MapBuilder f;
  f.str("runner_id", runner_id).opt_str("pool", pool);
  return decode<std::optional<TaskInfo>>(api_.call("lease", f),
                                         [](const MapReader& m, std::optional<TaskInfo>& out) {
                                           std::optional<MapReader> task;
                                           if (Status x = m.opt_map("task", task); !x) return x;
                                           if (!task) return Status{};
                                           out.emplace();
                                           return read_task(*task, *out);
                                         });
}

Outcome<Done> TaskQueueClient::complete(const std::string& task_id, uint64_t attempt,
                                        const std::optional<std::string>& result) {
  MapBuilder f;
  f.str("task_id", task_id).u64("attempt", attempt).opt_raw("result", result);
  auto r = api_.call("complete", f);
  if (!r) return r.error();
  return Done{};
}

Outcome<std::string> TaskQueueClient::fail(const std::string& task_id, uint64_t attempt,
                                           const std::optional<std::string>& error, bool retry) {
  MapBuilder f;
  f.str("task_id", task_id).u64("attempt", attempt).opt_str("error", error).boolean("retry", retry);
  return decode<std::string>(api_.call("fail", f), [](const MapReader& m, std::string& state) {
    return m.str("state", state);
  });
}

Outcome<std::string> TaskQueueClient::cancel(const std::string& task_id) {
  return decode<std::string>(
      api_.call("cancel", MapBuilder().str("task_id", task_id)),
      [](const MapReader& m, std::string& state) { return m.str("state", state); });
}

Outcome<TaskInfo> TaskQueueClient::get(const std::string& task_id) {
  return decode<TaskInfo>(
      api_.call("get", MapBuilder().str("task_id", task_id)), [](const MapReader& m, TaskInfo& t) {
        std::optional<MapReader> task;
        if (Status x = m.opt_map("task", task); !x) return x;
        if (!task) return Status{protocol::Rejection{protocol::Reason::kMissingField, "task"}};
        return read_task(*task, t);
      });
}

Outcome<TaskPage> TaskQueueClient::list(const TaskFilter& filter) {
  MapBuilder f;
  f.opt_str("state", filter.state)
      .opt_str("pool", filter.pool)
      .u64("limit", filter.limit)
      .opt_str("after", filter.after);
  return decode<TaskPage>(api_.call("list", f), [](const MapReader& m, TaskPage& page) {
    std::vector<MapReader> tasks;
    if (Status x = m.opt_maps("tasks", tasks); !x) return x;
    for (const MapReader& t : tasks) {
      page.tasks.emplace_back();
      if (Status x = read_task(t, page.tasks.back()); !x) return x;
    }
    std::optional<bool> more;
    if (Status x = m.opt_bool("more", more); !x) return x;
    page.more = more.value_or(false);
    return Status{};
  });
}

Outcome<std::map<std::string, uint64_t>> TaskQueueClient::stats() {
  auto r = api_.call("stats");
  if (!r) return r.error();
  return read_counters(r.value());
}

Outcome<Done> TaskQueueClient::ping() {
  auto r = api_.call("ping");
  if (!r) return r.error();
  return Done{};
}

}  // namespace rmon::runner
