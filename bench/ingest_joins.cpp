// ingest_bench --joins: join storms (see ingest_joins.hpp and the modes at the
// top of ingest_bench.cpp).

#include "ingest_joins.hpp"

#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "rmon/clock.hpp"
#include "rmon/zmq_util.hpp"

using namespace std::chrono_literals;

namespace rmon::bench::ingest {
namespace {

// Resident memory of this process, from /proc/self/statm, and malloc's bytes
// in use (every arena).
int64_t heap_bytes() {
  const struct mallinfo2 mi = ::mallinfo2();
  return static_cast<int64_t>(mi.uordblks + mi.hblkhd);
}
// The process's peak RSS (VmHWM) since reset_peak_rss(), which Linux allows
// since 4.0 (-1 when it cannot be read).
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }
int64_t peak_rss_bytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;  // in kB
  }
  return -1;
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
  zmq::context_t ctx;
  auto pub = connect_probing_pub(ctx, to_child, 60'000);
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

}  // namespace

// One join storm against a fresh runner-monitor service (all threads).
JoinRound join_round(const Params& p) {
  rmon::bench::Pipe to_child;
  const pid_t child = rmon::bench::fork_child([&] { return join_publisher(to_child, p); });
  JoinRound r;
  {
    rmon::monitor::MonitorConfig c = round_config(p);
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
      const double secs = go_and_wait(to_child, 300s, [&] { return accepted() >= target; });
      if (p.threads) rmon::bench::print_thread_cpu(cpu0, rmon::bench::thread_cpu(), secs);
      const uint64_t got = accepted() - (target - p.runners);
      if (got < p.runners) std::printf("  lost %zu messages\n", p.runners - got);
      return static_cast<double>(got) / secs;
    };
    const int64_t rss0 = rss_bytes();
    const int64_t heap0 = heap_bytes();
    reset_peak_rss();
    r.joins_per_s = phase(p.runners);
    const auto n = static_cast<double>(p.runners);
    r.rss_per_runner = static_cast<double>(rss_bytes() - rss0) / n;
    r.heap_per_runner = static_cast<double>(heap_bytes() - heap0) / n;
    r.known_per_s = phase(2 * p.runners);
    r.runners = svc.table().size();
    svc.stop();  // with a data folder: any rewrite during the round, the last save included
    r.peak_per_runner = static_cast<double>(peak_rss_bytes() - rss0) / n;
  }
  rmon::bench::wait_child(child);
  ::malloc_trim(0);  // give the table back, so the next round's RSS grows again
  return r;
}

int join_rounds(const Params& p) {
  std::vector<double> joins, known, ratio, rss, heap, peak;
  for (int i = 0; i < p.rounds; ++i) {
    const JoinRound r = join_round(p);
    joins.push_back(r.joins_per_s);
    known.push_back(r.known_per_s);
    ratio.push_back(r.joins_per_s / r.known_per_s);
    rss.push_back(r.rss_per_runner);
    heap.push_back(r.heap_per_runner);
    peak.push_back(r.peak_per_runner);
    std::printf(
        "round %d: joins %.0f /s, known-runner heartbeats %.0f /s, ratio %.2f; monitor per "
        "runner: RSS +%.1f B, malloc +%.1f B, peak RSS +%.1f B (%zu tracked)\n",
        i + 1, r.joins_per_s, r.known_per_s, r.joins_per_s / r.known_per_s, r.rss_per_runner,
        r.heap_per_runner, r.peak_per_runner, r.runners);
    std::fflush(stdout);
  }
  const double ratio_med = rmon::bench::median(ratio);
  const double rss_med = rmon::bench::median(rss);
  std::printf(
      "\njoin storm, %zu runners with 36-byte UUID runner and task ids (pid, interval_ms), "
      "%s, median of %d rounds\n",
      p.runners, p.persist ? "a data folder (the default configuration)" : "in memory", p.rounds);
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
  std::printf("  peak RSS per runner over the round (saves, the last one included): %.1f B\n",
              rmon::bench::median(peak));
  return 0;
}

}  // namespace rmon::bench::ingest
