#include "ctl/ctl.hpp"

#include <algorithm>
#include <ostream>

#include "ctl/format.hpp"
#include "rmon/protocol/codec.hpp"
#include "rmon/version.hpp"

namespace rmon::ctl {

std::string_view name(Service s) {
  switch (s) {
    case Service::kMonitor:
      return "monitor";
    case Service::kTaskQueue:
      return "task-queue";
    case Service::kPoolManager:
      return "pool-manager";
  }
  return "?";
}

const std::string& Options::endpoint(Service s) const {
  switch (s) {
    case Service::kTaskQueue:
      return task_queue;
    case Service::kPoolManager:
      return pool_manager;
    case Service::kMonitor:
      break;
  }
  return monitor;
}

namespace {

constexpr char kFooter[] = R"(
With --security curve, rmon-ctl is a CURVE client: its own key (an admin for
changes, a reader for reads) and the servers' public keys from
--curve-servers-dir (runner-monitor.key, task-queue.key, pool-manager.key).
Endpoints come from the flags above or RMON_CTL_MONITOR, RMON_CTL_TASK_QUEUE
and RMON_CTL_POOL_MANAGER, the security settings from RMON_CTL_SECURITY,
RMON_CTL_CURVE_SECRET_FILE and RMON_CTL_CURVE_SERVERS_DIR (the services' own
RMON_* variables are not read).
--json and --timeout-ms may also follow the command.

Exit status:
  0  success
  1  a service answered an error (not_found, conflict, ...; code and detail on stderr)
  2  usage error: bad flags, arguments, JSON or files
  3  a service did not answer within --timeout-ms)";

}  // namespace

void Ctl::setup(CLI::App& app) {
  app.set_version_flag("--version", std::string("rmon-ctl ") + RMON_VERSION);
  app.fallthrough();  // global options also after the command
  app.add_option("--monitor", opt.monitor, "runner-monitor control endpoint")
      ->envname("RMON_CTL_MONITOR")
      ->capture_default_str();
  app.add_option("--task-queue", opt.task_queue, "task-queue API endpoint")
      ->envname("RMON_CTL_TASK_QUEUE")
      ->capture_default_str();
  app.add_option("--pool-manager", opt.pool_manager, "pool-manager API endpoint")
      ->envname("RMON_CTL_POOL_MANAGER")
      ->capture_default_str();
  app.add_option("--timeout-ms", opt.timeout_ms, "How long to wait for each reply")
      ->check(CLI::Range(1, 86'400'000))
      ->capture_default_str();
  app.add_flag("--json", opt.json, "Machine output: each reply as one JSON object");
  opt.security.add_options(app, "RMON_CTL_");
  app.require_subcommand(1);
  add_runner_commands(app, *this);
  add_task_commands(app, *this);
  add_pool_commands(app, *this);
  add_ping_command(app, *this);
  app.footer(kFooter);  // after the commands: theirs do not inherit it
}

runner::ApiClient& Ctl::client(Service s) {
  auto& c = clients_[static_cast<std::size_t>(s)];
  if (!c) {
    if (std::string err = opt.security.validate(); !err.empty()) throw UsageError(err);
    const std::string_view key_name = s == Service::kMonitor ? security::kMonitorService : name(s);
    auto keys = opt.security.keys_for(key_name);
    if (!keys) throw UsageError(keys.error().message);
    try {
      c = std::make_unique<runner::ApiClient>(zmq, opt.endpoint(s), opt.timeout_ms,
                                              std::move(keys).value());
    } catch (const zmq::error_t& e) {
      throw UsageError("cannot connect to the " + std::string(name(s)) + " at '" + opt.endpoint(s) +
                       "': " + e.what());
    }
  }
  return *c;
}

runner::Outcome<std::string> Ctl::call(Service s, std::string_view op,
                                       const protocol::MapBuilder& fields) {
  return client(s).call(op, fields);
}

runner::Outcome<MonitorReply> Ctl::monitor(const protocol::ControlRequest& req) {
  auto raw = client(Service::kMonitor).exchange(protocol::encode_control_request(req));
  if (!raw) return raw.error();
  auto reply = protocol::decode_control_reply(raw.value());
  if (!reply) return runner::ApiError{"bad_reply", reply.error().to_string()};
  if (!reply.value().ok) return runner::ApiError{reply.value().error, reply.value().detail};
  return MonitorReply{std::move(reply.value()), std::move(raw.value())};
}

