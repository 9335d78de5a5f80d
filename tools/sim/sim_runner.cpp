#include <spdlog/spdlog.h>

#include <random>
#include <thread>

#include "rmon/protocol/msgmap.hpp"
#include "rmon/runner/heartbeat_publisher.hpp"
#include "rmon/runner/pool_manager_client.hpp"
#include "rmon/runner/task_queue_client.hpp"
#include "sim.hpp"

namespace rmon::sim {

using protocol::MapBuilder;
using runner::HeartbeatOptions;
using runner::HeartbeatPublisher;
using runner::PoolManagerClient;
using runner::TaskInfo;
using runner::TaskQueueClient;

namespace {

struct Pool {
  std::string name;
  protocol::PoolType type = protocol::PoolType::kLocalProcess;
};

Pool pool_of(const SimOptions& o, std::size_t index) {
  const std::string& spec = o.pools[index % o.pools.size()];
  const auto colon = spec.find(':');
  Pool p;
  p.name = spec.substr(0, colon);
  if (colon != std::string::npos) {
    p.type = protocol::parse_pool_type(spec.substr(colon + 1)).value_or(p.type);
  }
  return p;
}

// Sleeps up to `d`, in small steps so that a stop is seen soon.
void nap(std::chrono::milliseconds d, const std::atomic<bool>& stop) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (!stop.load() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(
        std::chrono::milliseconds(20), std::chrono::duration_cast<std::chrono::milliseconds>(
                                           until - std::chrono::steady_clock::now())));
  }
}

}  // namespace

