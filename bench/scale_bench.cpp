// Scale figures for runner-monitor at production size, against its targets:
//
//   (a) memory per tracked runner with 1,000,000 runners (<= 256 bytes), from
//       the process RSS (/proc/self/statm) and from malloc's own count of bytes
//       in use (mallinfo2), before and after filling a table through apply():
//       with 14-byte runner ids, and with real ids (36-byte UUIDs for runner
//       and task, heartbeats carrying pid and interval_ms); for reference,
//       malloc's figure for runners that have each completed kMaxFences
//       earlier tasks and so hold that many fences;
//   (b) CPU used by the dispatch loop while nothing expires (<= 1% of a
//       core): the service's Dispatcher::run, with its max_sleep, the real
//       clock, two PUSH group sockets and an ack PULL socket on ipc://, for
//       64 and 1024 shards; for reference, the same loop over an empty table
//       and the bare cost of waking up every max_sleep (zmq::poll alone);
//   (c) the same target for the sweep's steady cost when nothing expires but
//       every runner keeps heartbeating (each is popped and lazily re-armed
//       once per suspect period), modelled on a fake clock at 64 and 1024
//       shards: CPU of sweep() + next_due() per second of fake time.
//
// A measurement, not a test: it always exits 0 and prints FAIL for a missed
// target. Usage: scale_bench [--runners N] [--seconds S]

#include <malloc.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <zmq.hpp>

#include "dispatcher.hpp"
#include "fleet.hpp"
#include "monitor_config.hpp"
#include "monitor_stats.hpp"
#include "outbox.hpp"
#include "rmon/clock.hpp"
#include "rmon/fake_clock.hpp"
#include "rmon/protocol/limits.hpp"
#include "rmon/version.hpp"
#include "rmon/zmq_util.hpp"
#include "runner_table.hpp"

namespace rmon::monitor {
namespace {

constexpr double kMemoryTargetBytes = 256.0;
constexpr double kCpuTargetPercent = 1.0;
constexpr uint64_t kRealisticTimeoutMs = 60'000;
constexpr uint64_t kIdleTimeoutMs = 3'600'000;  // nothing falls due during the CPU runs

// ---- Memory.

struct MemorySample {
  int64_t rss_bytes = 0;   // resident pages of the process
  int64_t heap_bytes = 0;  // malloc'd and still in use (arenas + mmapped chunks)
};

MemorySample sample_memory() {
  MemorySample m;
  std::ifstream statm("/proc/self/statm");
  int64_t size_pages = 0;
  int64_t resident_pages = 0;
  if (statm >> size_pages >> resident_pages) {
    m.rss_bytes = resident_pages * static_cast<int64_t>(::sysconf(_SC_PAGESIZE));
  }
  const struct mallinfo2 mi = ::mallinfo2();
  m.heap_bytes = static_cast<int64_t>(mi.uordblks + mi.hblkhd);
  return m;
}

// The ids a fleet uses: kShort is "runner-0000123" and "task-0000123-a"
// (inside std::string's inline buffer); kUuid is 36-byte UUID-shaped runner
// and task ids, with interval_ms in every heartbeat as real runners send it.
enum class Ids { kShort, kUuid };

// Realistic local-process heartbeats: one of 8 pools, a pid, no progress.
// One Heartbeat is rewritten in place so that only the table grows.
class HeartbeatMaker {
 public:
  explicit HeartbeatMaker(uint64_t timeout_ms, Ids ids = Ids::kShort) : ids_(ids) {
    for (std::size_t p = 0; p < pools_.size(); ++p) pools_[p] = "pool-" + std::to_string(p);
    hb_.runner.attempt = 1;
    hb_.runner.pool_type = protocol::PoolType::kLocalProcess;
    hb_.state = RunnerState::kRunning;
    hb_.timeout_ms = timeout_ms;
    if (ids_ == Ids::kUuid) hb_.interval_ms = 10'000;
  }
  // Runner i's heartbeat `seq` for its task number `task` (0: "task-0000123-a").
  const Heartbeat& make(std::size_t i, uint64_t seq, std::size_t task = 0,
                        RunnerState state = RunnerState::kRunning) {
    if (ids_ == Ids::kUuid) {
      hb_.runner.runner_id = tools::uuid_like(2 * i);
      hb_.runner.task_id = tools::uuid_like((uint64_t{1} << 63) | (i << 4) | task);
    } else {
      char buf[48];
      hb_.runner.runner_id.assign(buf, std::snprintf(buf, sizeof buf, "runner-%07zu", i));
      hb_.runner.task_id.assign(
          buf, std::snprintf(buf, sizeof buf, "task-%07zu-%c", i, static_cast<char>('a' + task)));
    }
    hb_.state = state;
    hb_.runner.pool = pools_[i % pools_.size()];
    hb_.runner.pid = 10'000 + i;
    hb_.seq = seq;
    return hb_;
  }

