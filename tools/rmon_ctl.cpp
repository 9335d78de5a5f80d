// rmon-ctl: control and query client for a runner-monitor (ROUTER socket).
//   rmon-ctl ping | stats | get ID | list [--state S] [--pool P] [--limit N] [--after ID]
//   rmon-ctl count [--state S] [--pool P] | remove ID | set-state ID STATE
//   rmon-ctl add --runner-id ID --task-id T --pool P [--pool-type K] [--timeout-ms N]

#include <CLI/CLI.hpp>

#include <iostream>

#include "rmon/protocol/codec.hpp"
#include "rmon/version.hpp"
#include "rmon/zmq_util.hpp"

namespace p = rmon::protocol;

namespace {

void print_runner(const p::RunnerView& v) {
  std::cout << "runner_id=" << v.runner.runner_id << " task_id=" << v.runner.task_id
            << " attempt=" << v.runner.attempt << " pool=" << v.runner.pool
            << " pool_type=" << p::to_string(v.runner.pool_type)
            << " state=" << p::to_string(v.state) << " last_seq=" << v.last_seq
            << " silence_ms=" << v.silence_ms << " timeout_ms=" << v.timeout_ms;
  if (v.runner.pid) std::cout << " pid=" << *v.runner.pid;
  if (v.runner.container_id) std::cout << " container_id=" << *v.runner.container_id;
  if (v.runner.job_name) std::cout << " job_name=" << *v.runner.job_name;
  std::cout << "\n";
}

std::optional<p::RunnerState> state_arg(const std::string& s) {
  if (s.empty()) return std::nullopt;
  auto st = p::parse_runner_state(s);
  if (!st) throw CLI::ValidationError("state", "unknown state '" + s + "'");
  return st;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Control and query client for runner-monitor", "rmon-ctl");
  app.set_version_flag("--version", std::string("rmon-ctl ") + RMON_VERSION);
  std::string endpoint = "tcp://127.0.0.1:5559";
  int timeout_ms = 3000;
  app.add_option("--endpoint", endpoint, "Monitor control endpoint")
      ->envname("RMON_CONTROL_ENDPOINT")
      ->capture_default_str();
  app.add_option("--timeout-ms", timeout_ms, "How long to wait for the reply")
      ->capture_default_str();
  app.require_subcommand(1);

  p::ControlRequest req;
  std::string runner_id, state, pool, pool_type = "local-process", task_id, after;
  uint64_t limit = 0, timeout = 0, attempt = 1;
  app.add_subcommand("ping", "Check the monitor answers")->callback([&] { req.op = p::Op::kPing; });
  app.add_subcommand("stats", "Print the monitor's counters")->callback([&] {
    req.op = p::Op::kStats;
  });
  auto* get = app.add_subcommand("get", "Show one runner");
  get->add_option("runner_id", runner_id)->required();
  get->callback([&] {
    req.op = p::Op::kGet;
    req.runner_id = runner_id;
  });
  for (auto* sub : {app.add_subcommand("list", "List runners (sorted by id)"),
                    app.add_subcommand("count", "Count runners")}) {
    sub->add_option("--state", state, "running, suspect, completed or failed");
    sub->add_option("--pool", pool, "Pool name");
    if (sub->get_name() == "list") {
      sub->add_option("--limit", limit, "At most this many (the monitor's default: 1000)");
      sub->add_option("--after", after, "Only runner ids after this one (the next page)");
    }
    sub->callback([&, sub] {
      req.op = sub->get_name() == "list" ? p::Op::kList : p::Op::kCount;
      req.state = state_arg(state);
      if (!pool.empty()) req.pool = pool;
      if (limit) req.limit = limit;
      if (!after.empty()) req.after = after;
    });
  }
  auto* rm = app.add_subcommand("remove", "Forget a runner");
  rm->add_option("runner_id", runner_id)->required();
  rm->callback([&] {
    req.op = p::Op::kRemove;
    req.runner_id = runner_id;
  });
  auto* set = app.add_subcommand("set-state", "Set a runner's state");
  set->add_option("runner_id", runner_id)->required();
  set->add_option("state", state, "running, completed or failed")->required();
  set->callback([&] {
    req.op = p::Op::kSetState;
    req.runner_id = runner_id;
    req.state = state_arg(state);
  });
  auto* add = app.add_subcommand("add", "Start tracking a runner");
  add->add_option("--runner-id", runner_id)->required();
  add->add_option("--task-id", task_id)->required();
  add->add_option("--pool", pool)->required();
  add->add_option("--pool-type", pool_type)->capture_default_str();
  add->add_option("--attempt", attempt)->capture_default_str();
  add->add_option("--timeout-ms", timeout, "0 uses the monitor's default");
  add->callback([&] {
    req.op = p::Op::kAdd;
    p::Heartbeat hb;
    hb.runner.runner_id = runner_id;
    hb.runner.task_id = task_id;
    hb.runner.pool = pool;
    hb.runner.attempt = attempt;
    auto pt = p::parse_pool_type(pool_type);
    if (!pt) throw CLI::ValidationError("pool-type", "unknown pool type '" + pool_type + "'");
    hb.runner.pool_type = *pt;
    if (timeout) hb.timeout_ms = timeout;
    req.runner = hb;
  });
  CLI11_PARSE(app, argc, argv);

  zmq::context_t ctx;
  rmon::SocketOptions opts;
  opts.recv_timeout_ms = timeout_ms;
  opts.send_timeout_ms = timeout_ms;
  auto sock = rmon::make_socket(ctx, zmq::socket_type::req, opts);
  sock.connect(endpoint);
  if (!rmon::send_frames(sock, {p::encode_control_request(req)}, zmq::send_flags::none)) {
    std::cerr << "rmon-ctl: could not send to " << endpoint << "\n";
    return 1;
  }
  std::vector<zmq::message_t> frames;
  if (!rmon::recv_frames(sock, frames) || frames.size() != 1) {
    std::cerr << "rmon-ctl: no reply from " << endpoint << " within " << timeout_ms << " ms\n";
    return 1;
  }
  auto reply = p::decode_control_reply(frames[0].to_string_view());
  if (!reply) {
    std::cerr << "rmon-ctl: bad reply: " << reply.error().to_string() << "\n";
    return 1;
  }
  const p::ControlReply& r = reply.value();
  if (!r.ok) {
    std::cerr << "error=" << r.error << " detail=" << r.detail << "\n";
    return 3;
  }
  if (r.version) std::cout << "ok version=" << *r.version << "\n";
  if (r.runner) print_runner(*r.runner);
  if (r.runners) {
    for (const auto& v : *r.runners) print_runner(v);
    if (r.more.value_or(false) && !r.runners->empty()) {
      std::cerr << "more runners match: rmon-ctl list --after "
                << r.runners->back().runner.runner_id
                << " (with the same filters) for the next page\n";
    }
  }
  if (r.count) std::cout << *r.count << "\n";
  if (r.removed) std::cout << "removed=" << (*r.removed ? "true" : "false") << "\n";
  for (const auto& [k, v] : r.stats) std::cout << k << "=" << v << "\n";
  if (req.op == p::Op::kAdd || req.op == p::Op::kSetState) std::cout << "ok\n";
  return 0;
}
