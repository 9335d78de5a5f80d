// Detection: R runners heartbeat through a real monitor, then a known subset
// falls silent. Consumers of both groups record when each timeout event
// arrives; lateness is arrival minus the runner's deadline
// (last_heartbeat_ms + timeout_ms, the monitor's receipt time). Reports p50,
// p99 and max lateness, split into its two parts (the deadline to the
// event's detected_at_ms in the monitor, and from there to the consumer),
// and counts missed and false timeouts.
//
//   detection_bench [--runners N] [--silent K] [--interval-ms I] [--timeout-ms T]
//                   [--data-dir D]   (persistence on: the outbox and saved table in D)
//
// The publisher is a separate process. When it has sent its last heartbeat
// the benchmark waits for the monitor to receive them all (its send queue is
// unbounded, so at the edge of what the monitor ingests they arrive late),
// then for every silent runner's event at both groups, at most until the
// others' deadlines could pass (one timeout after the publisher ended). The
// timestamps have millisecond resolution, so each lateness may read up to
// 1 ms high, never low; its parts each up to 1 ms either way.

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "bench_util.hpp"
#include "fleet.hpp"
#include "rmon/config.hpp"
#include "rmon/protocol/codec.hpp"
#include "rmon/zmq_util.hpp"
#include "service.hpp"

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

struct Params {
  std::size_t runners = 100'000;
  std::size_t silent = 1'000;
  uint64_t interval_ms = 1'000;
  uint64_t timeout_ms = 3'000;
  uint64_t warmup_ms = 6'000;  // all heartbeat this long, then the subset stops
  uint64_t after_ms = 6'000;   // the rest go on this long
};

bool is_silent(std::size_t i, const Params& p) { return i % (p.runners / p.silent) == 0; }

std::size_t per_slice(const Params& p) {
  return std::max<std::size_t>(1, p.runners / p.interval_ms);
}

// The heartbeats the publisher sends: one slice of per_slice(p) runners a
// millisecond, in turn, leaving out the silent ones after the warm-up.
uint64_t planned_sends(const Params& p) {
  const std::size_t n = per_slice(p);
  uint64_t sent = 0;
  std::size_t next = 0;
  for (uint64_t slice = 0; slice < p.warmup_ms + p.after_ms; ++slice) {
    const bool dying = slice >= p.warmup_ms;
    for (std::size_t k = 0; k < n; ++k, next = (next + 1) % p.runners) {
      if (!(dying && is_silent(next, p))) ++sent;
    }
  }
  return sent;
}

// Sends each runner's heartbeat once per interval, spread over the interval
// in 1 ms slices.
int publisher(rmon::bench::Pipe& to_child, const Params& p) {
  rmon::tools::FleetOptions fo;
  fo.runners = p.runners;
  fo.prefix = "det-";
  fo.timeout_ms = p.timeout_ms;
  fo.interval_ms = p.interval_ms;
  rmon::tools::Fleet fleet(fo);
  const std::string endpoint = to_child.read_line();
  zmq::context_t ctx;
  rmon::SocketOptions o;
  o.send_hwm = 0;
  auto pub = rmon::make_socket(ctx, zmq::socket_type::pub, o);
  pub.connect(endpoint);
  const auto start = SteadyClock::now();
  const auto total = std::chrono::milliseconds(p.warmup_ms + p.after_ms);
  const std::size_t n = per_slice(p);
  std::size_t next = 0;
  uint64_t late_slices = 0;
  for (uint64_t slice = 0;; ++slice) {
    const auto slice_start = start + std::chrono::milliseconds(slice);
    if (slice_start - start >= total) break;
    if (SteadyClock::now() > slice_start + 5ms) ++late_slices;
    std::this_thread::sleep_until(slice_start);
    const bool dying = slice_start - start >= std::chrono::milliseconds(p.warmup_ms);
    for (std::size_t k = 0; k < n; ++k, next = (next + 1) % p.runners) {
      if (dying && is_silent(next, p)) continue;
      fleet.send(pub, next);
    }
  }
  if (late_slices) std::printf("  publisher: %lu slices started >5 ms late\n", late_slices);
  return 0;
}

struct Arrival {
  double lateness_ms;  // the runner's deadline to the consumer
  double detect_ms;    // the deadline to detected_at_ms
  uint64_t delivery;
};

std::string runner_id(std::size_t i) {
  char id[32];
  std::snprintf(id, sizeof id, "det-%07zu", i);
  return id;
}

}  // namespace

