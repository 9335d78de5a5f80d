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
//   ingest_bench --joins [--runners 1000000] [--rounds K]
//
// With --persistence, the monitor's rounds run twice each, alternating: with
// everything in memory and with a data folder (the outbox and the saved
// table, `--sync full`), and it prints the ratio. With --joins as well, the
// join storms are compared (joins are what the table's saves write).
//
//   ingest_bench --persistence [--joins]

#include <spdlog/spdlog.h>

#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "bench_util.hpp"
#include "fleet.hpp"
#include "rmon/config.hpp"
#include "rmon/logging.hpp"
#include "rmon/zmq_util.hpp"
#include "service.hpp"

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

struct Params {
  std::size_t messages = 500'000;
  std::size_t runners = 10'000;
  int rounds = 3;
  int hwm = -1;          // the monitor's heartbeat HWM; -1 keeps its default
  bool pin = true;       // publisher on CPU 0, receiver on CPU 1
  bool threads = false;  // print each receiving thread's CPU use
  std::string only;      // "raw" or "monitor" to run one kind (for profiling)
  bool joins = false;    // join storm rounds instead (see join_round)
  bool persist = false;  // the monitor keeps a data folder (a fresh temp one)
  bool compare_persistence = false;
};

// A fresh data folder for one round when `p.persist`, removed afterwards.
struct RoundDataDir {
  explicit RoundDataDir(const Params& p, rmon::monitor::MonitorConfig& c) {
    if (!p.persist) return;
    char tmpl[] = "/tmp/rmon-ingest-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
    c.data_dir = path;
    c.sync = "full";
  }
  ~RoundDataDir() {
    if (path.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string path;
};

// The publisher process: pre-encodes every heartbeat, connects, sends probes
// until the parent says go, then sends the whole batch as fast as it can.
int publisher(rmon::bench::Pipe& to_child, const Params& p) {
  if (p.pin) rmon::bench::pin_to_cpu(0);
  rmon::tools::FleetOptions fo;
  fo.runners = p.runners;
  fo.timeout_ms = 600'000;
  rmon::tools::Fleet fleet(fo);
  std::vector<std::string> payloads(p.messages);
  for (std::size_t i = 0; i < p.messages; ++i) fleet.next(i % p.runners, payloads[i]);

  const std::string endpoint = to_child.read_line();
  zmq::context_t ctx;
  rmon::SocketOptions o;
  o.send_hwm = 0;  // never drop: TCP back-pressure paces the publisher instead
  o.linger_ms = 30'000;
  auto pub = rmon::make_socket(ctx, zmq::socket_type::pub, o);
  pub.connect(endpoint);
  // One-frame probes (the monitor rejects them) until the subscriber has one.
  while (!to_child.readable(1)) rmon::send_frames(pub, {"hb/probe"}, zmq::send_flags::none);
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
    rmon::SocketOptions o;
    // The same receive HWM as the monitor's socket.
    o.recv_hwm = p.hwm >= 0 ? p.hwm : rmon::monitor::MonitorConfig{}.heartbeat_hwm;
    o.recv_timeout_ms = 10'000;
    auto sub = rmon::make_socket(ctx, zmq::socket_type::sub, o);
    sub.set(zmq::sockopt::subscribe, "hb/");
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
    rmon::monitor::MonitorConfig c = rmon::bench::loopback_monitor_config();
    if (p.hwm >= 0) c.heartbeat_hwm = p.hwm;
    RoundDataDir data(p, c);
    rmon::monitor::MonitorService svc(c, rmon::SystemClock::instance());
    svc.start();
    to_child.write_line(svc.endpoints().heartbeat);
    const auto& frames = svc.stats().heartbeat_frames;
    auto accepted = [&] { return svc.table().counters().accepted; };
    while (frames.load() == 0) std::this_thread::sleep_for(100us);
    const auto cpu0 = rmon::bench::thread_cpu();
    const auto t0 = SteadyClock::now();
    to_child.write_line("go");
    const auto limit = t0 + 120s;
    // Polls coarsely: this thread shares the receiving side's core.
    while (accepted() < p.messages && SteadyClock::now() < limit) {
      std::this_thread::sleep_for(1ms);
    }
    const double secs = std::chrono::duration<double>(SteadyClock::now() - t0).count();
    const auto got = accepted();
    if (got < p.messages) std::printf("  monitor: lost %zu messages\n", p.messages - got);
    if (p.threads) rmon::bench::print_thread_cpu(cpu0, rmon::bench::thread_cpu(), secs);
    rate = static_cast<double>(got) / secs;
    svc.stop();
  }
  rmon::bench::wait_child(child);
  return rate;
}

// ---- Join storms (--joins).

// Resident memory of this process, from /proc/self/statm, and malloc's bytes
// in use (every arena).
int64_t heap_bytes() {
  const struct mallinfo2 mi = ::mallinfo2();
  return static_cast<int64_t>(mi.uordblks + mi.hblkhd);
}
int64_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size_pages = 0, resident_pages = 0;
  statm >> size_pages >> resident_pages;
  return resident_pages * static_cast<int64_t>(::sysconf(_SC_PAGESIZE));
}

