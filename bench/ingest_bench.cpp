// Ingest throughput: heartbeats/s through the running monitor (publisher
// process -> SUB -> decode -> table) against raw ZeroMQ PUB -> SUB of the same
// frames with no decoding, on the same machine in the same run. Rounds
// alternate between the two so machine noise hits both alike.
//
//   ingest_bench [--messages N] [--runners R] [--rounds K]
//
// With --joins, each round is a join storm instead: R runners with UUID ids
// (and pid and interval_ms) join a fresh monitor, then send one heartbeat
// each as known runners. It prints joins/s against known-runner heartbeats/s
// of the same round, and what the monitor process grew by per runner.
//
//   ingest_bench --joins [--runners 1000000] [--rounds K] [--data-folder]
//
// --data-folder runs each round as the monitor runs with no arguments: a
// fresh data folder, its default --sync, its saves every 200 ms (which a
// storm of this size turns into whole-table rewrites).
//
// With --persistence, the monitor's rounds run twice each, alternating: with
// everything in memory and with a data folder (the outbox and the saved
// table, `--sync full`), and it prints the ratio. With --joins as well, the
// join storms are compared (joins are what the table's saves write).
//
//   ingest_bench --persistence [--joins]
//
// With --curve, each round runs four kinds, in an order that rotates round by
// round, all fed by the same publisher process over --connections K
// connections (runner r always on connection r mod K, so each runner's
// heartbeats stay in order): raw ZeroMQ PUB->SUB with no security
// (raw-plain), the same with CURVE on every connection and no ZAP handler
// (raw-curve: CURVE's own cost), the monitor with --security off
// (monitor-off) and the monitor with --security curve, its ZAP handler and
// its per-message check of the sender's key (monitor-curve). It prints
// monitor-curve / raw-curve, raw-curve / raw-plain and monitor-off /
// raw-plain, as throughput (whichever side saturates first sets it: with
// CURVE the publisher encrypts as much as the receiver decrypts, so on two
// cores it is often the publisher) and as receiving capacity (the receiving
// process's CPU per heartbeat, every thread, inverted). The publisher's and
// the raw receivers' contexts have --io-threads I/O threads (by default one
// when pinned, where each side has one core, else one per CPU); the
// monitor's context has --monitor-io-threads (its --io-threads setting,
// default 1). The publisher's sockets are XPUB: each sees its
// subscriber's subscription arrive, so the round starts once every
// connection has passed its handshake.
//
//   ingest_bench --curve [--connections 8] [--io-threads 0] [--monitor-io-threads 0]
//
// With --handshake-storm N, each round is N runners, each a CURVE XPUB
// socket of its own (--storm-per-process runners per client process),
// connecting at once to a fresh CURVE monitor, alternating with a raw CURVE
// SUB with no ZAP handler (the baseline). One key pair is enrolled per
// --runners-per-key runners. It prints the time until every handshake was
// admitted (the monitor's ZAP handler answered 200 for all N; the baseline's
// socket monitor saw N handshakes succeed) and until every runner's first
// heartbeat was received, refusals, the kernel's listen-queue drops, and the
// receiving process's CPU time per handshake (the clients run in other
// processes, so it is the server's alone). The monitor's heartbeat socket
// has a listen backlog of kFleetListenBacklog (4096); --listen-backlog sets
// the baseline's (default the same; libzmq's own default is 100).
//
//   ingest_bench --handshake-storm 10000 [--runners-per-key 100] [--listen-backlog 4096]
//
// Files: this one holds main(), the plain rounds and --persistence;
// ingest_joins.cpp the join storms (--joins, --data-folder); ingest_curve.cpp
// the --curve rounds and the CURVE pieces both CURVE modes use (keys, raw
// CURVE servers, waiting for subscriptions); ingest_handshake.cpp the
// --handshake-storm rounds; ingest_common.hpp what the modes share (Params, a
// round's data folder and monitor, its encoded heartbeats, the publisher's
// and the raw baseline's sockets).

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "ingest_common.hpp"
#include "ingest_curve.hpp"
#include "ingest_handshake.hpp"
#include "ingest_joins.hpp"
#include "rmon/config.hpp"
#include "rmon/logging.hpp"
#include "rmon/zmq_util.hpp"

using namespace std::chrono_literals;