int Ctl::report(Service s, const runner::ApiError& e) {
  if (e.code == "timeout") {
    err << "rmon-ctl: " << name(s) << " did not answer: " << e.detail << "\n";
    return kNoAnswer;
  }
  err << "rmon-ctl: " << name(s) << " error " << e.code << ": " << e.detail << "\n";
  return kServiceError;
}

void Ctl::print_json(std::string_view msgpack_bytes) {
  out << protocol::to_json(msgpack_bytes) << '\n';
}

void Ctl::print_entity(const std::string& reply, std::string_view key) {
  if (opt.json) return print_json(reply);
  std::optional<std::string> map;
  {
    auto m = protocol::MapReader::parse(reply, protocol::kMaxReplyFrame);
    if (m) (void)m.value().opt_raw(key, map, protocol::kMaxReplyFrame);
  }
  print_fields(out, map_fields(map.value_or(std::string())));
}

void Ctl::print_counters(const std::string& reply) {
  if (opt.json) return print_json(reply);
  print_fields(out, map_fields(reply), {"ok", "v"});
}

// --- paging ---

void add_list_options(CLI::App& sub, ListArgs& a, std::string_view what) {
  const std::string w(what);
  sub.add_option("--limit", a.limit, "Page size (default: the service's)");
  sub.add_option("--after", a.after, "Start after this " + w + " id (the next page)");
  sub.add_flag("--all", a.all, "Page through everything (up to --max)");
  sub.add_option("--max", a.max, "With --all: stop after this many")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

namespace {

// The items of `key` in a reply, as JSON without the enclosing brackets.
std::string items_json(const std::string& raw, std::string_view key) {
  std::optional<std::string> arr;
  {
    auto m = protocol::MapReader::parse(raw, protocol::kMaxReplyFrame);
    if (!m || !m.value().opt_raw(key, arr, protocol::kMaxReplyFrame) || !arr) return {};
  }
  std::string j = protocol::to_json(*arr);
  if (j.size() < 2 || j.front() != '[') return {};
  return j.substr(1, j.size() - 2);
}

}  // namespace

int run_list(Ctl& ctl, const ListArgs& a, const ListSpec& spec, const FetchPage& fetch) {
  Table table(spec.headers, spec.right);
  auto hint = [&](const std::string& last) {
    ctl.err << "more " << spec.items_key << " match: " << spec.next_command << " --after " << last
            << " (same filters) for the next page, or --all\n";
  };
  if (!a.all) {
    auto page = fetch(a.after, a.limit);
    if (!page) return ctl.report(spec.service, page.error());
    if (ctl.opt.json) {
      ctl.print_json(page->raw);
    } else {
      for (auto& r : page->rows) table.add(std::move(r));
      table.print(ctl.out);
    }
    if (page->more && !page->last_id.empty()) hint(page->last_id);
    return kOk;
  }
  const uint64_t page_size = a.limit ? a.limit : 1000;
  std::string after = a.after, json;
  uint64_t got = 0;
  bool more = false;
  while (got < a.max) {
    auto page = fetch(after, std::min(page_size, a.max - got));
    if (!page) return ctl.report(spec.service, page.error());
    got += page->rows.size();
    more = page->more;
    if (ctl.opt.json) {
      std::string items = items_json(page->raw, spec.items_key);
      if (!items.empty()) json += (json.empty() ? "" : ",") + items;
    } else {
      for (auto& r : page->rows) table.add(std::move(r));
    }
    if (!page->last_id.empty()) after = page->last_id;
    if (!more || page->rows.empty()) break;
  }
  if (ctl.opt.json) {
    ctl.out << "{\"ok\":true,\"" << spec.items_key << "\":[" << json
            << "],\"more\":" << (more ? "true" : "false") << "}\n";
  } else {
    table.print(ctl.out);
  }
  if (more) {
    ctl.err << "stopped after " << got << " " << spec.items_key << " (--max " << a.max
            << "); more match: " << spec.next_command << " --all --after " << after
            << " (same filters) for the rest\n";
  }
  return kOk;
}

}  // namespace rmon::ctl