// The publisher of a join round: every runner's first heartbeat (a join),
// then, once the parent says so, every runner's second (a known runner).
// Both batches are encoded before the first is sent.
int join_publisher(rmon::bench::Pipe& to_child, const Params& p) {
  if (p.pin) rmon::bench::pin_to_cpu(0);
  rmon::tools::FleetOptions fo;
  fo.runners = p.runners;
  fo.timeout_ms = 600'000;
  fo.uuid_ids = true;  // and pid and interval_ms, as FleetOptions has them
  rmon::tools::Fleet fleet(fo);
  struct Batch {
    std::string bytes;
    std::vector<std::size_t> ends;
  };
  Batch batches[2];
  std::string one;
  for (Batch& b : batches) {
    b.ends.reserve(p.runners);
    for (std::size_t i = 0; i < p.runners; ++i) {
      fleet.next(i, one);
      b.bytes += one;
      b.ends.push_back(b.bytes.size());
    }
  }
  const std::string endpoint = to_child.read_line();
  zmq::context_t ctx;
  rmon::SocketOptions o;
  o.send_hwm = 0;  // never drop: TCP back-pressure paces the publisher instead
  o.linger_ms = 60'000;
  auto pub = rmon::make_socket(ctx, zmq::socket_type::pub, o);
  pub.connect(endpoint);
  while (!to_child.readable(1)) rmon::send_frames(pub, {"hb/probe"}, zmq::send_flags::none);
  for (const Batch& b : batches) {
    if (to_child.read_line() != "go") return 1;
    std::size_t start = 0;
    for (std::size_t i = 0; i < p.runners; ++i) {
      const std::string_view payload(b.bytes.data() + start, b.ends[i] - start);
      rmon::send_frames(pub, {fleet.topic(i), payload}, zmq::send_flags::none);
      start = b.ends[i];
    }
  }
  return 0;
}

struct JoinRound {
  double joins_per_s = 0;
  double known_per_s = 0;
  double rss_per_runner = 0;   // bytes the monitor process grew by, per runner joined
  double heap_per_runner = 0;  // the same, counted by malloc
  std::size_t runners = 0;     // tracked after the round
};

// One join storm against a fresh runner-monitor service (all threads).
JoinRound join_round(const Params& p) {
  rmon::bench::Pipe to_child;
  const pid_t child = rmon::bench::fork_child([&] { return join_publisher(to_child, p); });
  JoinRound r;
  {
    rmon::monitor::MonitorConfig c = rmon::bench::loopback_monitor_config();
    if (p.hwm >= 0) c.heartbeat_hwm = p.hwm;
    RoundDataDir data(p, c);
    rmon::monitor::MonitorService svc(c, rmon::SystemClock::instance());
    svc.start();
    to_child.write_line(svc.endpoints().heartbeat);
    while (svc.stats().heartbeat_frames.load() == 0) std::this_thread::sleep_for(100us);
    auto accepted = [&] { return svc.table().counters().accepted; };
    // Runs one phase, until `target` heartbeats are accepted in all (the
    // phase's R on top of the earlier ones); returns the phase's rate.
    auto phase = [&](uint64_t target) {
      const auto cpu0 = rmon::bench::thread_cpu();
      const auto t0 = SteadyClock::now();
      to_child.write_line("go");
      const auto limit = t0 + 300s;
      while (accepted() < target && SteadyClock::now() < limit) std::this_thread::sleep_for(1ms);
      const double secs = std::chrono::duration<double>(SteadyClock::now() - t0).count();
      if (p.threads) rmon::bench::print_thread_cpu(cpu0, rmon::bench::thread_cpu(), secs);
      const uint64_t got = accepted() - (target - p.runners);
      if (got < p.runners) std::printf("  lost %zu messages\n", p.runners - got);
      return static_cast<double>(got) / secs;
    };
    const int64_t rss0 = rss_bytes();
    const int64_t heap0 = heap_bytes();
    r.joins_per_s = phase(p.runners);
    const auto n = static_cast<double>(p.runners);
    r.rss_per_runner = static_cast<double>(rss_bytes() - rss0) / n;
    r.heap_per_runner = static_cast<double>(heap_bytes() - heap0) / n;
    r.known_per_s = phase(2 * p.runners);
    r.runners = svc.table().size();
    svc.stop();
  }
  rmon::bench::wait_child(child);
  ::malloc_trim(0);  // give the table back, so the next round's RSS grows again
  return r;
}

