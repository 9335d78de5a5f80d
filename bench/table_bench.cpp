// The runner table's hot paths against the simplest alternative, in one run:
//
//   BM_Heartbeat*      accepted heartbeats/s for 100,000 known runners: the
//                      sharded table (64 shards) vs one mutex around one hash
//                      map doing the same update, with 1 and 2 threads.
//   BM_SweepIdle*      a sweep when nothing is due: one atomic load per shard
//                      vs a full scan checking every record's deadline.
//   BM_SweepRearm      a sweep while nothing expires but every runner keeps
//                      heartbeating: each pops once per suspect period and is
//                      re-armed (the lazy re-arm), per re-armed runner. The
//                      baseline is BM_SweepIdleScan, which a scanning design
//                      pays on every tick.
//   BM_SweepExpired*   a sweep that times out `due` runners at once, per
//                      expired runner, vs a full scan that does the same.
//
// The machine this runs on is small and shared: compare rows of one run, not
// figures across runs. Time comes from a FakeClock, so nothing expires unless
// a benchmark advances it.

#include <benchmark/benchmark.h>

#include <time.h>
#include "bench_main.hpp"

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "rmon/fake_clock.hpp"
#include "runner_table.hpp"

namespace rmon::monitor {
namespace {

constexpr std::size_t kHeartbeatRunners = 100'000;
constexpr uint32_t kShards = 64;
constexpr uint64_t kTimeoutMs = 60'000;
constexpr uint64_t kShortTimeoutMs = 1'000;      // runners a sweep benchmark expires
constexpr uint64_t kLongTimeoutMs = 86'400'000;  // runners it must not touch (max timeout)
constexpr int64_t kNsPerMs = 1'000'000;

int64_t to_ns(MonoTime t) { return t.time_since_epoch().count(); }

// A local-process heartbeat for runner `i`, shaped like production ones
// ("runner-0000123", "task-0000123-a", one of 8 pools, a pid, no progress).
Heartbeat make_heartbeat(std::size_t i, uint64_t timeout_ms) {
  char buf[32];
  Heartbeat hb;
  std::snprintf(buf, sizeof buf, "runner-%07zu", i);
  hb.runner.runner_id = buf;
  std::snprintf(buf, sizeof buf, "task-%07zu-a", i);
  hb.runner.task_id = buf;
  hb.runner.attempt = 1;
  hb.runner.pool = "pool-" + std::to_string(i % 8);
  hb.runner.pool_type = protocol::PoolType::kLocalProcess;
  hb.runner.pid = 10'000 + i;
  hb.state = RunnerState::kRunning;
  hb.seq = 1;
  hb.timeout_ms = timeout_ms;
  return hb;
}

TableOptions table_options(uint32_t shards) {
  TableOptions o;
  o.shards = shards;
  o.event_id_prefix = "bench";
  return o;
}

// ---- Baseline: one mutex around one hash map; the sweep scans every record.

struct BaselineRecord {
  std::string task_id;
  uint64_t attempt = 0;
  uint64_t seq = 0;
  std::string pool;
  protocol::PoolType pool_type = protocol::PoolType::kLocalProcess;
  std::optional<uint64_t> pid;
  int64_t last_heard_ns = 0;
  int64_t last_heard_wall_ms = 0;
  uint32_t timeout_ms = 0;
  bool timed_out = false;
};

// Thread-safe: one mutex guards everything.
class BaselineTable {
 public:
  // Find, compare seq, copy fields, update the last-heard time. False when
  // the heartbeat is a duplicate of the current lifecycle.
  bool apply(const Heartbeat& hb, int64_t now_ns, int64_t wall_ms) {
    const auto& info = hb.runner;
    std::lock_guard lock(mu_);
    auto it = map_.find(info.runner_id);
    if (it == map_.end()) {
      it = map_.try_emplace(info.runner_id).first;
    } else if (it->second.task_id == info.task_id && it->second.attempt == info.attempt) {
      if (hb.seq <= it->second.seq) return false;
    } else {
      it->second.timed_out = false;  // a new lifecycle
    }
    BaselineRecord& r = it->second;
    if (r.task_id != info.task_id) r.task_id = info.task_id;
    r.attempt = info.attempt;
    r.seq = hb.seq;
    if (r.pool != info.pool) r.pool = info.pool;
    r.pool_type = info.pool_type;
    r.pid = info.pid;
    r.last_heard_ns = now_ns;
    r.last_heard_wall_ms = wall_ms;
    r.timeout_ms = static_cast<uint32_t>(hb.timeout_ms.value_or(kTimeoutMs));
    return true;
  }