namespace rmon::bench::ingest {
namespace {

// The publisher process: pre-encodes every heartbeat, connects, sends probes
// until the parent says go, then sends the whole batch as fast as it can.
int publisher(rmon::bench::Pipe& to_child, const Params& p) {
  if (p.pin) rmon::bench::pin_to_cpu(0);
  std::vector<std::string> payloads;
  rmon::tools::Fleet fleet = encode_round(p, payloads);

  zmq::context_t ctx;
  auto pub = connect_probing_pub(ctx, to_child, 30'000);
  if (to_child.read_line() != "go") return 1;
  for (std::size_t i = 0; i < p.messages; ++i) {
    rmon::send_frames(pub, {fleet.topic(i % p.runners), payloads[i]}, zmq::send_flags::none);
  }
  return 0;
}

// Receives with a plain SUB socket: no decoding, no table.
double raw_round(const Params& p) {
  rmon::bench::Pipe to_child;
  const pid_t child = rmon::bench::fork_child([&] { return publisher(to_child, p); });
  double rate = 0;
  {
    zmq::context_t ctx;
    auto sub = make_raw_sub(ctx, p);
    to_child.write_line(rmon::bind_endpoint(sub, "tcp://127.0.0.1:*"));
    std::vector<zmq::message_t> frames;
    if (!rmon::recv_frames(sub, frames)) throw std::runtime_error("no probe arrived");
    const auto cpu0 = rmon::bench::thread_cpu();
    const auto t0 = SteadyClock::now();
    to_child.write_line("go");
    std::size_t got = 0;
    while (got < p.messages) {
      if (!rmon::recv_frames(sub, frames)) break;
      if (frames.size() == 2) ++got;  // skip late probes
    }
    const double secs = std::chrono::duration<double>(SteadyClock::now() - t0).count();
    if (got < p.messages) std::printf("  raw: lost %zu messages\n", p.messages - got);
    if (p.threads) rmon::bench::print_thread_cpu(cpu0, rmon::bench::thread_cpu(), secs);
    rate = static_cast<double>(got) / secs;
  }
  rmon::bench::wait_child(child);
  return rate;
}

// Receives with the real runner-monitor service (all threads running).
double monitor_round(const Params& p) {
  rmon::bench::Pipe to_child;
  const pid_t child = rmon::bench::fork_child([&] { return publisher(to_child, p); });
  double rate = 0;
  {
    rmon::monitor::MonitorConfig c = round_config(p);
    RoundDataDir data(p, c);
    rmon::monitor::MonitorService svc(c, rmon::SystemClock::instance());
    svc.start();
    to_child.write_line(svc.endpoints().heartbeat);
    const auto& frames = svc.stats().heartbeat_frames;
    auto accepted = [&] { return svc.table().counters().accepted; };
    while (frames.load() == 0) std::this_thread::sleep_for(100us);
    const auto cpu0 = rmon::bench::thread_cpu();
    const double secs = go_and_wait(to_child, 120s, [&] { return accepted() >= p.messages; });
    const auto got = accepted();
    if (got < p.messages) std::printf("  monitor: lost %zu messages\n", p.messages - got);
    if (p.threads) rmon::bench::print_thread_cpu(cpu0, rmon::bench::thread_cpu(), secs);
    rate = static_cast<double>(got) / secs;
    svc.stop();
  }
  rmon::bench::wait_child(child);
  return rate;
}

// Memory against a data folder, alternating round by round.
int persistence_rounds(Params p) {
  std::vector<double> mem, disk, ratio;
  for (int i = 0; i < p.rounds; ++i) {
    double m = 0, d = 0;
    for (bool persist : {false, true}) {
      p.persist = persist;
      const double rate = p.joins ? join_round(p).joins_per_s : monitor_round(p);
      (persist ? d : m) = rate;
    }
    mem.push_back(m);
    disk.push_back(d);
    ratio.push_back(d / m);
    std::printf("round %d: in memory %.0f /s, with a data folder %.0f /s, ratio %.3f\n", i + 1, m,
                d, d / m);
    std::fflush(stdout);
  }
  const double r = rmon::bench::median(ratio);
  std::printf("\n%s, %zu runners, median of %d rounds\n",
              p.joins ? "join storm (new runners' first heartbeats)" : "known-runner heartbeats",
              p.runners, p.rounds);
  std::printf("  baseline: everything in memory:            %10.0f /s\n", rmon::bench::median(mem));
  std::printf("  with a data folder (outbox + saved table): %10.0f /s\n",
              rmon::bench::median(disk));
  std::printf("  ratio with/without: %.3f  (target >= 0.90: %s)\n", r, r >= 0.9 ? "PASS" : "FAIL");
  return 0;
}

}  // namespace
}  // namespace rmon::bench::ingest

int main(int argc, char** argv) {
  namespace ingest = rmon::bench::ingest;
  ingest::Params p;
  rmon::Settings s("ingest_bench", "Monitor ingest throughput against raw ZeroMQ PUB/SUB.");
  s.add("messages", p.messages, "Heartbeats per round");
  CLI::Option* runners_opt =
      s.add("runners", p.runners, "Distinct runners the heartbeats cycle over (--joins: 1000000)");
  s.add("rounds", p.rounds, "Rounds of each kind (alternating)");
  s.add("hwm", p.hwm, "Heartbeat receive HWM of the monitor (-1: its default)");
  s.add("rewrite-pass-runners", p.rewrite_pass,
        "With a data folder: runners a whole-table save takes per pass (no monitor flag; "
        "a huge value: one pass, as before 2026-12-07)");
  s.add_flag("pin", p.pin, "Publisher on CPU 0 and the receiving side on CPU 1");
  s.add_flag("threads", p.threads, "Print each receiving thread's CPU use per round");
  s.add("only", p.only,
        "Run only raw or monitor rounds (for profiling); with --curve one kind, e.g. "
        "monitor-curve");
  s.add_flag("joins", p.joins,
             "Join storm: --runners new runners (UUID ids) join, then heartbeat as known ones");
  s.add_flag("persistence", p.compare_persistence,
             "Compare the monitor in memory against the monitor with a data folder");
  s.add_flag("data-folder", p.persist,
             "--joins: the monitor as started with no arguments, a data folder with its own "
             "--sync (normal)");
  s.add_flag("curve", p.curve,
             "Rounds of raw-plain, raw-curve, monitor-off and monitor-curve over --connections");
  s.add("connections", p.connections, "--curve: publisher connections");
  s.add("io-threads", p.io_threads,
        "--curve: I/O threads of the publisher's and raw contexts (0: 1 pinned, else 1 per CPU)");
  s.add("monitor-io-threads", p.monitor_io_threads,
        "The monitor's --io-threads (0: its default, 1)");
  s.add("handshake-storm", p.storm, "Runners connecting at once to a CURVE monitor (e.g. 10000)");
  s.add("runners-per-key", p.runners_per_key, "--handshake-storm: runners sharing one key pair");
  s.add("storm-per-process", p.storm_per_process, "--handshake-storm: runners per client process");
  s.add("listen-backlog", p.listen_backlog,
        "--handshake-storm: the baseline's ZMQ_BACKLOG (the monitor's is 4096; libzmq's 100)");
  if (auto code = s.parse(argc, argv)) return *code;
  if (p.storm > 0 || p.curve) {
    spdlog::set_level(spdlog::level::err);  // no per-round "no data folder" WARN
    if (p.pin && !rmon::bench::pin_to_cpu(1)) p.pin = false;
    // Pinned, each side has one core: more I/O threads there only switch
    // among themselves (measured: 2 instead of 1 cost raw-plain a third).
    if (p.io_threads == 0) {
      p.io_threads = p.pin ? 1 : static_cast<int>(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN)));
    }
    if (p.connections < 1 || p.io_threads < 1 || p.runners_per_key < 1 || p.storm_per_process < 1) {
      std::fprintf(stderr, "--connections, --io-threads and the storm's sizes must be >= 1\n");
      return 2;
    }
    return p.storm > 0 ? ingest::storm_rounds(p) : ingest::curve_rounds(p);
  }
  if (p.compare_persistence) {
    if (p.joins && runners_opt->count() == 0) p.runners = 1'000'000;
    spdlog::set_level(spdlog::level::warn);
    if (p.pin && !rmon::bench::pin_to_cpu(1)) p.pin = false;
    return ingest::persistence_rounds(p);
  }
  if (p.joins) {
    if (runners_opt->count() == 0) p.runners = 1'000'000;
    p.default_sync = p.persist;
    rmon::init_logging("ingest_bench", s.log_level());  // lifecycle lines included
    if (p.pin && !rmon::bench::pin_to_cpu(1)) p.pin = false;
    return ingest::join_rounds(p);
  }
  spdlog::set_level(spdlog::level::warn);  // no per-runner INFO lines
  // Pinning gives each side one core: the figure is then what the receiving
  // side sustains on one core, and the publisher cannot starve it.
  if (p.pin && !rmon::bench::pin_to_cpu(1)) p.pin = false;

  std::vector<double> raw, mon;
  for (int r = 0; r < p.rounds; ++r) {
    raw.push_back(p.only == "monitor" ? 1 : ingest::raw_round(p));
    mon.push_back(p.only == "raw" ? 1 : ingest::monitor_round(p));
    std::printf("round %d: raw %.0f msg/s, monitor %.0f msg/s\n", r + 1, raw.back(), mon.back());
  }
  const double raw_med = rmon::bench::median(raw);
  const double mon_med = rmon::bench::median(mon);
  std::printf("\ningest throughput, %zu heartbeats over %zu runners, median of %d rounds\n",
              p.messages, p.runners, p.rounds);
  std::printf("  baseline raw ZeroMQ PUB->SUB (no decode): %10.0f msg/s\n", raw_med);
  std::printf("  runner-monitor (SUB->decode->table):      %10.0f msg/s\n", mon_med);
  std::printf("  ratio monitor/raw: %.2f  (target >= 0.70: %s)\n", mon_med / raw_med,
              mon_med / raw_med >= 0.7 ? "PASS" : "FAIL");
  return 0;
}
