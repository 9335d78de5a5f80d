// runner-sim: N simulated runners play the real protocol against the real
// services (task-queue, pool-manager, runner-monitor); see tools/sim/sim.hpp.
// Optionally submits a workload first, prints a status line per second, and
// at the end a summary whose last line is one JSON object.
//
//   runner-sim --submit 500 --runners 50 --crash-fraction 0.2 [--duration-s N]

#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "rmon/config.hpp"
#include "rmon/logging.hpp"
#include "rmon/protocol/codec.hpp"
#include "rmon/protocol/msgmap.hpp"
#include "rmon/runner/pool_manager_client.hpp"
#include "rmon/runner/task_queue_client.hpp"
#include "sim/sim.hpp"

namespace {

using rmon::protocol::MapBuilder;
using rmon::runner::Outcome;

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

// One look at every service, for the status line and the summary.
struct Snapshot {
  bool ok = true;
  std::map<std::string, uint64_t> tasks, monitor;
  uint64_t slots_in_use = 0, slots_total = 0;
};

class Observer {
 public:
  Observer(zmq::context_t& ctx, const rmon::sim::SimOptions& o)
      : tasks_(ctx, o.task_queue_endpoint, 2000, o.keys.operator_tasks),
        pools_(ctx, o.pool_manager_endpoint, 2000, o.keys.operator_pools),
        monitor_(ctx, o.monitor_endpoint, 2000, o.keys.operator_monitor) {}

  Snapshot take() {
    Snapshot s;
    auto t = tasks_.stats();
    if (t) s.tasks = t.value();
    auto p = pools_.status();
    if (p) {
      for (const auto& pool : p.value()) {
        s.slots_in_use += pool.in_use;
        s.slots_total += pool.slots;
      }
    }
    rmon::protocol::ControlRequest req;
    req.op = rmon::protocol::Op::kStats;
    auto m = monitor_.exchange(rmon::protocol::encode_control_request(req));
    if (m) {
      auto reply = rmon::protocol::decode_control_reply(m.value());
      if (reply && reply->ok) {
        for (const auto& [k, v] : reply->stats) s.monitor[k] = v;
      }
    }
    s.ok = t.ok() && p.ok() && m.ok();
    return s;
  }

 private:
  rmon::runner::TaskQueueClient tasks_;
  rmon::runner::PoolManagerClient pools_;
  rmon::runner::ApiClient monitor_;
};

uint64_t get(const std::map<std::string, uint64_t>& m, const char* k) {
  auto it = m.find(k);
  return it == m.end() ? 0 : it->second;
}

// `key` of the `stats` of each replica that answers, summed (a replica's
// counters are its own: duplicates, for one, are counted where they arrive).
template <class Client>
uint64_t sum_over_replicas(zmq::context_t& ctx, const std::vector<std::string>& endpoints,
                           const std::optional<rmon::security::ClientKeys>& keys, const char* key) {
  uint64_t sum = 0;
  for (const std::string& ep : endpoints) {
    Client c(ctx, ep, 2000, keys);
    if (auto s = c.stats()) sum += get(s.value(), key);
  }
  return sum;
}

void status_line(double secs, const Snapshot& s) {
  std::printf(
      "[%5.0fs] tasks queued %4lu leased %4lu completed %5lu dead %3lu | runners running %4lu "
      "suspect %3lu failed %3lu | slots %3lu/%-3lu | events pending %lu%s\n",
      secs, get(s.tasks, "queued"), get(s.tasks, "leased"), get(s.tasks, "completed"),
      get(s.tasks, "dead"), get(s.monitor, "running"), get(s.monitor, "suspect"),
      get(s.monitor, "failed"), s.slots_in_use, s.slots_total, get(s.monitor, "events_pending"),
      s.ok ? "" : "  (a service did not answer)");
  std::fflush(stdout);
}

// --security curve: the runners' keys and the operator's, per service.
std::string load_keys(const rmon::security::ClientSecurity& runner, std::string operator_secret,
                      rmon::sim::SimKeys& out) {
  namespace sec = rmon::security;
  if (std::string err = runner.validate(); !err.empty()) return err;
  sec::ClientSecurity op = runner;
  if (!operator_secret.empty()) op.secret_file = std::move(operator_secret);
  std::string err;
  const auto load = [&](const sec::ClientSecurity& who, std::string_view service,
                        std::optional<sec::ClientKeys>& into) {
    auto keys = who.keys_for(service);
    if (!keys) {
      if (err.empty()) err = keys.error().message;
      return;
    }
    into = std::move(keys).value();
  };
  load(runner, sec::kMonitorService, out.runner_monitor);
  load(runner, sec::kTaskQueueService, out.runner_tasks);
  load(runner, sec::kPoolManagerService, out.runner_pools);
  load(op, sec::kMonitorService, out.operator_monitor);
  load(op, sec::kTaskQueueService, out.operator_tasks);
  load(op, sec::kPoolManagerService, out.operator_pools);
  return err;
}

}  // namespace