int main(int argc, char** argv) {
  Params p;
  rmon::Settings s("detection_bench", "Timeout detection lateness through a real monitor.");
  s.add("runners", p.runners, "Runners heartbeating");
  s.add("silent", p.silent, "How many of them fall silent");
  s.add("interval-ms", p.interval_ms, "Heartbeat period");
  s.add("timeout-ms", p.timeout_ms, "Runner timeout");
  s.add("warmup-ms", p.warmup_ms, "Time before the subset falls silent");
  s.add("after-ms", p.after_ms, "Time the others keep going after that");
  // The monitor's own defaults unless told otherwise.
  const rmon::monitor::MonitorConfig defaults;
  std::string data_dir, sync = defaults.sync;
  s.add("data-dir", data_dir, "Monitor data folder (persistence on); empty keeps it in memory");
  s.add("sync", sync, "The monitor's --sync with a data folder: full or normal");
  uint64_t save_interval_ms = defaults.save_interval_ms;
  s.add("save-interval-ms", save_interval_ms, "The monitor's --save-interval-ms");
  uint64_t suspect_grid_ms = defaults.suspect_grid_ms;
  s.add("suspect-grid-ms", suspect_grid_ms,
        "The grid suspect checks are rounded up to (no monitor flag; 100 before 2026-12-07)");
  if (auto code = s.parse(argc, argv)) return *code;
  if (p.silent == 0 || p.silent > p.runners) {
    std::fprintf(stderr, "--silent must be 1..runners\n");
    return 2;
  }
  spdlog::set_level(spdlog::level::err);  // no per-runner lines

  rmon::bench::Pipe to_child;
  const pid_t child = rmon::bench::fork_child([&] { return publisher(to_child, p); });

  rmon::monitor::MonitorConfig c = rmon::bench::loopback_monitor_config();
  c.data_dir = data_dir;
  c.sync = sync;
  c.save_interval_ms = save_interval_ms;
  c.suspect_grid_ms = suspect_grid_ms;
  rmon::monitor::MonitorService svc(c, rmon::SystemClock::instance());
  svc.start();

  std::set<std::string> silent_ids;
  for (std::size_t i = 0; i < p.runners; ++i) {
    if (is_silent(i, p)) silent_ids.insert(runner_id(i));
  }
  const uint64_t planned = planned_sends(p);

  // One consumer thread per group: receive, record, acknowledge.
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::condition_variable arrived;
  std::vector<std::map<std::string, std::vector<Arrival>>> got(2);
  std::vector<std::size_t> silent_got(2, 0);  // silent runners with an event, per group
  zmq::context_t ctx;
  std::vector<std::thread> consumers;
  const std::vector<std::string> groups = {"task-queue", "pool-manager"};
  for (std::size_t g = 0; g < 2; ++g) {
    consumers.emplace_back([&, g] {
      rmon::SocketOptions o;
      o.recv_timeout_ms = 100;
      auto pull = rmon::make_socket(ctx, zmq::socket_type::pull, o);
      pull.connect(svc.endpoints().groups[g]);
      auto push = rmon::make_socket(ctx, zmq::socket_type::push, o);
      push.connect(svc.endpoints().ack);
      std::vector<zmq::message_t> frames;
      while (!stop.load()) {
        if (!rmon::recv_frames(pull, frames) || frames.size() != 1) continue;
        const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
        auto ev = rmon::protocol::decode_timeout_event(frames[0].to_string_view());
        if (!ev) continue;
        const double deadline_ms =
            static_cast<double>(ev->last_heartbeat_ms) + static_cast<double>(ev->timeout_ms);
        {
          std::lock_guard lock(mu);
          auto& v = got[g][ev->runner.runner_id];
          if (v.empty() && silent_ids.count(ev->runner.runner_id)) ++silent_got[g];
          v.push_back({static_cast<double>(now_us) / 1000.0 - deadline_ms,
                       static_cast<double>(ev->detected_at_ms) - deadline_ms, ev->delivery});
        }
        arrived.notify_all();
        rmon::send_frames(push, {rmon::protocol::encode_ack({groups[g], ev->event_id})},
                          zmq::send_flags::none);
      }
    });
  }

  const auto cpu_before = rmon::bench::thread_cpu();
  to_child.write_line(svc.endpoints().heartbeat);
  const auto t0 = SteadyClock::now();
  rmon::bench::wait_child(child);
  const auto published = SteadyClock::now();
  // Until the others' deadlines could pass: past that an event for one of
  // them is no longer false, and a silent runner not convicted is missed.
  // Each was last sent within the last interval (received then or later),
  // so the first of those deadlines is about timeout - interval after the
  // end; 100 ms less for safety.
  const auto limit =
      published +
      std::chrono::milliseconds(std::max<int64_t>(
          0, static_cast<int64_t>(p.timeout_ms) - static_cast<int64_t>(p.interval_ms) - 100));
  // Received all, or nothing more for 100 ms (a PUB drops what it sends
  // before the subscription reaches it, so the first few may never come).
  // Polling a counter: there is no event to wait on.
  auto drained = published;
  for (uint64_t seen = svc.stats().heartbeat_frames.load(); SteadyClock::now() < limit;) {
    std::this_thread::sleep_for(100ms);
    const uint64_t now_seen = svc.stats().heartbeat_frames.load();
    if (now_seen == seen || now_seen >= planned) break;
    seen = now_seen;
    drained = SteadyClock::now();
  }
  const double drained_s = std::chrono::duration<double>(drained - published).count();
  const uint64_t received = svc.stats().heartbeat_frames.load();
  bool all_arrived = false;
  {
    std::unique_lock lock(mu);
    all_arrived = arrived.wait_until(lock, limit, [&] {
      return silent_got[0] == silent_ids.size() && silent_got[1] == silent_ids.size();
    });
  }
  const double waited_s = std::chrono::duration<double>(SteadyClock::now() - published).count();
  const auto cpu_after = rmon::bench::thread_cpu();
  const double cpu_wall_s = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  stop = true;
  for (auto& t : consumers) t.join();
  const auto tracked = svc.table().size();
  const auto timeouts = svc.table().counters().timeouts;
  svc.stop();
  const double run_s = std::chrono::duration<double>(SteadyClock::now() - t0).count();

  std::printf(
      "detection: %zu runners (interval %lu ms, timeout %lu ms, suspect grid %lu ms), %zu fall "
      "silent; %s\n",
      p.runners, p.interval_ms, p.timeout_ms, suspect_grid_ms, silent_ids.size(),
      data_dir.empty() ? "in memory" : ("data folder, --sync " + sync).c_str());
  std::printf(
      "  monitor tracked %zu runners, produced %lu timeouts, run took %.1f s; it received %lu "
      "of the %lu heartbeats sent, the last within %.1f s of the publisher's end%s; %s %.1f s "
      "after that end\n",
      tracked, timeouts, run_s, received, planned, drained_s + 0.1,
      received + planned / 100 < planned
          ? " (the rest were still queued in the publisher when it exited: the monitor had "
            "fallen behind)"
          : "",
      all_arrived ? "every silent runner's event had come" : "it stopped waiting for events",
      waited_s);
  std::printf("  CPU of this process's threads over the run (the consumers' included):\n");
  rmon::bench::print_thread_cpu(cpu_before, cpu_after, cpu_wall_s);
  bool pass = true;
  for (std::size_t g = 0; g < 2; ++g) {
    std::vector<double> lat, detect, deliver;
    std::size_t missed = 0, false_to = 0, repeats = 0;
    for (const auto& id : silent_ids) {
      auto it = got[g].find(id);
      if (it == got[g].end()) {
        ++missed;
        continue;
      }
      const Arrival& first = it->second.front();
      lat.push_back(first.lateness_ms);
      detect.push_back(first.detect_ms);
      deliver.push_back(first.lateness_ms - first.detect_ms);
      repeats += it->second.size() - 1;
    }
    for (const auto& [id, v] : got[g]) false_to += silent_ids.count(id) ? 0 : 1;
    const double p50 = rmon::bench::percentile(lat, 50);
    const double p99 = rmon::bench::percentile(lat, 99);
    const double mx = lat.empty() ? 0 : lat.back();
    std::printf(
        "  group %-12s events %zu  lateness p50 %.2f ms  p99 %.2f ms  max %.2f ms  "
        "missed %zu  false %zu  repeats %zu\n",
        groups[g].c_str(), lat.size(), p50, p99, mx, missed, false_to, repeats);
    std::printf(
        "  %-18s its parts, each its own p99: deadline to detection %.0f ms, detection to "
        "consumer %.0f ms\n",
        "", rmon::bench::percentile(detect, 99), rmon::bench::percentile(deliver, 99));
    pass = pass && p99 < 5.0 && missed == 0 && false_to == 0;
  }
  std::printf("  target: p99 < 5 ms, none missed, none false: %s\n", pass ? "PASS" : "FAIL");
  return 0;
}
