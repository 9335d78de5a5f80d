// rmon-ctl runners ...: the runner-monitor's control API.

#include <memory>
#include <ostream>

#include "ctl/ctl.hpp"
#include "ctl/format.hpp"
#include "rmon/protocol/codec.hpp"

namespace rmon::ctl {

namespace p = rmon::protocol;

namespace {

const std::vector<std::string> kStates{"running", "suspect", "completed", "failed"};

std::optional<p::RunnerState> state_of(const std::string& s) {
  if (s.empty()) return std::nullopt;
  return p::parse_runner_state(s);  // checked by CLI::IsMember
}

struct Filter {
  std::string state, pool;
  void add(CLI::App* sub) {
    sub->add_option("--state", state, "Only runners in this state")->check(CLI::IsMember(kStates));
    sub->add_option("--pool", pool, "Only runners of this pool");
  }
  void apply(p::ControlRequest& req) const {
    req.state = state_of(state);
    if (!pool.empty()) req.pool = pool;
  }
};

// Runs one monitor request; `show` prints a successful reply.
template <class Show>
int run(Ctl& ctl, const p::ControlRequest& req, Show&& show) {
  auto r = ctl.monitor(req);
  if (!r) return ctl.report(Service::kMonitor, r.error());
  if (ctl.opt.json) {
    ctl.print_json(r->raw);
  } else {
    show(r.value());
  }
  return kOk;
}

}  // namespace

void add_runner_commands(CLI::App& app, Ctl& ctl) {
  auto* g = app.add_subcommand("runners", "runner-monitor: runners, counters and control");
  g->require_subcommand(1);

  {
    struct Args {
      ListArgs list;
      Filter filter;
    };
    auto a = std::make_shared<Args>();
    auto* sub = g->add_subcommand("list", "List runners, sorted by id");
    a->filter.add(sub);
    add_list_options(*sub, a->list, "runner");
    sub->callback([&ctl, a] {
      ctl.action = [&ctl, a] {
        ListSpec spec{Service::kMonitor,
                      "runners",
                      {"RUNNER", "TASK", "ATTEMPT", "POOL", "STATE", "SILENCE_MS"},
                      {false, false, true, false, false, true},
                      "rmon-ctl runners list"};
        return run_list(
            ctl, a->list, spec,
            [&ctl, a](const std::string& after, uint64_t limit) -> runner::Outcome<Page> {
              p::ControlRequest req;
              req.op = p::Op::kList;
              a->filter.apply(req);
              if (limit) req.limit = limit;
              if (!after.empty()) req.after = after;
              auto r = ctl.monitor(req);
              if (!r) return r.error();
              Page page;
              page.more = r->reply.more.value_or(false);
              for (const p::RunnerView& v :
                   r->reply.runners.value_or(std::vector<p::RunnerView>{})) {
                page.rows.push_back({cell(v.runner.runner_id), cell(v.runner.task_id),
                                     std::to_string(v.runner.attempt), cell(v.runner.pool),
                                     std::string(p::to_string(v.state)),
                                     std::to_string(v.silence_ms)});
                page.last_id = v.runner.runner_id;
              }
              page.raw = std::move(r->raw);
              return page;
            });
      };
    });
  }
  {
    auto id = std::make_shared<std::string>();
    auto* sub = g->add_subcommand("get", "Show one runner");
    sub->add_option("runner_id", *id, "Runner id")->required();
    sub->callback([&ctl, id] {
      ctl.action = [&ctl, id] {
        p::ControlRequest req;
        req.op = p::Op::kGet;
        req.runner_id = *id;
        return run(ctl, req, [&](const MonitorReply& r) { ctl.print_entity(r.raw, "runner"); });
      };
    });
  }
  {
    auto f = std::make_shared<Filter>();
    auto* sub = g->add_subcommand("count", "Count runners");
    f->add(sub);
    sub->callback([&ctl, f] {
      ctl.action = [&ctl, f] {
        p::ControlRequest req;
        req.op = p::Op::kCount;
        f->apply(req);
        return run(ctl, req,
                   [&](const MonitorReply& r) { ctl.out << r.reply.count.value_or(0) << "\n"; });
      };
    });
  }
  {
    auto ids = std::make_shared<std::vector<std::string>>();
    auto* sub = g->add_subcommand(
        "lookup", "Short state of up to 1000 runners, as reconciliation sees it (in order)");
    sub->add_option("runner_ids", *ids, "Runner ids")->required();
    sub->callback([&ctl, ids] {
      ctl.action = [&ctl, ids]() -> int {
        if (ids->size() > p::kMaxLookupIds) {
          throw UsageError("a lookup takes at most " + std::to_string(p::kMaxLookupIds) +
                           " runner ids");
        }
        p::ControlRequest req;
        req.op = p::Op::kLookup;
        req.runner_ids = *ids;
        // Not ctl.monitor(): a lookup's `runners` (nil or a short map each)
        // has a reply decoder of its own.
        auto raw = ctl.client(Service::kMonitor).exchange(p::encode_control_request(req));
        if (!raw) return ctl.report(Service::kMonitor, raw.error());
        auto r = p::decode_lookup_reply(raw.value());
        if (!r || (r->ok && r->runners.size() != ids->size())) {
          return ctl.report(Service::kMonitor,
                            {"bad_reply", r ? "wrong number of runners" : r.error().to_string()});
        }
        if (!r->ok) return ctl.report(Service::kMonitor, {r->error, r->detail});
        if (ctl.opt.json) {
          ctl.print_json(raw.value());
          return kOk;
        }
        Table t({"RUNNER", "TASK", "ATTEMPT", "STATE", "TIMED_OUT", "STATE_FOR_MS"},
                {false, false, true, false, false, true});
        for (std::size_t i = 0; i < ids->size(); ++i) {
          const auto& e = r->runners[i];
          if (!e) {
            t.add({cell((*ids)[i]), "-", "-", "unknown", "-", "-"});
            continue;
          }
          t.add({cell((*ids)[i]), cell(e->task_id), std::to_string(e->attempt),
                 std::string(p::to_string(e->state)), e->timed_out ? "yes" : "no",
                 std::to_string(e->state_for_ms)});
        }
        t.print(ctl.out);
        return kOk;
      };
    });
  }
  g->add_subcommand("stats", "The monitor's counters")->callback([&ctl] {
    ctl.action = [&ctl] {
      p::ControlRequest req;
      req.op = p::Op::kStats;
      return run(ctl, req, [&](const MonitorReply& r) { ctl.print_counters(r.raw); });
    };
  });
  g->add_subcommand("release-brake",
                    "Release the monitor's storm brake: the runners it holds time out now")
      ->callback([&ctl] {
        ctl.action = [&ctl] {
          p::ControlRequest req;
          req.op = p::Op::kReleaseBrake;
          return run(ctl, req, [&](const MonitorReply& r) {
            uint64_t engaged = 0, held = 0;
            for (const auto& [k, v] : r.reply.stats) {
              if (k == "brake_engaged") engaged = v;
              if (k == "brake_held") held = v;
            }
            ctl.out << (engaged ? "storm brake released; " + std::to_string(held) +
                                      " held runners time out now\n"
                                : std::string("storm brake was not engaged; it stays off until "
                                              "the silent share falls back\n"));
          });
        };
      });
  g->add_subcommand("ping", "Check the monitor answers")->callback([&ctl] {
    ctl.action = [&ctl] {
      p::ControlRequest req;
      req.op = p::Op::kPing;
      return run(ctl, req, [&](const MonitorReply& r) {
        ctl.out << "monitor answered (protocol version " << r.reply.version.value_or(0) << ")\n";
      });
    };
  });
  {
    struct Args {
      std::string runner_id, task_id, pool, pool_type = "local-process", container_id, job_name;
      uint64_t attempt = 1, timeout_ms = 0, pid = 0;
    };
    auto a = std::make_shared<Args>();
    auto* sub = g->add_subcommand("add", "Start tracking a runner (as a first heartbeat would)");
    sub->add_option("--runner-id", a->runner_id)->required();
    sub->add_option("--task-id", a->task_id)->required();
    sub->add_option("--pool", a->pool)->required();
    sub->add_option("--pool-type", a->pool_type)
        ->check(CLI::IsMember({"local-process", "docker", "kubernetes"}))
        ->capture_default_str();
    sub->add_option("--attempt", a->attempt)->check(CLI::PositiveNumber)->capture_default_str();
    sub->add_option("--runner-timeout-ms", a->timeout_ms,
                    "The runner's timeout (default: the monitor's)");
    sub->add_option("--pid", a->pid, "Process id (local-process)");
    sub->add_option("--container-id", a->container_id, "Container id (docker)");
    sub->add_option("--job-name", a->job_name, "Job name (kubernetes)");
    sub->callback([&ctl, a] {
      ctl.action = [&ctl, a] {
        p::ControlRequest req;
        req.op = p::Op::kAdd;
        p::Heartbeat hb;
        hb.runner.runner_id = a->runner_id;
        hb.runner.task_id = a->task_id;
        hb.runner.pool = a->pool;
        hb.runner.attempt = a->attempt;
        hb.runner.pool_type = *p::parse_pool_type(a->pool_type);
        if (a->pid) hb.runner.pid = a->pid;
        if (!a->container_id.empty()) hb.runner.container_id = a->container_id;
        if (!a->job_name.empty()) hb.runner.job_name = a->job_name;
        if (a->timeout_ms) hb.timeout_ms = a->timeout_ms;
        req.runner = hb;
        return run(ctl, req,
                   [&](const MonitorReply&) { ctl.out << "added " << a->runner_id << "\n"; });
      };
    });
  }
  {
    auto id = std::make_shared<std::string>();
    auto* sub = g->add_subcommand("remove", "Forget a runner (and its fences)");
    sub->add_option("runner_id", *id, "Runner id")->required();
    sub->callback([&ctl, id] {
      ctl.action = [&ctl, id] {
        p::ControlRequest req;
        req.op = p::Op::kRemove;
        req.runner_id = *id;
        return run(ctl, req, [&](const MonitorReply& r) {
          ctl.out << (r.reply.removed.value_or(false) ? "removed " : "not known, nothing removed: ")
                  << *id << "\n";
        });
      };
    });
  }
  {
    struct Args {
      std::string runner_id, state;
    };
    auto a = std::make_shared<Args>();
    auto* sub = g->add_subcommand("set-state", "Set a runner's state");
    sub->add_option("runner_id", a->runner_id, "Runner id")->required();
    sub->add_option("state", a->state, "running, completed or failed")
        ->required()
        ->check(CLI::IsMember({"running", "completed", "failed"}));
    sub->callback([&ctl, a] {
      ctl.action = [&ctl, a] {
        p::ControlRequest req;
        req.op = p::Op::kSetState;
        req.runner_id = a->runner_id;
        req.state = state_of(a->state);
        return run(ctl, req, [&](const MonitorReply&) {
          ctl.out << a->runner_id << " is " << a->state << "\n";
        });
      };
    });
  }
}

}  // namespace rmon::ctl
