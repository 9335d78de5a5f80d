// rmon-ctl pools ...: the pool-manager's API (status, stats); and rmon-ctl
// ping, which asks every service at once.

#include <chrono>
#include <memory>
#include <ostream>
#include <thread>

#include "ctl/ctl.hpp"
#include "ctl/format.hpp"

namespace rmon::ctl {

using protocol::MapBuilder;
using protocol::MapReader;
using protocol::Status;

namespace {

// Renders a status reply as two tables: the pools, then who holds slots.
Status print_status(Ctl& ctl, const std::string& reply) {
  Table pools({"POOL", "TYPE", "SLOTS", "IN_USE"}, {false, false, true, true});
  Table holders({"POOL", "SLOT", "RUNNER", "TASK", "ATTEMPT", "SINCE"},
                {false, true, false, false, true, false});
  auto m = MapReader::parse(reply, protocol::kMaxReplyFrame);
  if (!m) return m.error();
  std::vector<MapReader> ps;
  if (Status s = m.value().opt_maps("pools", ps); !s) return s;
  std::optional<bool> truncated;
  if (Status s = m.value().opt_bool("truncated", truncated); !s) return s;
  bool unconfigured = false;
  for (const MapReader& p : ps) {
    std::string name, type;
    uint64_t slots = 0, in_use = 0;
    std::vector<MapReader> hs;
    Status s = p.str("name", name);
    if (s) s = p.str("type", type);
    if (s) s = p.u64("slots", slots);
    if (s) s = p.u64("in_use", in_use);
    if (s) s = p.opt_maps("holders", hs);
    std::optional<bool> configured;
    if (s) s = p.opt_bool("configured", configured);
    if (!s) return s;
    const bool gone = configured == false;
    unconfigured = unconfigured || gone;
    pools.add({cell(name) + (gone ? "*" : ""), cell(type), std::to_string(slots),
               std::to_string(in_use)});
    for (const MapReader& h : hs) {
      uint64_t slot = 0, attempt = 0;
      std::string runner_id, task_id;
      int64_t since = 0;
      Status t = h.u64("slot", slot);
      if (t) t = h.str("runner_id", runner_id);
      if (t) t = h.str("task_id", task_id);
      if (t) t = h.u64("attempt", attempt);
      if (t) t = h.i64("since_ms", since);
      if (!t) return t;
      holders.add({cell(name), std::to_string(slot), cell(runner_id), cell(task_id),
                   std::to_string(attempt), utc_time(since)});
    }
  }
  pools.print(ctl.out);
  if (unconfigured) {
    ctl.out << "* no longer configured: held slots are shown and released as usual, never "
               "handed out again\n";
  }
  if (holders.size()) {
    ctl.out << "\n";
    holders.print(ctl.out);
  }
  if (truncated == true) {
    ctl.err << "rmon-ctl: the pool-manager cut the holder lists to keep its reply under 16 MiB\n";
  }
  return {};
}

// Whether a failed ping still heard the service: an error reply is an answer;
// no reply, a reply that does not parse and a refused key (not_enrolled: the
// handshake never completed, so a health check must not pass) are not.
bool answered(const runner::ApiError& e) {
  return e.code != "timeout" && e.code != "bad_reply" && e.code != "not_enrolled";
}

}  // namespace

void add_pool_commands(CLI::App& app, Ctl& ctl) {
  auto* g = app.add_subcommand("pools", "pool-manager: pools, slots and holders");
  g->require_subcommand(1);
  {
    auto pool = std::make_shared<std::string>();
    auto* sub = g->add_subcommand("status", "Each pool's slots and who holds them");
    sub->add_option("--pool", *pool, "Only this pool");
    sub->callback([&ctl, pool] {
      ctl.action = [&ctl, pool] {
        MapBuilder f;
        if (!pool->empty()) f.str("pool", *pool);
        auto r = ctl.call(Service::kPoolManager, "status", f);
        if (!r) return ctl.report(Service::kPoolManager, r.error());
        if (ctl.opt.json) {
          ctl.print_json(r.value());
          return int{kOk};
        }
        if (Status s = print_status(ctl, r.value()); !s) {
          return ctl.report(Service::kPoolManager, {"bad_reply", s.error().to_string()});
        }
        return int{kOk};
      };
    });
  }
  g->add_subcommand("stats", "The pool-manager's counters")->callback([&ctl] {
    ctl.action = [&ctl] {
      auto r = ctl.call(Service::kPoolManager, "stats");
      if (!r) return ctl.report(Service::kPoolManager, r.error());
      ctl.print_counters(r.value());
      return int{kOk};
    };
  });
}

void add_ping_command(CLI::App& app, Ctl& ctl) {
  auto only = std::make_shared<std::string>();
  auto* sub = app.add_subcommand(
      "ping",
      "Ping every service at once; exit 0 only if all answered (an error reply is an answer, "
      "and is shown); for health checks");
  sub->add_option("--service", *only, "Ping only this one")
      ->check(CLI::IsMember({"monitor", "task-queue", "pool-manager"}));
  sub->callback([&ctl, only] {
    ctl.action = [&ctl, only] {
      struct Result {
        Service service;
        std::optional<runner::ApiError> error;
        std::optional<uint64_t> version;
        int64_t ms = 0;
      };
      std::vector<Result> results;
      for (Service s : kServices) {
        if (only->empty() || *only == name(s)) {
          results.push_back({s, {}, {}, 0});
          (void)ctl.client(s);  // a malformed endpoint fails here, before any thread
        }
      }
      std::vector<std::thread> threads;
      for (Result& res : results) {
        threads.emplace_back([&ctl, &res] {
          const auto t0 = std::chrono::steady_clock::now();
          auto r = ctl.client(res.service).call("ping");
          res.ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - t0)
                       .count();
          if (!r) {
            res.error = r.error();
            return;
          }
          auto m = MapReader::parse(r.value(), protocol::kMaxReplyFrame);
          if (m) (void)m.value().opt_u64("version", res.version);
        });
      }
      for (auto& t : threads) t.join();

      // Any reply is an answer (the service is up); an error reply is shown.
      int rc = kOk;
      for (const Result& res : results) {
        if (!res.error) continue;
        if (res.error->code == "timeout") {
          rc = kNoAnswer;
        } else if (!answered(*res.error) && rc == kOk) {
          rc = kServiceError;
        }
      }
      if (ctl.opt.json) {
        std::vector<std::string> items;
        for (const Result& res : results) {
          MapBuilder b;
          b.str("service", name(res.service))
              .str("endpoint", ctl.opt.endpoint(res.service))
              .boolean("answered", !res.error || answered(*res.error))
              .boolean("ok", !res.error)
              .opt_u64("version", res.version)
              .i64("ms", res.ms);
          if (res.error) b.str("error", res.error->code).str("detail", res.error->detail);
          items.push_back(b.finish());
        }
        ctl.print_json(
            MapBuilder().boolean("answered", rc == kOk).array("services", items).finish());
        return rc;
      }
      Table t({"SERVICE", "ENDPOINT", "ANSWER", "MS"}, {false, false, false, true});
      for (const Result& res : results) {
        std::string answer;
        if (!res.error) {
          answer = "ok";
          if (res.version) answer += ", version " + std::to_string(*res.version);
        } else if (res.error->code == "timeout") {
          answer = "none within " + std::to_string(ctl.opt.timeout_ms) + " ms";
        } else if (!answered(*res.error)) {
          answer = res.error->code + ": " + cell(res.error->detail);
        } else {
          answer = "answered error " + res.error->code + ": " + cell(res.error->detail);
        }
        t.add({std::string(name(res.service)), ctl.opt.endpoint(res.service), answer,
               std::to_string(res.ms)});
      }
      t.print(ctl.out);
      return rc;
    };
  });
}

}  // namespace rmon::ctl