 private:
  const Ids ids_;
  std::array<std::string, 8> pools_;
  Heartbeat hb_;
};

// Fills `table` with runners 0..n-1 through apply(), one heartbeat each.
// With `tasks_behind`, each runner first runs and completes that many tasks,
// so it holds that many fences (up to kMaxFences). Returns how many runners
// did not end up running their last task (must be 0).
std::size_t fill(RunnerTable& table, std::size_t n, uint64_t timeout_ms, const Clock& clock,
                 std::size_t tasks_behind = 0, Ids ids = Ids::kShort) {
  HeartbeatMaker maker(timeout_ms, ids);
  std::size_t failed = 0;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t t = 0; t < tasks_behind; ++t) {
      (void)table.apply(maker.make(i, 1, t), clock.now(), clock.wall_ms());
      (void)table.apply(maker.make(i, 2, t, RunnerState::kCompleted), clock.now(), clock.wall_ms());
    }
    if (!accepted(table.apply(maker.make(i, 1, tasks_behind), clock.now(), clock.wall_ms()))) {
      ++failed;
    }
  }
  return failed;
}

struct MemoryResult {
  double rss_per_runner = 0;
  double heap_per_runner = 0;
  double fill_seconds = 0;
  std::size_t failed = 0;
};

MemoryResult measure_memory(const MonitorConfig& cfg, uint32_t shards, std::size_t n,
                            std::size_t tasks_behind = 0, Ids ids = Ids::kShort) {
  TableOptions opts = cfg.table_options("scale");
  opts.shards = shards;
  auto table = std::make_unique<RunnerTable>(opts);
  const MemorySample before = sample_memory();
  const auto t0 = std::chrono::steady_clock::now();
  MemoryResult r;
  r.failed = fill(*table, n, kRealisticTimeoutMs, SystemClock::instance(), tasks_behind, ids);
  r.fill_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const MemorySample after = sample_memory();
  r.rss_per_runner = static_cast<double>(after.rss_bytes - before.rss_bytes) / n;
  r.heap_per_runner = static_cast<double>(after.heap_bytes - before.heap_bytes) / n;
  return r;
}

// ---- Dispatch CPU.

double seconds_of(const timespec& t) { return static_cast<double>(t.tv_sec) + t.tv_nsec * 1e-9; }
double seconds_of(const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec * 1e-6; }

struct CpuTotals {
  double wall_s = 0;
  double cpu_s = 0;     // CLOCK_THREAD_CPUTIME_ID
  double ru_cpu_s = 0;  // getrusage(RUSAGE_THREAD): user + system
  long sleeps = 0;      // voluntary context switches: about one per blocking poll
  double percent() const { return wall_s > 0 ? 100.0 * cpu_s / wall_s : 0; }
  double us_per_sleep() const { return sleeps > 0 ? 1e6 * cpu_s / static_cast<double>(sleeps) : 0; }
};

// What the service's dispatch thread uses: a table of `n` runners (long
// timeouts: nothing falls due), the outbox and the group PUSH sockets, bound
// on ipc:// and never connected (acknowledgements are the ack thread's).
// With `floor_only` there is no table and the thread only polls a PULL
// socket: the cost of waking up every max_sleep on this machine, whatever
// the loop does.
class DispatchRig {
 public:
  DispatchRig(const MonitorConfig& cfg, uint32_t shards, std::size_t n, bool floor_only,
              const std::filesystem::path& dir, const std::string& tag)
      : outbox_opts_(cfg.outbox_options()), stats_(outbox_opts_.groups), outbox_(outbox_opts_) {
    if (!floor_only) {
      TableOptions opts = cfg.table_options("scale");
      opts.shards = shards;
      table_ = std::make_unique<RunnerTable>(opts);
      failed_fill_ = fill(*table_, n, kIdleTimeoutMs, SystemClock::instance());
      dispatcher_ =
          std::make_unique<Dispatcher>(*table_, outbox_, stats_, nullptr, SystemClock::instance());
      SocketOptions push_opts;
      push_opts.send_hwm = cfg.event_hwm;
      for (std::size_t g = 0; g < outbox_opts_.groups.size(); ++g) {
        push_.push_back(make_socket(ctx_, zmq::socket_type::push, push_opts));
        bind_endpoint(push_.back(),
                      "ipc://" + (dir / (tag + "-group" + std::to_string(g))).string());
      }
    }
    SocketOptions small;
    small.max_msg_size = static_cast<int64_t>(protocol::kMaxFrame);
    acks_ = make_socket(ctx_, zmq::socket_type::pull, small);
    bind_endpoint(acks_, "ipc://" + (dir / (tag + "-ack")).string());
  }

