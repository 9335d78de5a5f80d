// Reassignment and slot release latency: R runners lease a task each from a
// real task-queue and hold a slot each from a real pool-manager (both --sync
// full, on this disk), and heartbeat through a real monitor; then a known
// subset falls silent. For each, lateness is the moment the service committed
// the task back to the queue (the slot free) minus the runner's deadline
// (last_heartbeat_ms + timeout_ms, the monitor's receipt time): the time
// until the task is leasable again (before its backoff), or the slot free.
//
// Baseline, same run: the monitor's detection lateness at a bare consumer of
// a third group (receive and ack, no storage), i.e. what the task-queue adds.
//
//   reassign_bench [--runners 10000] [--silent 1000] [--interval-ms 1000] [--timeout-ms 3000]
//
// The publisher is a separate process. last_heartbeat_ms has millisecond
// resolution and the commit time is read in ms, so each figure may read up
// to 1 ms high.

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "bench_util.hpp"
#include "fleet.hpp"
#include "pool_service.hpp"
#include "rmon/config.hpp"
#include "rmon/protocol/codec.hpp"
#include "rmon/protocol/msgmap.hpp"
#include "rmon/zmq_util.hpp"
#include "service.hpp"
#include "task_service.hpp"

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;
using rmon::protocol::MapBuilder;
using rmon::protocol::MapReader;

namespace {

struct Params {
  std::size_t runners = 10'000;
  std::size_t silent = 1'000;
  uint64_t interval_ms = 1'000;
  uint64_t timeout_ms = 3'000;
  uint64_t warmup_ms = 5'000;
  uint64_t after_ms = 5'000;
  std::string dir = "bench-data";
  std::string sync = "full";
};

bool is_silent(std::size_t i, const Params& p) { return i % (p.runners / p.silent) == 0; }

int publisher(rmon::bench::Pipe& from_parent, const Params& p) {
  rmon::tools::FleetOptions fo;
  fo.runners = p.runners;
  fo.prefix = "re-";
  fo.pool = "bench";
  fo.timeout_ms = p.timeout_ms;
  fo.interval_ms = p.interval_ms;
  rmon::tools::Fleet fleet(fo);
  const std::string endpoint = from_parent.read_line();
  for (std::size_t i = 0; i < p.runners; ++i) {
    std::istringstream line(from_parent.read_line());
    std::size_t idx = 0;
    std::string task;
    uint64_t attempt = 0;
    line >> idx >> task >> attempt;
    fleet.assign(idx, task, attempt);
  }
  zmq::context_t ctx;
  rmon::SocketOptions o;
  o.send_hwm = 0;
  auto pub = rmon::make_socket(ctx, zmq::socket_type::pub, o);
  pub.connect(endpoint);
  const auto start = SteadyClock::now();
  const auto total = std::chrono::milliseconds(p.warmup_ms + p.after_ms);
  const std::size_t per_slice = std::max<std::size_t>(1, p.runners / p.interval_ms);
  std::size_t next = 0;
  for (uint64_t slice = 0;; ++slice) {
    const auto slice_start = start + std::chrono::milliseconds(slice);
    if (slice_start - start >= total) break;
    std::this_thread::sleep_until(slice_start);
    const bool dying = slice_start - start >= std::chrono::milliseconds(p.warmup_ms);
    for (std::size_t k = 0; k < per_slice; ++k, next = (next + 1) % p.runners) {
      if (dying && is_silent(next, p)) continue;
      fleet.send(pub, next);
    }
  }
  return 0;
}

// Sends every request on one DEALER (pipelined: the service gathers them into
// batches) and returns the replies in order.
std::vector<std::string> pipelined(zmq::context_t& ctx, const std::string& endpoint,
                                   const std::vector<std::string>& requests) {
  rmon::SocketOptions o;
  o.send_hwm = 0;
  o.recv_hwm = 0;
  o.recv_timeout_ms = 60'000;
  auto s = rmon::make_socket(ctx, zmq::socket_type::dealer, o);
  s.connect(endpoint);
  for (const auto& r : requests) rmon::send_frames(s, {r}, zmq::send_flags::none);
  std::vector<std::string> replies;
  zmq::message_t m;
  while (replies.size() < requests.size() && s.recv(m)) replies.push_back(m.to_string());
  return replies;
}

std::string request(const std::string& op, const MapBuilder& fields) {
  MapBuilder m;
  m.u64("v", 1).str("op", op).extend(fields);
  return m.finish();
}

void report(const char* what, std::vector<double> lat, std::size_t expected, std::size_t wrong) {
  const double p50 = rmon::bench::percentile(lat, 50), p99 = rmon::bench::percentile(lat, 99);
  std::printf("  %-44s n %zu  p50 %.2f ms  p99 %.2f ms  max %.2f ms  missed %zu  false %zu\n", what,
              lat.size(), p50, p99, lat.empty() ? 0.0 : lat.back(), expected - lat.size(), wrong);
}

}  // namespace

