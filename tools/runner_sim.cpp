// runner-sim: simulates a fleet of runners heartbeating to a runner-monitor.
// Some can be told to fall silent (die) or complete, to watch the monitor
// react. For demos, the local stack and load tests against 127.0.0.1.

#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>
#include <random>
#include <thread>

#include "fleet.hpp"
#include "rmon/config.hpp"
#include "rmon/logging.hpp"
#include "rmon/protocol/codec.hpp"
#include "rmon/zmq_util.hpp"

namespace {
volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }
}  // namespace

int main(int argc, char** argv) {
  rmon::tools::FleetOptions f;
  std::string endpoint = "tcp://127.0.0.1:5555";
  std::string pool_type = "local-process";
  uint64_t duration_ms = 0;
  uint64_t die_after_ms = 0;
  double die_fraction = 0.0;
  double complete_fraction = 0.0;
  rmon::Settings s("runner-sim", "Simulated runners that publish heartbeats to a runner-monitor.");
  s.add("endpoint", endpoint, "Monitor heartbeat endpoint to connect the PUB socket to");
  s.add("runners", f.runners, "Number of simulated runners");
  s.add("prefix", f.prefix, "Runner id prefix");
  s.add("pool", f.pool, "Pool name");
  s.add("pool-type", pool_type, "local-process, docker or kubernetes");
  s.add("timeout-ms", f.timeout_ms, "timeout_ms each runner announces");
  s.add("interval-ms", f.interval_ms, "Heartbeat period of each runner");
  s.add("duration-ms", duration_ms, "Stop after this long (0 runs until SIGINT/SIGTERM)");
  s.add("die-after-ms", die_after_ms, "When to make --die-fraction of the runners fall silent");
  s.add("die-fraction", die_fraction, "Share of runners that fall silent at --die-after-ms");
  s.add("complete-fraction", complete_fraction,
        "Share of runners that report completed at --die-after-ms");
  if (auto code = s.parse(argc, argv)) return *code;
  rmon::init_logging("runner-sim", s.log_level());
  auto pt = rmon::protocol::parse_pool_type(pool_type);
  if (!pt) {
    spdlog::error("unknown --pool-type '{}'", pool_type);
    return 2;
  }
  f.pool_type = *pt;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  rmon::tools::Fleet fleet(f);
  zmq::context_t ctx;
  rmon::SocketOptions opts;
  opts.send_hwm = 1'000'000;
  opts.linger_ms = 1000;  // let the last heartbeats (completions) out on exit
  auto pub = rmon::make_socket(ctx, zmq::socket_type::pub, opts);
  pub.connect(endpoint);
  spdlog::info("runner-sim started runners={} endpoint={} interval_ms={} timeout_ms={}", f.runners,
               endpoint, f.interval_ms, f.timeout_ms);

  // Each runner i has its own phase inside the period, as real runners do.
  std::vector<char> alive(fleet.size(), 1);
  const auto start = std::chrono::steady_clock::now();
  const auto period = std::chrono::milliseconds(std::max<uint64_t>(f.interval_ms, 1));
  bool died = false;
  std::mt19937 rng(12345);
  uint64_t sent = 0;
  for (uint64_t round = 0; !g_stop; ++round) {
    const auto elapsed = std::chrono::steady_clock::now() - start;
    if (duration_ms && elapsed >= std::chrono::milliseconds(duration_ms)) break;
    if (!died && die_after_ms && elapsed >= std::chrono::milliseconds(die_after_ms)) {
      died = true;
      std::size_t silent = 0, completed = 0;
      for (std::size_t i = 0; i < fleet.size(); ++i) {
        const double u = std::uniform_real_distribution<double>(0, 1)(rng);
        if (u < die_fraction) {
          alive[i] = 0;
          ++silent;
        } else if (u < die_fraction + complete_fraction) {
          fleet.complete(i);
          fleet.send(pub, i);
          alive[i] = 0;
          ++completed;
        }
      }
      spdlog::info("runners fell silent silent={} completed={}", silent, completed);
    }
    const auto round_start = start + round * period;
    for (std::size_t i = 0; i < fleet.size() && !g_stop; ++i) {
      if (!alive[i]) continue;
      std::this_thread::sleep_until(round_start + period * i / fleet.size());
      fleet.send(pub, i);
      ++sent;
    }
  }
  spdlog::info("runner-sim stopped heartbeats_sent={}", sent);
  return 0;
}