  // How many live records are past their deadline; changes nothing.
  std::size_t scan_due(int64_t now_ns) const {
    std::lock_guard lock(mu_);
    std::size_t due = 0;
    for (const auto& [id, r] : map_) {
      if (!r.timed_out && now_ns >= deadline(r)) ++due;
    }
    return due;
  }

  // Turns every live record past its deadline into a timeout event, as the
  // table's sweep does.
  void expire(int64_t now_ns, int64_t wall_ms, std::vector<Expired>& out) {
    std::lock_guard lock(mu_);
    for (auto& [id, r] : map_) {
      if (r.timed_out || now_ns < deadline(r)) continue;
      Expired x;
      x.deadline = MonoTime(std::chrono::nanoseconds(deadline(r)));
      TimeoutEvent& ev = x.event;
      ev.event_id = "bench-" + std::to_string(next_event_++);
      ev.runner.runner_id = id;
      ev.runner.task_id = r.task_id;
      ev.runner.attempt = r.attempt;
      ev.runner.pool = r.pool;
      ev.runner.pool_type = r.pool_type;
      ev.runner.pid = r.pid;
      ev.last_seq = r.seq;
      ev.last_heartbeat_ms = r.last_heard_wall_ms;
      ev.detected_at_ms = wall_ms;
      ev.timeout_ms = r.timeout_ms;
      ev.delivery = 1;
      out.push_back(std::move(x));
      r.timed_out = true;
    }
  }

 private:
  static int64_t deadline(const BaselineRecord& r) {
    return r.last_heard_ns + static_cast<int64_t>(r.timeout_ms) * kNsPerMs;
  }

  mutable std::mutex mu_;
  std::unordered_map<std::string, BaselineRecord> map_;  // guarded by mu_
  uint64_t next_event_ = 1;                              // guarded by mu_
};

// ---- Heartbeat updates.

// Built once, on first use, before any timed loop. Each benchmark thread owns
// the positions of `order` congruent to its index, so no runner's
// heartbeat is shared between threads and each seq only grows.
struct HeartbeatFixture {
  HeartbeatFixture() {
    table_hbs.reserve(kHeartbeatRunners);
    baseline_hbs.reserve(kHeartbeatRunners);
    for (std::size_t i = 0; i < kHeartbeatRunners; ++i) {
      Heartbeat hb = make_heartbeat(i, kTimeoutMs);
      (void)table.apply(hb, clock.now(), clock.wall_ms());
      (void)baseline.apply(hb, to_ns(clock.now()), clock.wall_ms());
      table_hbs.push_back(hb);
      baseline_hbs.push_back(std::move(hb));
    }
    // Heartbeats arrive in no particular order: walk the runners shuffled.
    order.resize(kHeartbeatRunners);
    std::iota(order.begin(), order.end(), 0u);
    std::shuffle(order.begin(), order.end(), std::mt19937(42));
  }

