// rmon-ctl tasks ...: the task-queue's API (submit, list, get, cancel, stats).

#include <msgpack.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

#include "ctl/ctl.hpp"
#include "ctl/format.hpp"
#include "ctl/json.hpp"
#include "rmon/runner/task_queue_client.hpp"

namespace rmon::ctl {

using protocol::MapBuilder;
using protocol::MapReader;

namespace {

constexpr std::size_t kMaxPayload = 64 * 1024;   // the contract's limit, encoded
constexpr std::size_t kMaxFileBytes = 16 << 20;  // more is surely a mistake

std::string read_file(const std::string& path) {
  std::string data;
  if (path == "-") {
    data.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw UsageError("cannot read " + path + ": " + std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw UsageError("cannot read " + path);
    data = std::move(ss).str();
  }
  if (data.size() > kMaxFileBytes) throw UsageError(path + " is over 16 MiB");
  return data;
}

// Exactly one MessagePack value within the protocol's nesting limit.
void check_msgpack(const std::string& bytes, const std::string& path) {
  if (bytes.empty()) throw UsageError(path + " is empty: expected one MessagePack value");
  std::size_t off = 0;
  try {
    const msgpack::unpack_limit limit(kMaxPayload, kMaxPayload, kMaxPayload, kMaxPayload,
                                      kMaxPayload, protocol::kMaxDepth);
    msgpack::object_handle h =
        msgpack::unpack(bytes.data(), bytes.size(), off, nullptr, nullptr, limit);
  } catch (const std::exception& e) {
    throw UsageError(path + " is not one MessagePack value: " + e.what());
  }
  if (off != bytes.size()) {
    throw UsageError(path + " has " + std::to_string(bytes.size() - off) +
                     " bytes after its first MessagePack value");
  }
}

struct SubmitArgs {
  std::string json, json_file, raw_file, pool, key;
  CLI::Option *json_opt = nullptr, *json_file_opt = nullptr, *raw_file_opt = nullptr;
  int64_t priority = 0;
  uint64_t max_attempts = 5, delay_ms = 0;

  std::string payload() const {
    const int given =
        (json_opt->count() > 0) + (json_file_opt->count() > 0) + (raw_file_opt->count() > 0);
    if (given != 1) {
      throw UsageError(
          "give the payload with exactly one of --payload-json, --payload-file, "
          "--payload-raw-file");
    }
    std::string out;
    if (raw_file_opt->count()) {
      out = read_file(raw_file);
      check_msgpack(out, raw_file);
    } else {
      const bool inline_json = json_opt->count() > 0;
      const std::string what = inline_json        ? "--payload-json"
                               : json_file == "-" ? "stdin"
                                                  : json_file;
      try {
        out = json_to_msgpack(inline_json ? json : read_file(json_file));
      } catch (const JsonError& e) {
        throw UsageError("bad JSON in " + what + ": " + e.what());
      }
    }
    if (out.size() > kMaxPayload) {
      throw UsageError("the payload is " + std::to_string(out.size()) +
                       " bytes encoded; the task-queue takes at most 65536");
    }
    return out;
  }
};

const std::vector<std::string> kTaskStates{"queued", "leased", "completed", "dead", "cancelled"};

std::vector<std::string> task_row(const runner::TaskInfo& t) {
  return {cell(t.task_id),
          t.state,
          std::to_string(t.attempt) + "/" + std::to_string(t.max_attempts),
          std::to_string(t.priority),
          cell(t.pool.value_or("")),
          cell(t.runner_id.value_or("")),
          utc_time(t.updated_at_ms)};
}

runner::Outcome<Page> read_page(std::string raw) {
  Page page;
  auto m = MapReader::parse(raw, protocol::kMaxReplyFrame);
  if (!m) return runner::ApiError{"bad_reply", m.error().to_string()};
  std::vector<MapReader> tasks;
  if (auto s = m.value().opt_maps("tasks", tasks); !s) {
    return runner::ApiError{"bad_reply", s.error().to_string()};
  }
  for (const MapReader& tm : tasks) {
    runner::TaskInfo t;
    if (auto s = runner::read_task(tm, t); !s) {
      return runner::ApiError{"bad_reply", s.error().to_string()};
    }
    page.rows.push_back(task_row(t));
    page.last_id = t.task_id;
  }
  std::optional<bool> more;
  if (auto s = m.value().opt_bool("more", more); !s) {
    return runner::ApiError{"bad_reply", s.error().to_string()};
  }
  page.more = more.value_or(false);
  page.raw = std::move(raw);
  return page;
}

// One task-queue request; `show` prints a successful reply.
template <class Show>
int run(Ctl& ctl, std::string_view op, const MapBuilder& fields, Show&& show) {
  auto r = ctl.call(Service::kTaskQueue, op, fields);
  if (!r) return ctl.report(Service::kTaskQueue, r.error());
  if (ctl.opt.json) {
    ctl.print_json(r.value());
    return kOk;
  }
  return show(r.value());
}

}  // namespace

void add_task_commands(CLI::App& app, Ctl& ctl) {
  auto* g = app.add_subcommand("tasks", "task-queue: submit, list, get, cancel, stats");
  g->require_subcommand(1);

  {
    auto a = std::make_shared<SubmitArgs>();
    auto* sub = g->add_subcommand("submit", "Submit a task; prints its id");
    a->json_opt = sub->add_option("--payload-json", a->json,
                                  "The payload as JSON, e.g. '{\"cmd\": \"train\"}'");
    a->json_file_opt = sub->add_option("--payload-file", a->json_file,
                                       "The payload from a JSON file (- for stdin)");
    a->raw_file_opt = sub->add_option("--payload-raw-file", a->raw_file,
                                      "The payload from a file holding one MessagePack value");
    sub->add_option("--priority", a->priority, "Higher goes first")->capture_default_str();
    sub->add_option("--max-attempts", a->max_attempts, "Attempts before it is dead (1..1000)")
        ->capture_default_str();
    sub->add_option("--pool", a->pool, "Only runners of this pool may lease it");
    sub->add_option("--idempotency-key", a->key,
                    "A second submit with this key returns the first task's id");
    sub->add_option("--delay-ms", a->delay_ms, "Not leased before this delay")
        ->capture_default_str();
    sub->callback([&ctl, a] {
      ctl.action = [&ctl, a] {
        MapBuilder f;
        f.raw("payload", a->payload())
            .i64("priority", a->priority)
            .u64("max_attempts", a->max_attempts)
            .u64("delay_ms", a->delay_ms);
        if (!a->pool.empty()) f.str("pool", a->pool);
        if (!a->key.empty()) f.str("idempotency_key", a->key);
        return run(ctl, "submit", f, [&](const std::string& reply) {
          std::string id;
          bool created = true;
          {
            auto m = MapReader::parse(reply, protocol::kMaxReplyFrame);
            if (m) {
              (void)m.value().str("task_id", id);
              (void)m.value().boolean("created", created);
            }
          }
          ctl.out << id << "\n";
          if (!created) {
            ctl.err << "rmon-ctl: task " << id
                    << " already has this idempotency key: nothing new submitted\n";
          }
          return kOk;
        });
      };
    });
  }
  {
    struct Args {
      ListArgs list;
      std::string state, pool;
    };
    auto a = std::make_shared<Args>();
    auto* sub = g->add_subcommand("list", "List tasks in submission order");
    sub->add_option("--state", a->state, "Only tasks in this state")
        ->check(CLI::IsMember(kTaskStates));
    sub->add_option("--pool", a->pool, "Only tasks of this pool");
    add_list_options(*sub, a->list, "task");
    sub->callback([&ctl, a] {
      ctl.action = [&ctl, a] {
        ListSpec spec{Service::kTaskQueue,
                      "tasks",
                      {"TASK", "STATE", "ATTEMPT", "PRIORITY", "POOL", "RUNNER", "UPDATED"},
                      {false, false, true, true, false, false, false},
                      "rmon-ctl tasks list"};
        return run_list(
            ctl, a->list, spec,
            [&ctl, a](const std::string& after, uint64_t limit) -> runner::Outcome<Page> {
              MapBuilder f;
              if (!a->state.empty()) f.str("state", a->state);
              if (!a->pool.empty()) f.str("pool", a->pool);
              if (limit) f.u64("limit", limit);
              if (!after.empty()) f.str("after", after);
              auto r = ctl.call(Service::kTaskQueue, "list", f);
              if (!r) return r.error();
              return read_page(std::move(r.value()));
            });
      };
    });
  }
  {
    auto id = std::make_shared<std::string>();
    auto* sub = g->add_subcommand("get", "Show one task");
    sub->add_option("task_id", *id, "Task id")->required();
    sub->callback([&ctl, id] {
      ctl.action = [&ctl, id] {
        return run(ctl, "get", MapBuilder().str("task_id", *id), [&](const std::string& reply) {
          ctl.print_entity(reply, "task");
          return kOk;
        });
      };
    });
  }
  {
    auto id = std::make_shared<std::string>();
    auto* sub = g->add_subcommand("cancel", "Cancel a queued or leased task");
    sub->add_option("task_id", *id, "Task id")->required();
    sub->callback([&ctl, id] {
      ctl.action = [&ctl, id] {
        return run(ctl, "cancel", MapBuilder().str("task_id", *id), [&](const std::string& reply) {
          std::string state;
          {
            auto m = MapReader::parse(reply, protocol::kMaxReplyFrame);
            if (m) (void)m.value().str("state", state);
          }
          ctl.out << *id << " " << state << "\n";
          return kOk;
        });
      };
    });
  }
  g->add_subcommand("stats", "The task-queue's counters")->callback([&ctl] {
    ctl.action = [&ctl] {
      return run(ctl, "stats", MapBuilder(), [&](const std::string& reply) {
        ctl.print_counters(reply);
        return kOk;
      });
    };
  });
}

}  // namespace rmon::ctl