int main(int argc, char** argv) {
  Params p;
  rmon::Settings s("reassign_bench", "Reassignment latency through a real monitor and task-queue.");
  s.add("runners", p.runners, "Runners, each holding one leased task");
  s.add("silent", p.silent, "How many of them fall silent");
  s.add("interval-ms", p.interval_ms, "Heartbeat period");
  s.add("timeout-ms", p.timeout_ms, "Runner timeout");
  s.add("dir", p.dir, "Scratch data folder on the disk to measure");
  s.add("sync", p.sync, "SQLite synchronous mode of both services: full or normal");
  if (auto code = s.parse(argc, argv)) return *code;
  if (p.silent == 0 || p.silent > p.runners) return 2;
  spdlog::set_level(spdlog::level::err);

  rmon::bench::Pipe to_child;
  const pid_t child = rmon::bench::fork_child([&] { return publisher(to_child, p); });

  const auto data = std::filesystem::absolute(p.dir) / "reassign";
  std::filesystem::remove_all(data);
  rmon::monitor::MonitorConfig mc = rmon::bench::loopback_monitor_config();
  mc.groups.push_back("bare=tcp://127.0.0.1:*");
  rmon::monitor::MonitorService monitor(mc, rmon::SystemClock::instance());
  monitor.start();

  rmon::tq::TaskQueueConfig tc;
  tc.data_dir = data.string();
  tc.sync = p.sync;
  tc.api_endpoint = "tcp://127.0.0.1:*";
  tc.events_endpoints = {monitor.endpoints().groups[0]};
  tc.ack_endpoints = {monitor.endpoints().ack};
  tc.monitor_endpoints = {monitor.endpoints().control};
  tc.metrics_address = "";
  tc.first_heartbeat_grace_ms = 86'400'000;  // heartbeats are measured here, not the grace
  std::mutex mu;
  std::map<std::string, double> requeued;  // task id -> lateness ms
  rmon::tq::TaskQueueService tq(tc, rmon::SystemClock::instance());
  tq.on_reassigned([&](const rmon::protocol::TimeoutEvent& ev, int64_t lateness_ms) {
    std::lock_guard lock(mu);
    requeued.emplace(ev.runner.task_id, static_cast<double>(lateness_ms));
  });
  tq.start();

  rmon::pool::PoolConfig pc;
  pc.data_dir = data.string();
  pc.sync = p.sync;
  pc.api_endpoint = "tcp://127.0.0.1:*";
  pc.events_endpoints = {monitor.endpoints().groups[1]};
  pc.ack_endpoints = {monitor.endpoints().ack};
  pc.monitor_endpoints = {monitor.endpoints().control};
  pc.metrics_address = "";
  pc.first_heartbeat_grace_ms = 86'400'000;
  pc.pools = {"bench=local-process:" + std::to_string(p.runners)};
  std::map<std::string, double> released;  // runner id -> lateness ms
  rmon::pool::PoolManagerService pm(pc, rmon::SystemClock::instance());
  pm.on_released([&](const rmon::protocol::TimeoutEvent& ev, int64_t lateness_ms) {
    std::lock_guard lock(mu);
    released.emplace(ev.runner.runner_id, static_cast<double>(lateness_ms));
  });
  pm.start();

  // Submit and lease one task per runner.
  zmq::context_t ctx;
  const auto t_setup = SteadyClock::now();
  std::vector<std::string> reqs;
  for (std::size_t i = 0; i < p.runners; ++i) {
    reqs.push_back(
        request("submit", MapBuilder().raw("payload", MapBuilder().u64("i", i).finish())));
  }
  (void)pipelined(ctx, tq.endpoints().api, reqs);
  reqs.clear();
  char id[32];
  for (std::size_t i = 0; i < p.runners; ++i) {
    std::snprintf(id, sizeof id, "re-%07zu", i);
    reqs.push_back(request("lease", MapBuilder().str("runner_id", id).str("pool", "bench")));
  }
  const auto leases = pipelined(ctx, tq.endpoints().api, reqs);
  std::set<std::string> silent_tasks, silent_runners;
  std::vector<std::string> acquires;
  to_child.write_line(monitor.endpoints().heartbeat);
  for (const auto& reply : leases) {
    auto m = MapReader::parse(reply);
    std::optional<MapReader> task;
    std::string task_id, runner;
    uint64_t attempt = 0;
    if (!m || !m->opt_map("task", task).ok() || !task || !task->str("task_id", task_id).ok() ||
        !task->u64("attempt", attempt).ok() || !task->str("runner_id", runner).ok()) {
      std::fprintf(stderr, "lease failed: %s\n", rmon::protocol::to_json(reply).c_str());
      return 1;
    }
    const std::size_t idx = std::stoul(runner.substr(3));
    if (is_silent(idx, p)) {
      silent_tasks.insert(task_id);
      silent_runners.insert(runner);
    }
    acquires.push_back(request("acquire", MapBuilder()
                                              .str("pool", "bench")
                                              .str("runner_id", runner)
                                              .str("task_id", task_id)
                                              .u64("attempt", attempt)));
    to_child.write_line(std::to_string(idx) + " " + task_id + " " + std::to_string(attempt));
  }
  for (const auto& reply : pipelined(ctx, pm.endpoints().api, acquires)) {
    auto m = MapReader::parse(reply);
    bool ok = false;
    if (!m || !m->boolean("ok", ok).ok() || !ok) {
      std::fprintf(stderr, "acquire failed: %s\n", rmon::protocol::to_json(reply).c_str());
      return 1;
    }
  }
  const double setup_s = std::chrono::duration<double>(SteadyClock::now() - t_setup).count();

  // The bare consumer: receive, record, ack.
  std::atomic<bool> stop{false};
  std::vector<double> bare;
  std::size_t bare_false = 0;
  std::thread consumer([&] {
    rmon::SocketOptions o;
    o.recv_timeout_ms = 100;
    auto pull = rmon::make_socket(ctx, zmq::socket_type::pull, o);
    pull.connect(monitor.endpoints().groups[2]);
    auto push = rmon::make_socket(ctx, zmq::socket_type::push, o);
    push.connect(monitor.endpoints().ack);
    std::set<std::string> seen;
    std::vector<zmq::message_t> frames;
    while (!stop.load()) {
      if (!rmon::recv_frames(pull, frames) || frames.size() != 1) continue;
      const auto now_ms =
          static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count()) /
          1000.0;
      auto ev = rmon::protocol::decode_timeout_event(frames[0].to_string_view());
      if (!ev) continue;
      if (seen.insert(ev->event_id).second) {
        if (silent_tasks.count(ev->runner.task_id)) {
          bare.push_back(now_ms - static_cast<double>(ev->last_heartbeat_ms + ev->timeout_ms));
        } else {
          ++bare_false;
        }
      }
      rmon::send_frames(push, {rmon::protocol::encode_ack({"bare", ev->event_id})},
                        zmq::send_flags::none);
    }
  });

  rmon::bench::wait_child(child);
  // The silent subset's events are long out by now; stop well before the
  // others' last heartbeats (up to one interval ago) reach their timeout.
  std::this_thread::sleep_for(std::chrono::milliseconds(p.timeout_ms - p.interval_ms) / 2);
  stop = true;
  consumer.join();
  tq.stop();
  pm.stop();
  monitor.stop();

  std::vector<double> lat;
  std::size_t wrong = 0;
  for (const auto& [task, ms] : requeued) {
    if (silent_tasks.count(task)) {
      lat.push_back(ms);
    } else {
      ++wrong;
    }
  }
  std::vector<double> rel;
  std::size_t rel_wrong = 0;
  for (const auto& [runner, ms] : released) {
    if (silent_runners.count(runner)) {
      rel.push_back(ms);
    } else {
      ++rel_wrong;
    }
  }
  std::printf(
      "reassignment: %zu runners with a leased task and a slot each (interval %lu ms, timeout "
      "%lu ms), %zu fall silent; setup (submit, lease, acquire; --sync full) %.1f s\n",
      p.runners, p.interval_ms, p.timeout_ms, silent_tasks.size(), setup_s);
  report("baseline: monitor detection at a bare consumer", bare, silent_tasks.size(), bare_false);
  report("task-queue: deadline to task queued again", lat, silent_tasks.size(), wrong);
  report("pool-manager: deadline to slot free", rel, silent_runners.size(), rel_wrong);
  const double p99 = rmon::bench::percentile(lat, 99), rel_p99 = rmon::bench::percentile(rel, 99);
  const bool pass = p99 <= 20.0 && lat.size() == silent_tasks.size() && wrong == 0 &&
                    rel_p99 <= 20.0 && rel.size() == silent_runners.size() && rel_wrong == 0;
  std::printf("  target: p99 <= 20 ms for both, none missed or false: %s\n",
              pass ? "PASS" : "FAIL");
  std::filesystem::remove_all(data);
  return 0;
}