int join_rounds(const Params& p) {
  std::vector<double> joins, known, ratio, rss, heap;
  for (int i = 0; i < p.rounds; ++i) {
    const JoinRound r = join_round(p);
    joins.push_back(r.joins_per_s);
    known.push_back(r.known_per_s);
    ratio.push_back(r.joins_per_s / r.known_per_s);
    rss.push_back(r.rss_per_runner);
    heap.push_back(r.heap_per_runner);
    std::printf(
        "round %d: joins %.0f /s, known-runner heartbeats %.0f /s, ratio %.2f; monitor per "
        "runner: RSS +%.1f B, malloc +%.1f B (%zu tracked)\n",
        i + 1, r.joins_per_s, r.known_per_s, r.joins_per_s / r.known_per_s, r.rss_per_runner,
        r.heap_per_runner, r.runners);
    std::fflush(stdout);
  }
  const double ratio_med = rmon::bench::median(ratio);
  const double rss_med = rmon::bench::median(rss);
  std::printf(
      "\njoin storm, %zu runners with 36-byte UUID runner and task ids (pid, interval_ms), "
      "median of %d rounds\n",
      p.runners, p.rounds);
  std::printf("  baseline: known-runner heartbeats, same rounds: %10.0f /s\n",
              rmon::bench::median(known));
  std::printf("  joins (first heartbeat of a new runner):        %10.0f /s\n",
              rmon::bench::median(joins));
  std::printf("  ratio joins/known: %.2f  (target >= 0.50: %s)\n", ratio_med,
              ratio_med >= 0.5 ? "PASS" : "FAIL");
  std::printf("  monitor process RSS growth per runner joined: %.1f B  (target <= 256: %s)\n",
              rss_med, rss_med <= 256 ? "PASS" : "FAIL");
  std::printf("  monitor malloc in use per runner joined:      %.1f B\n",
              rmon::bench::median(heap));
  return 0;
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

int main(int argc, char** argv) {
  Params p;
  rmon::Settings s("ingest_bench", "Monitor ingest throughput against raw ZeroMQ PUB/SUB.");
  s.add("messages", p.messages, "Heartbeats per round");
  CLI::Option* runners_opt =
      s.add("runners", p.runners, "Distinct runners the heartbeats cycle over (--joins: 1000000)");
  s.add("rounds", p.rounds, "Rounds of each kind (alternating)");
  s.add("hwm", p.hwm, "Heartbeat receive HWM of the monitor (-1: its default)");
  s.add_flag("pin", p.pin, "Publisher on CPU 0 and the receiving side on CPU 1");
  s.add_flag("threads", p.threads, "Print each receiving thread's CPU use per round");
  s.add("only", p.only, "Run only raw or monitor rounds (for profiling)");
  s.add_flag("joins", p.joins,
             "Join storm: --runners new runners (UUID ids) join, then heartbeat as known ones");
  s.add_flag("persistence", p.compare_persistence,
             "Compare the monitor in memory against the monitor with a data folder");
  if (auto code = s.parse(argc, argv)) return *code;
  if (p.compare_persistence) {
    if (p.joins && runners_opt->count() == 0) p.runners = 1'000'000;
    spdlog::set_level(spdlog::level::warn);
    if (p.pin && !rmon::bench::pin_to_cpu(1)) p.pin = false;
    return persistence_rounds(p);
  }
  if (p.joins) {
    if (runners_opt->count() == 0) p.runners = 1'000'000;
    rmon::init_logging("ingest_bench", s.log_level());  // lifecycle lines included
    if (p.pin && !rmon::bench::pin_to_cpu(1)) p.pin = false;
    return join_rounds(p);
  }
  spdlog::set_level(spdlog::level::warn);  // no per-runner INFO lines
  // Pinning gives each side one core: the figure is then what the receiving
  // side sustains on one core, and the publisher cannot starve it.
  if (p.pin && !rmon::bench::pin_to_cpu(1)) p.pin = false;

  std::vector<double> raw, mon;
  for (int r = 0; r < p.rounds; ++r) {
    raw.push_back(p.only == "monitor" ? 1 : raw_round(p));
    mon.push_back(p.only == "raw" ? 1 : monitor_round(p));
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
