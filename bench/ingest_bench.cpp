// Ingest throughput: heartbeats/s through the running monitor (publisher
// process -> SUB -> decode -> table) against raw ZeroMQ PUB -> SUB of the same
// frames with no decoding, on the same machine in the same run. Rounds
// alternate between the two so machine noise hits both alike.
//
//   ingest_bench [--messages N] [--runners R] [--rounds K]

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "bench_util.hpp"
#include "fleet.hpp"
#include "rmon/config.hpp"
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

}  // namespace

int main(int argc, char** argv) {
  Params p;
  rmon::Settings s("ingest_bench", "Monitor ingest throughput against raw ZeroMQ PUB/SUB.");
  s.add("messages", p.messages, "Heartbeats per round");
  s.add("runners", p.runners, "Distinct runners the heartbeats cycle over");
  s.add("rounds", p.rounds, "Rounds of each kind (alternating)");
  s.add("hwm", p.hwm, "Heartbeat receive HWM of the monitor (-1: its default)");
  s.add_flag("pin", p.pin, "Publisher on CPU 0 and the receiving side on CPU 1");
  s.add_flag("threads", p.threads, "Print each receiving thread's CPU use per round");
  s.add("only", p.only, "Run only raw or monitor rounds (for profiling)");
  if (auto code = s.parse(argc, argv)) return *code;
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