void run_runner(const SimOptions& o, std::size_t index, bool crashes, bool zombie, SimStats& stats,
                const std::atomic<bool>& stop, const std::atomic<bool>& done) {
  zmq::context_t ctx(1);
  TaskQueueClient tasks(ctx, o.task_queue_endpoint, 5000, o.keys.runner_tasks);
  PoolManagerClient pools(ctx, o.pool_manager_endpoint, 5000, o.keys.runner_pools);
  std::mt19937_64 rng(o.seed * 1'000'003 + index);
  std::uniform_int_distribution<uint64_t> work(o.work_min_ms,
                                               std::max(o.work_min_ms, o.work_max_ms));
  // The runner's clients' failovers, added to the stats when it ends.
  struct CountFailovers {
    TaskQueueClient& tasks;
    PoolManagerClient& pools;
    SimStats& stats;
    ~CountFailovers() { stats.failovers += tasks.failovers() + pools.failovers(); }
  } count_failovers{tasks, pools, stats};
  const Pool pool = pool_of(o, index);
  char base[32];
  std::snprintf(base, sizeof base, "sim-%04zu", index);
  int generation = 0;
  while (!stop.load()) {
    const std::string runner_id =
        generation == 0 ? std::string(base) : std::string(base) + "-r" + std::to_string(generation);
    auto leased = tasks.lease(runner_id, pool.name);
    if (!leased) {
      ++stats.client_errors;
      spdlog::warn("lease failed runner_id={} error={}", runner_id, leased.error().to_string());
      nap(std::chrono::milliseconds(200), stop);
      continue;
    }
    if (!leased.value()) {
      if (done.load()) return;
      nap(std::chrono::milliseconds(50), stop);
      continue;
    }
    const TaskInfo task = *leased.value();
    ++stats.leases;
    HeartbeatOptions ho;
    ho.endpoints = o.heartbeat_endpoints;
    ho.runner.runner_id = runner_id;
    ho.runner.task_id = task.task_id;
    ho.runner.attempt = task.attempt;
    ho.runner.pool = pool.name;
    ho.runner.pool_type = pool.type;
    if (pool.type == protocol::PoolType::kLocalProcess) ho.runner.pid = 10'000 + index;
    if (pool.type == protocol::PoolType::kDocker) ho.runner.container_id = "c-" + runner_id;
    if (pool.type == protocol::PoolType::kKubernetes) ho.runner.job_name = "job-" + runner_id;
    ho.interval_ms = o.interval_ms;
    ho.timeout_ms = o.timeout_ms;
    ho.curve = o.keys.runner_monitor;
    HeartbeatPublisher hb(ctx, ho);

    // A slot in the runner's pool; wait while the pool is full.
    bool have_slot = false;
    for (int tries = 0; tries < 200 && !stop.load(); ++tries) {
      auto slot = pools.acquire(pool.name, runner_id, task.task_id, task.attempt);
      if (slot) {
        have_slot = true;
        break;
      }
      if (slot.error().code != "pool_full") {
        spdlog::warn("acquire failed runner_id={} error={}", runner_id, slot.error().to_string());
        break;
      }
      ++stats.pool_full_waits;
      nap(std::chrono::milliseconds(50), stop);
    }
    if (!have_slot) {
      ++stats.slot_failures;
      (void)tasks.fail(task.task_id, task.attempt, std::string("no slot in pool ") + pool.name);
      hb.fail();
      continue;
    }

    // Work, with progress. A crash comes after the monitor has seen a few
    // heartbeats, so it is a timeout, not a first-heartbeat grace.
    const uint64_t duration = work(rng);
    const bool crash_now = crashes && generation == 0;
    const uint64_t crash_at = 3 * o.interval_ms + duration / 2;
    const auto started = std::chrono::steady_clock::now();
    uint64_t step = 0;
    bool crashed = false;
    for (;;) {
      const auto elapsed =
          static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - started)
                                    .count());
      if (crash_now && elapsed >= crash_at) {
        crashed = true;
        break;
      }
      if (!crash_now && elapsed >= duration) break;
      if (stop.load()) break;
      hb.set_progress(MapBuilder().u64("step", ++step).u64("elapsed_ms", elapsed).finish());
      nap(std::chrono::milliseconds(50), stop);
    }
    if (crashed) {
      hb.abandon();  // no terminal state, no complete, no release
      ++stats.crashes;
      spdlog::info("runner crashed runner_id={} task_id={} attempt={}", runner_id, task.task_id,
                   task.attempt);
      if (zombie) {
        // Back from the dead once the task was handed out again: its
        // completion of the old attempt must be refused.
        ++stats.zombies;
        // Watching the task is the operator's read (a runner key may not `get`).
        TaskQueueClient watcher(ctx, o.task_queue_endpoint, 5000, o.keys.operator_tasks);
        for (int i = 0; i < 600 && !stop.load(); ++i) {
          auto t = watcher.get(task.task_id);
          if (t && (t->attempt != task.attempt || t->state != "leased")) break;
          nap(std::chrono::milliseconds(50), stop);
        }
        auto late = tasks.complete(task.task_id, task.attempt);
        if (late) {
          ++stats.zombie_accepted;
          stats.completed(task.task_id);
          spdlog::error("zombie completion accepted task_id={} attempt={}", task.task_id,
                        task.attempt);
        } else if (late.error().code == "stale_attempt" || late.error().code == "conflict") {
          ++stats.stale_refused;
          spdlog::info("zombie completion refused task_id={} attempt={} error={}", task.task_id,
                       task.attempt, late.error().code);
        } else {
          ++stats.client_errors;
        }
      }
      ++generation;
      nap(std::chrono::milliseconds(o.restart_delay_ms), stop);
      continue;
    }
    if (stop.load()) {
      // Interrupted: hand the task back rather than leave it to the monitor.
      (void)tasks.fail(task.task_id, task.attempt, std::string("runner-sim stopped"));
      hb.fail();
      (void)pools.release(runner_id, pool.name);
      return;
    }
    const std::string result = MapBuilder().u64("steps", step).u64("work_ms", duration).finish();
    auto ok = tasks.complete(task.task_id, task.attempt, result);
    // `unavailable` (the store is away for a moment): asked again, as a real
    // runner would, for up to about 10 s.
    for (int i = 0; i < 100 && !ok && ok.error().code == "unavailable" && !stop.load(); ++i) {
      nap(std::chrono::milliseconds(100), stop);
      ok = tasks.complete(task.task_id, task.attempt, result);
    }
    if (ok) {
      ++stats.completions;
      stats.completed(task.task_id);
    } else {
      ++stats.complete_errors;
      spdlog::warn("complete refused runner_id={} task_id={} attempt={} error={}", runner_id,
                   task.task_id, task.attempt, ok.error().to_string());
    }
    hb.complete();
    (void)pools.release(runner_id, pool.name);
  }
}

}  // namespace rmon::sim