  // Runs the loop on a fresh thread for `seconds` and adds that thread's
  // figures to totals(). The sockets move to that thread and back with the
  // thread's start and join, as in the service.
  void run_for(double seconds, Millis max_sleep) {
    std::atomic<bool> stop{false};
    std::thread worker([&] {
      timespec c0{};
      timespec c1{};
      rusage u0{};
      rusage u1{};
      ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
      ::getrusage(RUSAGE_THREAD, &u0);
      const auto w0 = std::chrono::steady_clock::now();
      if (dispatcher_) {
        dispatcher_->run(push_, stop, max_sleep);
      } else {
        zmq::pollitem_t item{acks_.handle(), 0, ZMQ_POLLIN, 0};
        while (!stop.load(std::memory_order_relaxed)) zmq::poll(&item, 1, max_sleep);
      }
      const auto w1 = std::chrono::steady_clock::now();
      ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
      ::getrusage(RUSAGE_THREAD, &u1);
      totals_.wall_s += std::chrono::duration<double>(w1 - w0).count();
      totals_.cpu_s += seconds_of(c1) - seconds_of(c0);
      totals_.ru_cpu_s += (seconds_of(u1.ru_utime) - seconds_of(u0.ru_utime)) +
                          (seconds_of(u1.ru_stime) - seconds_of(u0.ru_stime));
      totals_.sleeps += u1.ru_nvcsw - u0.ru_nvcsw;
    });
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    worker.join();
  }

  const CpuTotals& totals() const { return totals_; }
  std::size_t failed_fill() const { return failed_fill_; }

 private:
  const OutboxOptions outbox_opts_;
  MonitorStats stats_;
  Outbox outbox_;
  std::unique_ptr<RunnerTable> table_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::size_t failed_fill_ = 0;
  zmq::context_t ctx_;  // before the sockets: they close first
  std::vector<zmq::socket_t> push_;
  zmq::socket_t acks_;
  CpuTotals totals_;
};

// ---- Sweep CPU while every runner heartbeats (modelled on a fake clock).
//
// With a 60 s timeout nothing expires while runners keep heartbeating, yet
// each one pops from the deadline index once per suspect period (30 s) and is
// re-armed: the lazy re-arm is the sweep's steady cost. The runners are
// spread evenly over the period, one group per dispatcher tick (max_sleep);
// each tick the due group is heard from 1 ms before its due time, then the
// table is swept and asked for its next due time, as Dispatcher::run does.
// Only sweep() and next_due() are timed; time covered is one whole period.

double thread_cpu_seconds() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

struct RearmModel {
  double sweep_cpu_s = 0;
  double simulated_s = 0;
  std::size_t ticks = 0;
  bool clean = true;  // nothing went SUSPECT or timed out
  double percent() const { return simulated_s > 0 ? 100.0 * sweep_cpu_s / simulated_s : 0; }
};

RearmModel model_rearm(const MonitorConfig& cfg, uint32_t shards, std::size_t n, Millis tick) {
  FakeClock clock;
  TableOptions opts = cfg.table_options("scale");
  opts.shards = shards;
  RunnerTable table(opts);
  const auto period_ms =
      static_cast<int64_t>(static_cast<double>(kRealisticTimeoutMs) * cfg.suspect_ratio);
  const auto groups = static_cast<std::size_t>(std::max<int64_t>(1, period_ms / tick.count()));
  HeartbeatMaker maker(kRealisticTimeoutMs);
  for (std::size_t g = 0; g < groups; ++g) {
    if (g > 0) clock.advance(tick);
    for (std::size_t i = g; i < n; i += groups) {
      (void)table.apply(maker.make(i, 1), clock.now(), clock.wall_ms());
    }
  }
  RearmModel m;
  std::vector<Expired> out;
  for (std::size_t g = 0; g < groups; ++g) {  // one period: every runner pops once
    const MonoTime due = *table.next_due();
    clock.advance(due - std::chrono::milliseconds(1) - clock.now());
    for (std::size_t i = g; i < n; i += groups) {
      (void)table.apply(maker.make(i, 2), clock.now(), clock.wall_ms());
    }
    clock.advance(due - clock.now());
    const double c0 = thread_cpu_seconds();
    table.sweep(clock.now(), clock.wall_ms(), out);
    const std::optional<MonoTime> next = table.next_due();
    m.sweep_cpu_s += thread_cpu_seconds() - c0;
    m.clean = m.clean && next && *next > due;
    ++m.ticks;
  }
  m.simulated_s = static_cast<double>(groups) * std::chrono::duration<double>(tick).count();
  m.clean = m.clean && out.empty() && table.count(RunnerFilter{RunnerState::kSuspect, {}}) == 0;
  return m;
}

