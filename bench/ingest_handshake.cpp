// ingest_bench --handshake-storm: many CURVE handshakes at once (see
// ingest_handshake.hpp and the modes at the top of ingest_bench.cpp).

#include "ingest_handshake.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "ingest_curve.hpp"
#include "rmon/security/handshake_monitor.hpp"
#include "rmon/security/zap.hpp"
#include "rmon/zmq_util.hpp"

using namespace std::chrono_literals;

namespace rmon::bench::ingest {
namespace {

// Raises the open-file limit to its hard limit; returns the soft limit now.
rlim_t raise_nofile() {
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
    ::getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

// TcpExt ListenOverflows + ListenDrops of this network namespace: connections
// the kernel dropped because a listener's accept queue was full.
uint64_t listen_drops() {
  std::ifstream f("/proc/net/netstat");
  std::string names, values;
  while (std::getline(f, names) && std::getline(f, values)) {
    if (names.rfind("TcpExt:", 0) != 0) continue;
    std::istringstream n(names), v(values);
    std::string name, value;
    uint64_t total = 0;
    while (n >> name && v >> value) {
      if (name == "ListenOverflows" || name == "ListenDrops") total += std::stoull(value);
    }
    return total;
  }
  return 0;
}

// A client process of a storm: `count` runners from `first`, each an XPUB
// socket of its own with runner key (first + j) / --runners-per-key. The
// sockets are made before "go"; then all connect at once, and each sends its
// runner's first heartbeat once its subscription arrived (its handshake was
// admitted). Reports "<subscribed> <seconds> <cpu seconds>" and holds the
// connections until the parent says "exit".
int storm_client(rmon::bench::Pipe& to_child, rmon::bench::Pipe& from_child, const Params& p,
                 std::size_t first, std::size_t count, const CurveKeys& keys) {
  if (p.pin) rmon::bench::pin_to_cpu(0);
  rmon::tools::FleetOptions fo;
  fo.runners = p.storm;
  fo.timeout_ms = 600'000;
  rmon::tools::Fleet fleet(fo);
  std::vector<std::string> payloads(count);
  for (std::size_t j = 0; j < count; ++j) fleet.next(first + j, payloads[j]);

  const std::string endpoint = to_child.read_line();
  zmq::context_t ctx(1, static_cast<int>(count) + 64);
  rmon::SocketOptions o;
  o.linger_ms = 5'000;
  std::vector<zmq::socket_t> socks;
  socks.reserve(count);
  for (std::size_t j = 0; j < count; ++j) {
    socks.push_back(rmon::make_socket(ctx, zmq::socket_type::xpub, o));
    sec::make_curve_client(socks.back(), keys.client((first + j) / p.runners_per_key),
                           std::chrono::milliseconds(o.linger_ms));
  }
  from_child.write_line("ready");
  if (to_child.read_line() != "go") return 1;
  const double cpu0 = process_cpu();
  const auto t0 = SteadyClock::now();
  for (zmq::socket_t& s : socks) s.connect(endpoint);
  const std::size_t done = await_subscriptions(socks, 280s, [&](std::size_t j) {
    rmon::send_frames(socks[j], {fleet.topic(first + j), payloads[j]}, zmq::send_flags::none);
  });
  const double secs = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  char line[128];
  std::snprintf(line, sizeof line, "%zu %.6f %.6f", done, secs, process_cpu() - cpu0);
  from_child.write_line(line);
  to_child.read_line();  // "exit"
  return done == count ? 0 : 3;
}

struct StormRound {
  double admit_s = -1;  // until all N were admitted (-1: never)
  double known_s = -1;  // until all N first heartbeats were received
  double t50 = -1, t90 = -1, t99 = -1;
  double server_cpu_s = 0;  // this process, go -> all admitted
  double client_cpu_s = 0;  // the client processes, go -> all subscribed
  uint64_t admitted = 0, refused = 0, failed = 0, known = 0, listen_drops = 0;
  std::map<int, rmon::bench::ThreadCpu> threads0, threads1;
};

// One storm against a fresh CURVE monitor (`monitor`) or a raw CURVE SUB with
// no ZAP handler in a context of its own.
StormRound storm_round(const Params& p, const CurveKeys& keys, bool monitor) {
  const std::size_t n = p.storm;
  const std::size_t procs = (n + p.storm_per_process - 1) / p.storm_per_process;
  std::vector<std::unique_ptr<rmon::bench::Pipe>> to_child, from_child;
  for (std::size_t i = 0; i < procs; ++i) {
    to_child.push_back(std::make_unique<rmon::bench::Pipe>());
    from_child.push_back(std::make_unique<rmon::bench::Pipe>());
  }
  std::vector<pid_t> children;
  for (std::size_t i = 0; i < procs; ++i) {
    const std::size_t first = i * n / procs, last = (i + 1) * n / procs;
    children.push_back(rmon::bench::fork_child([&, i, first, last] {
      for (std::size_t j = 0; j < procs; ++j) {
        to_child[j]->close_write();  // EOF if this process dies
        from_child[j]->close_read();
        if (j != i) from_child[j]->close_write();
      }
      return storm_client(*to_child[i], *from_child[i], p, first, last - first, keys);
    }));
  }
  for (auto& f : from_child) f->close_write();

  StormRound r;
  std::unique_ptr<rmon::monitor::MonitorService> svc;
  std::unique_ptr<zmq::context_t> ctx;
  std::optional<zmq::socket_t> sub;
  std::unique_ptr<sec::HandshakeMonitor> handshakes;
  std::string endpoint;
  if (monitor) {
    rmon::monitor::MonitorConfig c = rmon::bench::loopback_monitor_config();
    keys.configure(c);
    svc = make_monitor(p, c);
    svc->start();
    endpoint = svc->endpoints().heartbeat;
  } else {
    ctx = std::make_unique<zmq::context_t>(std::max(1, p.monitor_io_threads));  // as the monitor's
    rmon::SocketOptions o;
    o.recv_hwm = rmon::monitor::MonitorConfig{}.heartbeat_hwm;
    o.backlog = p.listen_backlog;
    sub = rmon::make_socket(*ctx, zmq::socket_type::sub, o);
    sub->set(zmq::sockopt::subscribe, "hb/");
    make_raw_curve_server(*sub, keys.server_secret());
    handshakes = std::make_unique<sec::HandshakeMonitor>(*ctx, *sub);
    endpoint = rmon::bind_endpoint(*sub, "tcp://127.0.0.1:*");
  }
  for (auto& t : to_child) t->write_line(endpoint);
  for (auto& f : from_child) {
    if (!f->readable(120'000) || f->read_line() != "ready") {
      throw std::runtime_error("a storm client never became ready");
    }
  }

  // Counts as of now: admitted and refused handshakes, runners known.
  auto poll_counts = [&](std::chrono::milliseconds wait) {
    if (monitor) {
      std::this_thread::sleep_for(wait);
      uint64_t refused = 0;
      for (const auto& c : svc->security()->zap().counts()) {
        if (c.domain == "hb" && c.result != sec::ZapResult::kAllowed) refused += c.value;
      }
      r.admitted = svc->security()->zap().count("hb", sec::ZapResult::kAllowed);
      r.refused = refused;
      r.known = svc->table().size();
      return;
    }
    zmq::pollitem_t items[] = {{sub->handle(), 0, ZMQ_POLLIN, 0},
                               {handshakes->pollable().handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 2, wait);
    for (const sec::HandshakeEvent& e : handshakes->poll()) {
      if (e.kind == sec::HandshakeKind::kSucceeded) {
        ++r.admitted;
      } else if (e.kind == sec::HandshakeKind::kAuthFailed) {
        ++r.refused;
      } else {
        ++r.failed;
      }
    }
    std::vector<zmq::message_t> frames;
    while (rmon::recv_frames(*sub, frames, zmq::recv_flags::dontwait)) {
      if (frames.size() == 2) ++r.known;
    }
  };

  const uint64_t drops0 = listen_drops();
  r.threads0 = rmon::bench::thread_cpu();
  const double cpu0 = process_cpu();
  const auto t0 = SteadyClock::now();
  for (auto& t : to_child) t->write_line("go");
  const auto limit = t0 + 290s;
  auto since = [&] { return std::chrono::duration<double>(SteadyClock::now() - t0).count(); };
  while (SteadyClock::now() < limit) {
    poll_counts(1ms);
    const double t = since();
    if (r.t50 < 0 && r.admitted * 2 >= n) r.t50 = t;
    if (r.t90 < 0 && r.admitted * 10 >= n * 9) r.t90 = t;
    if (r.t99 < 0 && r.admitted * 100 >= n * 99) r.t99 = t;
    if (r.admit_s < 0 && r.admitted >= n) {
      r.admit_s = t;
      r.server_cpu_s = process_cpu() - cpu0;
      r.threads1 = rmon::bench::thread_cpu();
    }
    if (r.known_s < 0 && r.known >= n) r.known_s = t;
    if (r.admit_s >= 0 && r.known_s >= 0) break;
  }
  if (r.admit_s < 0) {
    r.server_cpu_s = process_cpu() - cpu0;
    r.threads1 = rmon::bench::thread_cpu();
  }
  r.listen_drops = listen_drops() - drops0;
  std::size_t subscribed = 0;
  for (auto& f : from_child) {
    if (!f->readable(300'000)) continue;
    std::istringstream line(f->read_line());
    std::size_t done = 0;
    double secs = 0, cpu = 0;
    line >> done >> secs >> cpu;
    subscribed += done;
    r.client_cpu_s += cpu;
  }
  if (subscribed < n) {
    std::printf("  only %zu of %zu clients got their subscription\n", subscribed, n);
  }
  for (auto& t : to_child) t->write_line("exit");
  for (pid_t c : children) rmon::bench::wait_child(c);
  if (svc) svc->stop();
  handshakes.reset();
  sub.reset();
  ctx.reset();
  return r;
}

}  // namespace

int storm_rounds(const Params& p) {
  const rlim_t nofile = raise_nofile();
  // Each client process holds a socket (an eventfd) and a connection per
  // runner; this one a connection per runner.
  if (nofile < p.storm + 256 || nofile < 2 * p.storm_per_process + 256) {
    std::printf("RLIMIT_NOFILE %llu is too low for %zu runners (%zu per client process)\n",
                static_cast<unsigned long long>(nofile), p.storm, p.storm_per_process);
    return 1;
  }
  const std::size_t nkeys = (p.storm + p.runners_per_key - 1) / p.runners_per_key;
  const CurveKeys keys(nkeys);
  const std::size_t procs = (p.storm + p.storm_per_process - 1) / p.storm_per_process;
  std::printf(
      "handshake storm: %zu runners, each its own CURVE socket, in %zu client processes%s; %zu "
      "runner keys enrolled (one per %zu runners); the receiving process%s; listen backlog: the "
      "monitor's %d, the baseline's %d\n",
      p.storm, procs, p.pin ? " on CPU 0" : "", nkeys, p.runners_per_key, p.pin ? " on CPU 1" : "",
      rmon::kFleetListenBacklog, p.listen_backlog);
  std::vector<double> admit[2], known[2], cpu_per[2], rate[2];
  bool all_ok = true;
  for (int i = 0; i < p.rounds; ++i) {
    for (bool monitor : {false, true}) {
      if ((monitor && p.only == "raw") || (!monitor && p.only == "monitor")) continue;
      const StormRound r = storm_round(p, keys, monitor);
      const int m = monitor ? 1 : 0;
      const double per = r.server_cpu_s / static_cast<double>(p.storm);
      if (r.admit_s >= 0) {
        admit[m].push_back(r.admit_s);
        rate[m].push_back(static_cast<double>(p.storm) / r.admit_s);
        cpu_per[m].push_back(per * 1e3);  // ms
      }
      if (r.known_s >= 0) known[m].push_back(r.known_s);
      all_ok = all_ok && r.admit_s >= 0 && r.known_s >= 0 && r.refused == 0;
      std::printf(
          "round %d %s: all admitted in %.2f s (%.0f/s; 50%% %.2f s, 90%% %.2f s, 99%% %.2f s), "
          "all first heartbeats in %.2f s; admitted %llu, refused %llu%s, known %llu; server CPU "
          "%.2f s = %.3f ms per handshake (%.0f%% of a core); clients' CPU %.2f s; listen queue "
          "drops %llu\n",
          i + 1, monitor ? "monitor" : "raw-curve", r.admit_s,
          r.admit_s > 0 ? static_cast<double>(p.storm) / r.admit_s : 0.0, r.t50, r.t90, r.t99,
          r.known_s, static_cast<unsigned long long>(r.admitted),
          static_cast<unsigned long long>(r.refused),
          monitor ? "" : (", other failures " + std::to_string(r.failed)).c_str(),
          static_cast<unsigned long long>(r.known), r.server_cpu_s, per * 1e3,
          r.admit_s > 0 ? 100.0 * r.server_cpu_s / r.admit_s : 0.0, r.client_cpu_s,
          static_cast<unsigned long long>(r.listen_drops));
      if (p.threads || i == 0) {
        rmon::bench::print_thread_cpu(r.threads0, r.threads1, r.admit_s > 0 ? r.admit_s : 1);
      }
      std::fflush(stdout);
    }
  }
  using rmon::bench::median;
  std::printf("\nhandshake storm, %zu runners connecting at once, median of %d rounds (range)\n",
              p.storm, p.rounds);
  const char* names[] = {"raw CURVE SUB, no ZAP (baseline)", "runner-monitor, --security curve"};
  for (int m = 0; m < 2; ++m) {
    if (admit[m].empty()) continue;
    std::printf(
        "  %-34s all admitted %.2f s (%s), %.0f/s; first heartbeats all in %.2f s; server CPU "
        "%.3f ms per handshake (%s)\n",
        names[m], median(admit[m]), range(admit[m], "%.2f").c_str(), median(rate[m]),
        known[m].empty() ? -1.0 : median(known[m]), median(cpu_per[m]),
        range(cpu_per[m], "%.3f").c_str());
  }
  std::printf("  every runner admitted and known, none refused: %s\n", all_ok ? "PASS" : "FAIL");
  if (!admit[1].empty()) {
    const double worst = *std::max_element(admit[1].begin(), admit[1].end());
    const rmon::monitor::MonitorConfig defaults;
    std::printf(
        "  server CPU floor with one I/O thread: %.1f s for %zu handshakes (%.3f ms each)\n",
        median(cpu_per[1]) * static_cast<double>(p.storm) / 1e3, p.storm, median(cpu_per[1]));
    std::printf(
        "  restart grace: every runner was back within %.1f s (worst round). With "
        "--restart-grace-ms %llu (the default) a restored runner gets its own timeout after the "
        "restart, so runners whose timeout exceeds %.1f s plus one heartbeat interval are covered "
        "(the default timeout, %.0f s, is); shorter timeouts need --restart-grace-ms above that\n",
        worst, static_cast<unsigned long long>(defaults.restart_grace_ms), worst,
        static_cast<double>(defaults.default_timeout_ms) / 1e3);
  }
  return all_ok ? 0 : 1;
}

}  // namespace rmon::bench::ingest
