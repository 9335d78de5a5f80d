// task-queue throughput: full task lifecycles per second (submit, lease,
// complete) from N concurrent clients (REQ-style DEALERs, one request in
// flight each) against the real service with --sync full, on this disk.
//
// Baseline, same run: the same service with --max-batch 1 --max-in-flight 0,
// i.e. one SQLite transaction and one fsync per operation, each answered
// after its fsync. Ours gathers what arrives together into one transaction
// (group commit) and applies the next batches while the last ones are
// fsync'd (pipelined, the default); the middle row is group commit without
// the pipeline (--max-in-flight 0), to show what each part brings.
//
// --postgres adds, in the same run, the task-queue on a throwaway PostgreSQL
// (initdb + pg_ctl in a temp folder, fsync on, synchronous_commit on: each
// commit durable before its replies): one replica with each commit waiting
// for its own WAL flush (the default), one replica with
// --pg-pipelined-commits (store::PgSyncer), then two replicas (default) on
// the same database taking half the clients each.
//
//   task_queue_bench [--clients 16] [--seconds 5] [--sync full|normal] [--dir PATH]
//                    [--postgres]

#include <fcntl.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>
#include <vector>

#include "../tests/support/postgres.hpp"
#include "rmon/protocol/msgmap.hpp"
#include "rmon/version.hpp"
#include "rmon/zmq_util.hpp"
#include "task_service.hpp"