// ---- Report.

const char* verdict(bool pass) { return pass ? "PASS" : "FAIL"; }

void row(const std::string& what, const std::string& value, const std::string& target,
         const std::string& result) {
  std::printf("  %-56s %12s %10s  %s\n", what.c_str(), value.c_str(), target.c_str(),
              result.c_str());
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

int run(std::size_t runners, double seconds) {
  const MonitorConfig cfg;  // the service's defaults
  // As MonitorService::start uses it.
  const Millis max_sleep = rmon::monitor::kMaxDispatchSleep;

  char tmpl[] = "/tmp/rmon-scale-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  const std::filesystem::path dir(tmpl);

  std::printf("scale_bench: runners=%zu seconds=%.1f max_sleep=%lldms cores=%u\n", runners, seconds,
              static_cast<long long>(max_sleep.count()), std::thread::hardware_concurrency());
  std::printf("  sizeof(Runner)=%zu (+ the runner id and task id in the same allocation)\n",
              sizeof(Runner));
  std::fflush(stdout);

  // (a) Memory, first: a fresh process gives the cleanest RSS delta.
  const MemoryResult mem = measure_memory(cfg, cfg.shards, runners);
  std::printf("  memory: filled %zu runners (%u shards) in %.2f s, not added: %zu\n", runners,
              cfg.shards, mem.fill_seconds, mem.failed);
  std::fflush(stdout);
  ::malloc_trim(0);
  // The same with real ids: UUIDs, pid and interval_ms.
  const MemoryResult uuid = measure_memory(cfg, cfg.shards, runners, 0, Ids::kUuid);
  std::printf("  memory: filled %zu runners with UUID ids in %.2f s, not added: %zu\n", runners,
              uuid.fill_seconds, uuid.failed);
  std::fflush(stdout);
  ::malloc_trim(0);
  // The same for runners that have completed kMaxFences earlier tasks, each
  // fenced (a reference: real fleets move on from task to task).
  const std::size_t fenced_runners = std::max<std::size_t>(1, runners / 5);
  const MemoryResult fenced = measure_memory(cfg, cfg.shards, fenced_runners, kMaxFences);
  std::printf("  memory: %zu runners with %zu completed tasks behind them in %.2f s, failed: %zu\n",
              fenced_runners, kMaxFences, fenced.fill_seconds, fenced.failed);
  std::fflush(stdout);
  ::malloc_trim(0);

  // (c) Modelled sweep CPU with every runner heartbeating, on a fake clock.
  const RearmModel rearm64 = model_rearm(cfg, 64, runners, max_sleep);
  ::malloc_trim(0);
  const RearmModel rearm1024 = model_rearm(cfg, 1024, runners, max_sleep);
  ::malloc_trim(0);
  for (const auto* m : {&rearm64, &rearm1024}) {
    std::printf(
        "  modelled sweep, %u shards: %zu ticks over %.1f s of fake time, sweep+next_due CPU "
        "%.1f ms (%.0f ns per re-armed runner)%s\n",
        m == &rearm64 ? 64u : 1024u, m->ticks, m->simulated_s, m->sweep_cpu_s * 1e3,
        runners > 0 ? m->sweep_cpu_s * 1e9 / static_cast<double>(runners) : 0.0,
        m->clean ? "" : " -- INVALID: a runner went suspect or timed out");
  }
  std::fflush(stdout);

  // (b) Dispatch CPU while nothing is due. The cases take turns in slices of
  // about a second, so that load from elsewhere on a shared machine falls on
  // all of them alike.
  struct Case {
    std::string label;
    std::unique_ptr<DispatchRig> rig;
    bool has_target;
  };
  std::vector<Case> cases;
  const std::string n = std::to_string(runners);
  cases.push_back({"dispatch CPU, 64 shards, " + n + " runners",
                   std::make_unique<DispatchRig>(cfg, 64, runners, false, dir, "s64"), true});
  cases.push_back({"dispatch CPU, 1024 shards, " + n + " runners",
                   std::make_unique<DispatchRig>(cfg, 1024, runners, false, dir, "s1024"), true});
  cases.push_back({"dispatch CPU, 64 shards, empty table (reference)",
                   std::make_unique<DispatchRig>(cfg, 64, 0, false, dir, "empty"), false});
  cases.push_back({"wake-up floor: zmq::poll every max_sleep (reference)",
                   std::make_unique<DispatchRig>(cfg, 64, 0, true, dir, "floor"), false});
  const int slices = std::max(1, static_cast<int>(seconds + 0.5));
  for (int i = 0; i < slices; ++i) {
    for (Case& c : cases) c.rig->run_for(seconds / slices, max_sleep);
  }
  for (const Case& c : cases) {
    const CpuTotals& t = c.rig->totals();
    std::printf(
        "  %s: wall %.2f s, thread CPU %.1f ms (rusage %.1f ms), %ld sleeps (%.1f/s, %.1f us "
        "CPU each), not added: %zu\n",
        c.label.c_str(), t.wall_s, t.cpu_s * 1e3, t.ru_cpu_s * 1e3, t.sleeps,
        static_cast<double>(t.sleeps) / t.wall_s, t.us_per_sleep(), c.rig->failed_fill());
  }
  std::filesystem::remove_all(dir);

  std::printf("\n");
  row("measure", "value", "target", "result");
  const std::string mem_target = fmt("<= %.0f B", kMemoryTargetBytes);
  row("memory per runner, RSS delta (" + n + " runners)", fmt("%.1f B", mem.rss_per_runner),
      mem_target, verdict(mem.failed == 0 && mem.rss_per_runner <= kMemoryTargetBytes));
  row("memory per runner, malloc in use (mallinfo2)", fmt("%.1f B", mem.heap_per_runner),
      mem_target, verdict(mem.failed == 0 && mem.heap_per_runner <= kMemoryTargetBytes));
  row("memory per runner, UUID ids + pid + interval_ms, RSS delta",
      fmt("%.1f B", uuid.rss_per_runner), mem_target,
      verdict(uuid.failed == 0 && uuid.rss_per_runner <= kMemoryTargetBytes));
  row("memory per runner, UUID ids + pid + interval_ms, malloc",
      fmt("%.1f B", uuid.heap_per_runner), mem_target,
      verdict(uuid.failed == 0 && uuid.heap_per_runner <= kMemoryTargetBytes));
  row("memory per runner with " + std::to_string(kMaxFences) + " fences, malloc in use",
      fmt("%.1f B", fenced.heap_per_runner), "-", fenced.failed == 0 ? "(reference)" : "FAIL");
  const std::string cpu_target = fmt("<= %.0f %%", kCpuTargetPercent);
  for (const auto* m : {&rearm64, &rearm1024}) {
    row(std::string("sweep CPU, all heartbeating, ") + (m == &rearm64 ? "64" : "1024") +
            " shards (modelled)",
        fmt("%.3f %%", m->percent()), cpu_target,
        verdict(m->clean && m->percent() <= kCpuTargetPercent));
  }
  for (const Case& c : cases) {
    const CpuTotals& t = c.rig->totals();
    const bool pass = c.rig->failed_fill() == 0 && t.percent() <= kCpuTargetPercent;
    row(c.label, fmt("%.3f %%", t.percent()), c.has_target ? cpu_target : "-",
        c.has_target ? verdict(pass) : "(reference)");
  }
  std::printf(
      "  (CPU: the loop thread's CLOCK_THREAD_CPUTIME_ID over its wall time, as a share of one\n"
      "   core, the cases interleaved in %d slices. The floor is what waking every %lld ms\n"
      "   costs on this machine with no table at all. \"Modelled\": CPU of sweep() and\n"
      "   next_due() per second of fake time, every runner heard from each period, timeout\n"
      "   60 s; it leaves out the wake-ups, which the real-time rows include.)\n",
      slices, static_cast<long long>(max_sleep.count()));
  return 0;
}

}  // namespace
}  // namespace rmon::monitor

int main(int argc, char** argv) {
  CLI::App app{"runner-monitor scale figures: memory per runner and idle dispatch CPU"};
  std::size_t runners = 1'000'000;
  double seconds = 10;
  app.add_option("--runners", runners, "runners to track")->check(CLI::PositiveNumber);
  app.add_option("--seconds", seconds, "seconds per dispatch CPU measurement")
      ->check(CLI::PositiveNumber);
  app.set_version_flag("--version", std::string("scale_bench ") + RMON_VERSION);
  CLI11_PARSE(app, argc, argv);
  try {
    return rmon::monitor::run(runners, seconds);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "scale_bench: %s\n", e.what());
    return 1;
  }
}
