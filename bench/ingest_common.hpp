#pragma once
// What the modes of ingest_bench share (ingest_bench.cpp, ingest_joins.cpp,
// ingest_curve.cpp, ingest_handshake.cpp): the command line's parameters, a
// round's data folder and monitor, its heartbeats encoded before the clock
// starts, the probing publisher socket, the raw baseline's SUB and the wait
// for a round's end. Each piece is used by one thread; none is thread-safe.

#include <stdlib.h>  // mkdtemp

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "fleet.hpp"
#include "monitor_config.hpp"
#include "rmon/clock.hpp"
#include "rmon/zmq_util.hpp"
#include "service.hpp"

namespace rmon::bench::ingest {

using SteadyClock = std::chrono::steady_clock;

struct Params {
  std::size_t messages = 500'000;
  std::size_t runners = 10'000;
  int rounds = 3;
  int hwm = -1;  // the monitor's heartbeat HWM; -1 keeps its default
  std::size_t rewrite_pass = rmon::monitor::kRewritePassRunners;  // the persister's
  bool pin = true;            // publisher on CPU 0, receiver on CPU 1
  bool threads = false;       // print each receiving thread's CPU use
  std::string only;           // "raw" or "monitor" to run one kind (for profiling)
  bool joins = false;         // join storm rounds instead (see join_round)
  bool persist = false;       // the monitor keeps a data folder (a fresh temp one)
  bool default_sync = false;  // with persist: the monitor's own --sync (normal), not full
  bool compare_persistence = false;
  // --curve
  bool curve = false;
  int connections = 8;         // publisher connections (one socket each)
  int io_threads = 0;          // the publisher's and raw receivers' contexts; 0: see main()
  int monitor_io_threads = 0;  // 0: as the monitor makes its context (one)
  // --handshake-storm
  std::size_t storm = 0;  // runners connecting at once; 0: no storm
  std::size_t runners_per_key = 100;
  std::size_t storm_per_process = 2500;
  int listen_backlog = rmon::kFleetListenBacklog;  // the baseline's, as the monitor's
};

// A fresh data folder for one round when `p.persist`, removed afterwards.
struct RoundDataDir {
  explicit RoundDataDir(const Params& p, rmon::monitor::MonitorConfig& c) {
    if (!p.persist) return;
    char tmpl[] = "/tmp/rmon-ingest-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
    c.data_dir = path;
    if (!p.default_sync) c.sync = "full";
  }
  ~RoundDataDir() {
    if (path.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  RoundDataDir(const RoundDataDir&) = delete;
  RoundDataDir& operator=(const RoundDataDir&) = delete;
  std::string path;
};

// A round's fleet and its heartbeats, encoded before the clock starts:
// message i is runner i % runners' next one.
inline rmon::tools::Fleet encode_round(const Params& p, std::vector<std::string>& payloads) {
  rmon::tools::FleetOptions fo;
  fo.runners = p.runners;
  fo.timeout_ms = 600'000;
  rmon::tools::Fleet fleet(fo);
  payloads.assign(p.messages, {});
  for (std::size_t i = 0; i < p.messages; ++i) fleet.next(i % p.runners, payloads[i]);
  return fleet;
}

// The loopback monitor's configuration (see loopback_monitor_config) with
// the round's heartbeat HWM.
inline rmon::monitor::MonitorConfig round_config(const Params& p) {
  rmon::monitor::MonitorConfig c = rmon::bench::loopback_monitor_config();
  if (p.hwm >= 0) c.heartbeat_hwm = p.hwm;
  c.rewrite_pass_runners = p.rewrite_pass;
  return c;
}

// The raw baselines' receiver, not yet bound: a plain SUB for "hb/" with the
// same receive HWM as the monitor's socket and a 10 s receive timeout.
inline zmq::socket_t make_raw_sub(zmq::context_t& ctx, const Params& p) {
  rmon::SocketOptions o;
  o.recv_hwm = p.hwm >= 0 ? p.hwm : rmon::monitor::MonitorConfig{}.heartbeat_hwm;
  o.recv_timeout_ms = 10'000;
  auto sub = rmon::make_socket(ctx, zmq::socket_type::sub, o);
  sub.set(zmq::sockopt::subscribe, "hb/");
  return sub;
}

// In a publisher process: a PUB socket connected to the endpoint the parent
// writes first, sending one-frame probes (the monitor rejects them) until the
// parent, which has one by then, writes its next line (left unread). It never
// drops: TCP back-pressure paces the publisher instead.
inline zmq::socket_t connect_probing_pub(zmq::context_t& ctx, Pipe& to_child, int linger_ms) {
  const std::string endpoint = to_child.read_line();
  rmon::SocketOptions o;
  o.send_hwm = 0;
  o.linger_ms = linger_ms;
  auto pub = rmon::make_socket(ctx, zmq::socket_type::pub, o);
  pub.connect(endpoint);
  while (!to_child.readable(1)) rmon::send_frames(pub, {"hb/probe"}, zmq::send_flags::none);
  return pub;
}

// Tells the publisher "go", then waits until `done()` or `limit` has passed;
// returns the seconds since "go". Polls coarsely: this thread shares the
// receiving side's core.
template <class Done>
double go_and_wait(Pipe& to_child, std::chrono::seconds limit, Done done) {
  const auto t0 = SteadyClock::now();
  to_child.write_line("go");
  const auto deadline = t0 + limit;
  while (!done() && SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

// The monitor a round measures, in this process. Its own context takes
// --monitor-io-threads I/O threads (its --io-threads setting).
inline std::unique_ptr<rmon::monitor::MonitorService> make_monitor(const Params& p,
                                                                   rmon::monitor::MonitorConfig c) {
  if (p.monitor_io_threads > 0) c.io_threads = static_cast<uint32_t>(p.monitor_io_threads);
  return std::make_unique<rmon::monitor::MonitorService>(c, rmon::SystemClock::instance());
}

}  // namespace rmon::bench::ingest