namespace {

using namespace std::chrono;
using rmon::protocol::MapBuilder;
using rmon::protocol::MapReader;

struct Run {
  double lifecycles_per_s = 0;
  double ops_per_s = 0;
  uint64_t commits = 0;
};

std::string call(zmq::socket_t& s, const std::string& frame) {
  if (!rmon::send_frames(s, {frame}, zmq::send_flags::none)) return {};
  zmq::message_t reply;
  if (!s.recv(reply)) return {};
  return reply.to_string();
}

std::string request(const std::string& op, const MapBuilder& fields) {
  MapBuilder m;
  m.u64("v", 1).str("op", op).extend(fields);
  return m.finish();
}

// --slow-disk-us: each fsync of the log (the real one) takes that much
// longer, as on a network block device; 0 is this disk as it is.
int g_slow_disk_us = 0;
// --ipc: the clients reach the service over a Unix socket, as co-located
// clients can, instead of loopback TCP.
bool g_ipc = false;

rmon::tq::TaskQueueConfig config(const std::filesystem::path& dir, const std::string& sync,
                                 uint64_t max_batch, uint64_t max_in_flight) {
  std::filesystem::remove_all(dir);
  rmon::tq::TaskQueueConfig c;
  c.data_dir = dir.string();
  c.sync = sync;
  c.max_batch = max_batch;
  c.max_in_flight = max_in_flight;
  c.api_endpoint =
      g_ipc ? "ipc://" + (dir.parent_path() / (dir.filename().string() + "-api")).string()
            : "tcp://127.0.0.1:*";
  c.events_endpoints = {"ipc://" + (dir.parent_path() / "no-monitor-events").string()};
  c.ack_endpoints = {"ipc://" + (dir.parent_path() / "no-monitor-acks").string()};
  c.monitor_endpoints = {"ipc://" + (dir.parent_path() / "no-monitor-control").string()};
  c.metrics_address = "";
  c.first_heartbeat_grace_ms = 86'400'000;
  if (g_slow_disk_us > 0) {
    const std::string log = (dir / "task-queue.db-wal").string();
    c.log_sync_for_tests = [log]() -> std::string {
      const int fd = ::open(log.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || ::fdatasync(fd) != 0) return "cannot sync " + log;
      ::close(fd);
      std::this_thread::sleep_for(std::chrono::microseconds(g_slow_disk_us));
      return {};
    };
  }
  return c;
}

// `clients` clients spread over the replicas (one service each).
Run run(const std::vector<rmon::tq::TaskQueueConfig>& replicas, int clients, int seconds) {
  std::vector<std::unique_ptr<rmon::tq::TaskQueueService>> services;
  std::vector<std::string> endpoints;
  for (const auto& c : replicas) {
    services.push_back(
        std::make_unique<rmon::tq::TaskQueueService>(c, rmon::SystemClock::instance()));
    services.back()->start();
    endpoints.push_back(services.back()->endpoints().api);
  }
  auto commits_now = [&] {
    uint64_t n = 0;
    for (const auto& svc : services) n += svc->service_stats().commits.load();
    return n;
  };

  zmq::context_t ctx;
  std::atomic<bool> go{false}, stop{false};
  std::atomic<uint64_t> lifecycles{0}, ops{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      rmon::SocketOptions o;
      o.recv_timeout_ms = 30'000;
      auto s = rmon::make_socket(ctx, zmq::socket_type::dealer, o);
      s.connect(endpoints[static_cast<std::size_t>(i) % endpoints.size()]);
      const std::string runner = "bench-runner-" + std::to_string(i);
      const std::string payload = MapBuilder().str("cmd", "work").u64("n", i).finish();
      while (!go.load()) std::this_thread::yield();
      while (!stop.load()) {
        (void)call(s, request("submit", MapBuilder().raw("payload", payload)));
        const std::string leased = call(s, request("lease", MapBuilder().str("runner_id", runner)));
        ops += 2;
        auto m = MapReader::parse(leased);
        std::optional<MapReader> task;
        std::string id;
        uint64_t attempt = 0;
        if (!m || !m->opt_map("task", task).ok() || !task || !task->str("task_id", id).ok() ||
            !task->u64("attempt", attempt).ok()) {
          continue;
        }
        const std::string done =
            call(s, request("complete", MapBuilder().str("task_id", id).u64("attempt", attempt)));
        ++ops;
        if (!done.empty()) ++lifecycles;
      }
    });
  }
  const auto t0 = steady_clock::now();
  const uint64_t commits0 = commits_now();
  go = true;
  std::this_thread::sleep_for(seconds * 1s);
  const uint64_t n = lifecycles.load(), o = ops.load();
  const double secs = duration<double>(steady_clock::now() - t0).count();
  const uint64_t commits = commits_now() - commits0;
  stop = true;
  for (auto& t : threads) t.join();
  for (auto& svc : services) svc->stop();
  return {n / secs, o / secs, commits};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("task-queue throughput: group commit against one transaction per operation");
  int clients = 16, seconds = 5;
  std::string sync = "full", dir = "bench-data";
  uint64_t max_in_flight = rmon::ConsumerServiceConfig{}.max_in_flight;
  app.add_option("--clients", clients)->capture_default_str();
  app.add_option("--seconds", seconds)->capture_default_str();
  app.add_option("--sync", sync)->capture_default_str();
  app.add_option("--slow-disk-us", g_slow_disk_us,
                 "Added to every fsync of the log (a slower disk); with --max-batch 1 too")
      ->capture_default_str();
  app.add_option("--max-in-flight", max_in_flight, "The pipelined row's --max-in-flight")
      ->capture_default_str();
  app.add_option("--dir", dir, "Scratch folder on the disk to measure")->capture_default_str();
  bool postgres = false;
  std::string pg_params;
  app.add_option("--pg-params", pg_params,
                 "Appended to the PostgreSQL URL, e.g. "
                 "'&options=-csynchronous_commit%3Doff' (to see what commits cost)");
  app.add_flag("--ipc", g_ipc, "Clients connect over ipc:// (a Unix socket), not loopback TCP");
  app.add_flag("--postgres", postgres,
               "Also one and two replicas on a throwaway PostgreSQL (fsync and "
               "synchronous_commit on)");
  app.set_version_flag("--version", std::string("task_queue_bench ") + RMON_VERSION);
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);

  const auto base = std::filesystem::absolute(dir);
  std::filesystem::create_directories(base);
  std::printf("task-queue lifecycles (submit, lease, complete), %d clients, %d s, --sync %s\n",
              clients, seconds, sync.c_str());
  const Run single = run({config(base / "per-op", sync, 1, 0)}, clients, seconds);
  std::printf(
      "  baseline, one transaction per operation: %9.0f lifecycles/s  %9.0f ops/s  %8lu commits\n",
      single.lifecycles_per_s, single.ops_per_s, static_cast<unsigned long>(single.commits));
  const Run grouped = run({config(base / "group", sync, 512, 0)}, clients, seconds);
  std::printf(
      "  group commit, not pipelined:             %9.0f lifecycles/s  %9.0f ops/s  %8lu commits\n",
      grouped.lifecycles_per_s, grouped.ops_per_s, static_cast<unsigned long>(grouped.commits));
  const Run ours = run({config(base / "pipelined", sync, 512, max_in_flight)}, clients, seconds);
  std::printf(
      "  ours, group commit pipelined (default):  %9.0f lifecycles/s  %9.0f ops/s  %8lu commits\n",
      ours.lifecycles_per_s, ours.ops_per_s, static_cast<unsigned long>(ours.commits));
  const double base_rate = std::max(1.0, single.lifecycles_per_s);
  std::printf("  ratio: %.2fx the baseline (not pipelined: %.2fx; target >= 10x)\n",
              ours.lifecycles_per_s / base_rate, grouped.lifecycles_per_s / base_rate);
  if (postgres) {
    rmon::testing::Postgres pg(/*durable=*/true);
    auto on_pg = [&](const std::string& name, const std::string& url, bool pipelined) {
      auto c = config(base / name, sync, 512, max_in_flight);
      c.pg_pipelined_commits = pipelined;
      c.store = url + pg_params;
      return c;
    };
    // Each commit waiting for its own WAL flush: the engine's plain way.
    const Run flushed = run({on_pg("pg-flushed", pg.fresh_database(), false)}, clients, seconds);
    std::printf(
        "  PostgreSQL, one replica, each commit flushed (default):  %9.0f lifecycles/s  "
        "%8lu commits\n",
        flushed.lifecycles_per_s, static_cast<unsigned long>(flushed.commits));
    const std::string one_url = pg.fresh_database();
    const Run piped = run({on_pg("pg-one", one_url, true)}, clients, seconds);
    std::printf(
        "  PostgreSQL, one replica, --pg-pipelined-commits: %9.0f lifecycles/s  %9.0f ops/s  %8lu "
        "commits (%.2fx flushed each)\n",
        piped.lifecycles_per_s, piped.ops_per_s, static_cast<unsigned long>(piped.commits),
        piped.lifecycles_per_s / std::max(1.0, flushed.lifecycles_per_s));
    const std::string two_url = pg.fresh_database();
    const Run two =
        run({on_pg("pg-a", two_url, false), on_pg("pg-b", two_url, false)}, clients, seconds);
    std::printf(
        "  PostgreSQL, two replicas:                %9.0f lifecycles/s  %9.0f ops/s  %8lu "
        "commits\n",
        two.lifecycles_per_s, two.ops_per_s, static_cast<unsigned long>(two.commits));
    std::printf(
        "  PostgreSQL one replica: %.2fx SQLite (target >= 5,000/s); two replicas: %.2fx one "
        "(target >= 0.8x)\n",
        flushed.lifecycles_per_s / std::max(1.0, ours.lifecycles_per_s),
        two.lifecycles_per_s / std::max(1.0, flushed.lifecycles_per_s));
  }
  std::filesystem::remove_all(base);
  return 0;
}