  FakeClock clock;
  RunnerTable table{table_options(kShards)};
  BaselineTable baseline;
  std::vector<Heartbeat> table_hbs;  // seq advanced in place
  std::vector<Heartbeat> baseline_hbs;
  std::vector<uint32_t> order;
};

HeartbeatFixture& heartbeat_fixture() {
  static HeartbeatFixture f;
  return f;
}

double thread_cpu_seconds() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// `core_share` is each thread's CPU time over the loop's wall time, averaged
// over threads: well below 1 for the table means other load on the machine
// took the core (the table never blocks for long); for the baseline it also
// counts time asleep on its one mutex.
template <class ApplyFn>
void run_heartbeats(benchmark::State& state, std::vector<Heartbeat>& hbs, ApplyFn&& apply) {
  HeartbeatFixture& f = heartbeat_fixture();
  const auto first = static_cast<std::size_t>(state.thread_index());
  const auto step = static_cast<std::size_t>(state.threads());
  std::size_t pos = first;
  uint64_t rejected = 0;
  const double cpu0 = thread_cpu_seconds();
  const auto wall0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    Heartbeat& hb = hbs[f.order[pos]];
    ++hb.seq;
    if (!apply(hb, f.clock.now(), f.clock.wall_ms())) ++rejected;
    pos += step;
    if (pos >= f.order.size()) pos = first;
  }
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  state.SetItemsProcessed(state.iterations());
  state.counters["rejected"] = static_cast<double>(rejected);  // must be 0
  state.counters["core_share"] = benchmark::Counter(
      wall > 0 ? (thread_cpu_seconds() - cpu0) / wall : 0, benchmark::Counter::kAvgThreads);
}

void BM_HeartbeatTable(benchmark::State& state) {
  HeartbeatFixture& f = heartbeat_fixture();
  run_heartbeats(state, f.table_hbs, [&](const Heartbeat& hb, MonoTime now, int64_t wall) {
    return accepted(f.table.apply(hb, now, wall));
  });
}
BENCHMARK(BM_HeartbeatTable)->Threads(1)->Threads(2)->UseRealTime();

void BM_HeartbeatBaseline(benchmark::State& state) {
  HeartbeatFixture& f = heartbeat_fixture();
  run_heartbeats(state, f.baseline_hbs, [&](const Heartbeat& hb, MonoTime now, int64_t wall) {
    return f.baseline.apply(hb, to_ns(now), wall);
  });
}
BENCHMARK(BM_HeartbeatBaseline)->Threads(1)->Threads(2)->UseRealTime();

// ---- Sweep when nothing is due.

std::unique_ptr<RunnerTable> filled_table(std::size_t n, uint32_t shards, const FakeClock& clock) {
  auto table = std::make_unique<RunnerTable>(table_options(shards));
  for (std::size_t i = 0; i < n; ++i) {
    (void)table->apply(make_heartbeat(i, kTimeoutMs), clock.now(), clock.wall_ms());
  }
  return table;
}

std::unique_ptr<BaselineTable> filled_baseline(std::size_t n, const FakeClock& clock) {
  auto table = std::make_unique<BaselineTable>();
  for (std::size_t i = 0; i < n; ++i) {
    (void)table->apply(make_heartbeat(i, kTimeoutMs), to_ns(clock.now()), clock.wall_ms());
  }
  return table;
}

// Benchmarks run one after another on the main thread: the caches need no
// lock. Tables stay until exit so repeated runs of a benchmark reuse them.
FakeClock& idle_clock() {
  static FakeClock clock;
  return clock;
}

RunnerTable& idle_table(std::size_t n, uint32_t shards) {
  static std::map<std::pair<std::size_t, uint32_t>, std::unique_ptr<RunnerTable>> cache;
  auto& slot = cache[{n, shards}];
  if (!slot) slot = filled_table(n, shards, idle_clock());
  return *slot;
}

BaselineTable& idle_baseline(std::size_t n) {
  static std::map<std::size_t, std::unique_ptr<BaselineTable>> cache;
  auto& slot = cache[n];
  if (!slot) slot = filled_baseline(n, idle_clock());
  return *slot;
}

void BM_SweepIdleTable(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  RunnerTable& table = idle_table(n, static_cast<uint32_t>(state.range(1)));
  const FakeClock& clock = idle_clock();
  std::vector<Expired> out;
  for (auto _ : state) {
    table.sweep(clock.now(), clock.wall_ms(), out);
    benchmark::DoNotOptimize(out.data());
  }
  if (!out.empty()) state.SkipWithError("a sweep found something due");
}
BENCHMARK(BM_SweepIdleTable)
    ->ArgNames({"runners", "shards"})
    ->Args({100'000, kShards})
    ->Args({1'000'000, kShards})
    ->Args({1'000'000, 1024});

void BM_SweepIdleScan(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  BaselineTable& table = idle_baseline(n);
  const int64_t now_ns = to_ns(idle_clock().now());
  std::size_t due = 0;
  for (auto _ : state) {
    due += table.scan_due(now_ns);
    benchmark::DoNotOptimize(due);
  }
  if (due != 0) state.SkipWithError("a scan found something due");
}
BENCHMARK(BM_SweepIdleScan)->ArgNames({"runners"})->Arg(100'000)->Arg(1'000'000);

// ---- Sweep while nothing expires.
//
// Every runner heartbeats, so none expires, but each pops once per suspect
// period (timeout 60 s * suspect ratio 0.5 = 30 s) and is re-armed. The
// runners are spread evenly over that period in one group per suspect-check
// grid slot (TableOptions::suspect_grid_ms, 10 ms; 100 ms before
// 2026-12-07); each iteration is one slot: the due group's heartbeats
// arrive 1 ms before its due time (timing paused), then the sweep runs.

const auto kTickMs = static_cast<int64_t>(TableOptions{}.suspect_grid_ms);
const auto kTicksPerPeriod = static_cast<std::size_t>(30'000 / kTickMs);

struct RearmFixture {
  explicit RearmFixture(std::size_t runners) : table(table_options(kShards)) {
    hbs.reserve(runners);
    for (std::size_t i = 0; i < runners; ++i) hbs.push_back(make_heartbeat(i, kTimeoutMs));
    for (std::size_t g = 0; g < kTicksPerPeriod; ++g) {
      if (g > 0) clock.advance_ms(kTickMs);
      for (std::size_t i = g; i < runners; i += kTicksPerPeriod) {
        (void)table.apply(hbs[i], clock.now(), clock.wall_ms());
      }
    }
  }
  // Heartbeats the group due next and moves the clock to its due time.
  // Returns the group's size.
  std::size_t next_tick() {
    const MonoTime due = *table.next_due();
    clock.advance(due - std::chrono::milliseconds(1) - clock.now());
    std::size_t n = 0;
    for (std::size_t i = group; i < hbs.size(); i += kTicksPerPeriod, ++n) {
      ++hbs[i].seq;
      (void)table.apply(hbs[i], clock.now(), clock.wall_ms());
    }
    clock.advance(due - clock.now());
    group = (group + 1) % kTicksPerPeriod;
    return n;
  }

  FakeClock clock;
  RunnerTable table;
  std::vector<Heartbeat> hbs;
  std::size_t group = 0;  // the group due next: groups keep their order
};

void BM_SweepRearm(benchmark::State& state) {
  static std::map<std::size_t, std::unique_ptr<RearmFixture>> cache;
  const auto runners = static_cast<std::size_t>(state.range(0));
  auto& slot = cache[runners];
  if (!slot) slot = std::make_unique<RearmFixture>(runners);
  RearmFixture& f = *slot;
  std::vector<Expired> out;
  std::size_t rearmed = 0;
  for (auto _ : state) {
    state.PauseTiming();
    rearmed += f.next_tick();
    state.ResumeTiming();
    f.table.sweep(f.clock.now(), f.clock.wall_ms(), out);
  }
  // A group popped out of turn would not have been heard from: SUSPECT.
  if (!out.empty() || f.table.count(RunnerFilter{RunnerState::kSuspect, {}}) != 0) {
    state.SkipWithError("a runner was marked suspect or timed out");
  }
  state.SetItemsProcessed(static_cast<int64_t>(rearmed));
  state.counters["per_rearm"] = benchmark::Counter(
      static_cast<double>(rearmed), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_SweepRearm)->ArgNames({"runners"})->Arg(100'000)->Arg(1'000'000);

// ---- Sweep that expires `due` runners at once, in a table of `runners`.
//
// Every (runners / due)-th runner has a short timeout, the rest an hour.
// Between timed sweeps (timing paused) the expired runners start a new
// attempt, which re-arms them, and the clock jumps past their deadline, so a
// single sweep pops each at its suspect time and times it out.

struct ExpiryFixture {
  ExpiryFixture(std::size_t due, std::size_t runners) : table(table_options(kShards)) {
    const std::size_t stride = runners / due;
    for (std::size_t i = 0; i < runners; ++i) {
      const bool short_lived = i % stride == 0 && hbs.size() < due;
      Heartbeat hb = make_heartbeat(i, short_lived ? kShortTimeoutMs : kLongTimeoutMs);
      (void)table.apply(hb, clock.now(), clock.wall_ms());
      (void)baseline.apply(hb, to_ns(clock.now()), clock.wall_ms());
      if (short_lived) hbs.push_back(std::move(hb));
    }
  }
  // Starts a new attempt of every short-lived runner, then moves the clock
  // past their deadline (but nowhere near the long-lived runners' suspect time).
  template <class ApplyFn>
  void rearm(ApplyFn&& apply) {
    for (Heartbeat& hb : hbs) {
      ++hb.runner.attempt;
      hb.seq = 1;
      apply(hb);
    }
    clock.advance_ms(static_cast<int64_t>(kShortTimeoutMs) + 1);
  }

  FakeClock clock;
  RunnerTable table;
  BaselineTable baseline;
  std::vector<Heartbeat> hbs;  // the short-lived runners
};

ExpiryFixture& expiry_fixture(std::size_t due, std::size_t runners) {
  static std::map<std::pair<std::size_t, std::size_t>, std::unique_ptr<ExpiryFixture>> cache;
  auto& slot = cache[{due, runners}];
  if (!slot) slot = std::make_unique<ExpiryFixture>(due, runners);
  return *slot;
}

void report_expiry(benchmark::State& state, std::size_t due, bool all_found) {
  if (!all_found) state.SkipWithError("a sweep did not expire exactly the due runners");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * due));
  state.counters["per_expired"] =
      benchmark::Counter(static_cast<double>(due), benchmark::Counter::kIsIterationInvariantRate |
                                                       benchmark::Counter::kInvert);
}

void BM_SweepExpiredTable(benchmark::State& state) {
  const auto due = static_cast<std::size_t>(state.range(0));
  ExpiryFixture& f = expiry_fixture(due, static_cast<std::size_t>(state.range(1)));
  std::vector<Expired> out;  // reused, as the dispatcher does
  bool all_found = true;
  for (auto _ : state) {
    state.PauseTiming();
    out.clear();
    f.rearm(
        [&](const Heartbeat& hb) { (void)f.table.apply(hb, f.clock.now(), f.clock.wall_ms()); });
    state.ResumeTiming();
    f.table.sweep(f.clock.now(), f.clock.wall_ms(), out);
    all_found = all_found && out.size() == due;
  }
  // The clock must not have reached the long-lived runners' suspect time.
  all_found = all_found && f.table.count(RunnerFilter{RunnerState::kSuspect, {}}) == 0;
  report_expiry(state, due, all_found);
}
BENCHMARK(BM_SweepExpiredTable)
    ->ArgNames({"due", "runners"})
    ->Args({10'000, 10'000})
    ->Args({10'000, 1'000'000});

void BM_SweepExpiredScan(benchmark::State& state) {
  const auto due = static_cast<std::size_t>(state.range(0));
  ExpiryFixture& f = expiry_fixture(due, static_cast<std::size_t>(state.range(1)));
  std::vector<Expired> out;
  bool all_found = true;
  for (auto _ : state) {
    state.PauseTiming();
    out.clear();
    f.rearm([&](const Heartbeat& hb) {
      (void)f.baseline.apply(hb, to_ns(f.clock.now()), f.clock.wall_ms());
    });
    state.ResumeTiming();
    f.baseline.expire(to_ns(f.clock.now()), f.clock.wall_ms(), out);
    all_found = all_found && out.size() == due;
  }
  report_expiry(state, due, all_found);
}
BENCHMARK(BM_SweepExpiredScan)
    ->ArgNames({"due", "runners"})
    ->Args({10'000, 10'000})
    ->Args({10'000, 1'000'000});

}  // namespace
}  // namespace rmon::monitor

RMON_BENCHMARK_MAIN("table_bench")