int main(int argc, char** argv) {
  rmon::sim::SimOptions o;
  rmon::Settings s("runner-sim",
                   "Simulated runners that lease tasks, hold slots, heartbeat, crash and come "
                   "back as zombies, through the real services.",
                   "RMON_SIM_");
  s.app().footer(
      "Each setting may also come from RMON_SIM_<FLAG> (e.g. RMON_SIM_POOL); the services' "
      "RMON_<FLAG> variables are not read (the monitor's RMON_HEARTBEAT_ENDPOINT is a bind "
      "address, the pool-manager's RMON_POOL another format).");
  s.add("heartbeat-endpoint", o.heartbeat_endpoints,
        "Each monitor's heartbeat socket (a PUB connects to each), comma separated")
      ->delimiter(',');
  s.add("monitor-endpoint", o.monitor_endpoint,
        "Monitor control socket (several, comma separated: asked in turn when one does not "
        "answer)")
      ->delimiter(',');
  s.add("task-queue-endpoint", o.task_queue_endpoint,
        "task-queue API (replicas: comma separated, the next when one does not answer)")
      ->delimiter(',');
  s.add("pool-manager-endpoint", o.pool_manager_endpoint,
        "pool-manager API (replicas: comma separated)")
      ->delimiter(',');
  s.add("runners", o.runners, "Simulated runners (1..2000)");
  s.add("submit", o.submit, "Tasks to submit before the runners start");
  s.add("pool", o.pools, "Pools the runners use in turn, name:type (repeat or comma separate)")
      ->delimiter(',');
  s.add("work-min-ms", o.work_min_ms, "Shortest piece of work");
  s.add("work-max-ms", o.work_max_ms, "Longest piece of work");
  s.add("interval-ms", o.interval_ms, "Heartbeat period");
  s.add("timeout-ms", o.timeout_ms, "timeout_ms the runners announce");
  s.add("crash-fraction", o.crash_fraction, "Share of runners that crash once");
  s.add("zombie-fraction", o.zombie_fraction, "Share of crashed runners that come back as zombies");
  s.add("restart-delay-ms", o.restart_delay_ms, "How long a crashed runner stays away");
  s.add("duration-s", o.duration_s, "Stop after this long (0: when the workload is done)");
  s.add("settle-ms", o.settle_ms, "At the end, wait this long at most for events and slots");
  s.add("seed", o.seed, "Random seed");
  s.add("summary-file", o.summary_file, "Also write the JSON summary to this file");
  s.add_flag("status", o.status, "Print a status line every second");
  rmon::security::ClientSecurity runner_keys;
  runner_keys.add_options(s.app(), "RMON_SIM_");
  std::string operator_secret_file;
  s.add("curve-operator-secret-file", operator_secret_file,
        "--security curve: the key that submits and reads stats (an admin; default: "
        "--curve-secret-file)");
  if (auto code = s.parse(argc, argv)) return *code;
  rmon::init_logging("runner-sim", s.log_level());
  if (std::string err = load_keys(runner_keys, operator_secret_file, o.keys); !err.empty()) {
    spdlog::error("invalid settings: {}", err);
    return 2;
  }
  if (o.runners < 1 || o.runners > 2000 || o.pools.empty() || o.work_max_ms < o.work_min_ms ||
      o.crash_fraction < 0 || o.crash_fraction > 1 || o.zombie_fraction < 0 ||
      o.zombie_fraction > 1) {
    spdlog::error("invalid settings: see --help");
    return 2;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  zmq::context_t ctx;
  rmon::sim::SimStats stats;
  const auto t0 = std::chrono::steady_clock::now();
  auto secs = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  if (o.submit > 0) {
    rmon::runner::TaskQueueClient tasks(ctx, o.task_queue_endpoint, 10'000, o.keys.operator_tasks);
    for (std::size_t i = 0; i < o.submit && !g_stop; ++i) {
      auto r = tasks.submit(MapBuilder().str("job", "demo").u64("n", i).finish());
      if (!r) {
        spdlog::error("submit failed: {}", r.error().to_string());
        return 1;
      }
      ++stats.submitted;
    }
    std::printf("submitted %lu tasks in %.1f s\n", stats.submitted.load(), secs());
  }

  // Which runners crash, and which of those come back as zombies.
  std::vector<std::size_t> order(o.runners);
  for (std::size_t i = 0; i < o.runners; ++i) order[i] = i;
  std::mt19937_64 rng(o.seed);
  std::shuffle(order.begin(), order.end(), rng);
  const auto crashing =
      static_cast<std::size_t>(o.crash_fraction * static_cast<double>(o.runners) + 0.5);
  const auto zombies =
      static_cast<std::size_t>(o.zombie_fraction * static_cast<double>(crashing) + 0.5);
  std::vector<bool> crash(o.runners, false), zombie(o.runners, false);
  for (std::size_t k = 0; k < crashing; ++k) crash[order[k]] = true;
  for (std::size_t k = 0; k < zombies; ++k) zombie[order[k]] = true;

  std::atomic<bool> stop{false}, done{false};
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < o.runners; ++i) {
    threads.emplace_back(
        [&, i] { rmon::sim::run_runner(o, i, crash[i], zombie[i], stats, stop, done); });
  }
  Observer observer(ctx, o);
  Snapshot snap;
  for (;;) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    snap = observer.take();
    if (o.status) status_line(secs(), snap);
    const bool workload_done = snap.ok && get(snap.tasks, "queued") == 0 &&
                               get(snap.tasks, "leased") == 0 &&
                               get(snap.tasks, "completed") + get(snap.tasks, "dead") > 0;
    if (workload_done && o.duration_s == 0) done = true;
    if (g_stop || done || (o.duration_s > 0 && secs() >= static_cast<double>(o.duration_s))) break;
  }
  stop = true;
  for (auto& t : threads) t.join();

  // Let the monitor's last events land and crashed runners' slots come back.
  const auto settle_until =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(o.settle_ms);
  for (;;) {
    snap = observer.take();
    if (snap.ok && get(snap.monitor, "events_pending") == 0 && snap.slots_in_use == 0) break;
    if (std::chrono::steady_clock::now() > settle_until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (o.status) status_line(secs(), snap);

  const uint64_t submitted = o.submit > 0
                                 ? stats.submitted.load()
                                 : get(snap.tasks, "queued") + get(snap.tasks, "leased") +
                                       get(snap.tasks, "completed") + get(snap.tasks, "dead") +
                                       get(snap.tasks, "cancelled");
  std::printf(
      "summary: %lu tasks submitted, %lu completed, %lu dead; %lu leases by %zu runners in %.1f s\n"
      "  %lu runner crashes (%lu came back as zombies: %lu stale completions refused, %lu "
      "accepted)\n"
      "  monitor: %lu timeouts detected; task-queue: %lu reassignments\n"
      "  slots in use at the end: %lu of %lu; events pending: %lu\n",
      submitted, get(snap.tasks, "completed"), get(snap.tasks, "dead"), stats.leases.load(),
      o.runners, secs(), stats.crashes.load(), stats.zombies.load(), stats.stale_refused.load(),
      stats.zombie_accepted.load(), get(snap.monitor, "timeouts"), get(snap.tasks, "reassigned"),
      snap.slots_in_use, snap.slots_total, get(snap.monitor, "events_pending"));
  const std::string json =
      MapBuilder()
          .u64("tasks_submitted", submitted)
          .u64("tasks_completed", get(snap.tasks, "completed"))
          .u64("tasks_dead", get(snap.tasks, "dead"))
          .u64("tasks_completed_twice", stats.twice())
          .u64("stale_completions_refused", stats.stale_refused.load())
          .u64("zombie_completions_accepted", stats.zombie_accepted.load())
          .u64("runner_crashes", stats.crashes.load())
          .u64("timeouts_detected", get(snap.monitor, "timeouts"))
          .u64("reassignments", get(snap.tasks, "reassigned"))
          .u64("slots_in_use", snap.slots_in_use)
          .u64("events_pending", get(snap.monitor, "events_pending"))
          .u64("runners", o.runners)
          .u64("leases", stats.leases.load())
          .u64("complete_errors", stats.complete_errors.load())
          .u64("client_errors", stats.client_errors.load())
          .u64("failovers", stats.failovers.load())
          .u64("events_duplicate",
               sum_over_replicas<rmon::runner::TaskQueueClient>(
                   ctx, o.task_queue_endpoint, o.keys.operator_tasks, "events_duplicate") +
                   sum_over_replicas<rmon::runner::PoolManagerClient>(
                       ctx, o.pool_manager_endpoint, o.keys.operator_pools, "events_duplicate"))
          .u64("duration_ms", static_cast<uint64_t>(secs() * 1000))
          .finish();
  const std::string line = rmon::protocol::to_json(json);
  if (!o.summary_file.empty()) std::ofstream(o.summary_file) << line << "\n";
  if (o.summary_file.empty()) std::printf("%s\n", line.c_str());
  return snap.ok ? 0 : 1;
}
