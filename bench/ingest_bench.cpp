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

#include <spdlog/spdlog.h>

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include "bench_util.hpp"
#include "fleet.hpp"
#include "rmon/config.hpp"
#include "rmon/logging.hpp"
#include "rmon/security/certificate.hpp"
#include "rmon/security/curve_socket.hpp"
#include "rmon/security/handshake_monitor.hpp"
#include "rmon/security/keys.hpp"
#include "rmon/security/principal.hpp"
#include "rmon/security/zap.hpp"
#include "rmon/zmq_util.hpp"
#include "service.hpp"

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

struct Params {
  std::size_t messages = 500'000;
  std::size_t runners = 10'000;
  int rounds = 3;
  int hwm = -1;               // the monitor's heartbeat HWM; -1 keeps its default
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
  std::string path;
};

// A round's fleet and its heartbeats, encoded before the clock starts:
// message i is runner i % runners' next one.
rmon::tools::Fleet encode_round(const Params& p, std::vector<std::string>& payloads) {
  rmon::tools::FleetOptions fo;
  fo.runners = p.runners;
  fo.timeout_ms = 600'000;
  rmon::tools::Fleet fleet(fo);
  payloads.assign(p.messages, {});
  for (std::size_t i = 0; i < p.messages; ++i) fleet.next(i % p.runners, payloads[i]);
  return fleet;
}

// The publisher process: pre-encodes every heartbeat, connects, sends probes
// until the parent says go, then sends the whole batch as fast as it can.
int publisher(rmon::bench::Pipe& to_child, const Params& p) {
  if (p.pin) rmon::bench::pin_to_cpu(0);
  std::vector<std::string> payloads;
  rmon::tools::Fleet fleet = encode_round(p, payloads);

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
  double peak_per_runner = 0;  // peak RSS over the whole round (saves included) above the start
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

// ---- CURVE (--curve, --handshake-storm).

namespace sec = rmon::security;

double seconds_of(const timeval& tv) {
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}
// CPU seconds this process used so far, every thread (not its children).
double process_cpu() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return seconds_of(ru.ru_utime) + seconds_of(ru.ru_stime);
}

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

// Makes `socket` a CURVE server with no ZAP domain: no handler is asked, any
// client key gets in, so it costs CURVE alone. (set_curve_server_options
// cannot leave the domain unset: libzmq refuses an empty one.)
void make_raw_curve_server(zmq::socket_t& socket, const sec::SecretKey& server_secret) {
  socket.set(zmq::sockopt::curve_server, 1);
  socket.set(zmq::sockopt::curve_secretkey,
             zmq::const_buffer(server_secret.bytes().data(), sec::kKeyBytes));
}

// libzmq's I/O threads alive in this process (named ZMQbg/IO/<n>).
int zmq_io_threads() {
  int n = 0;
  for (const auto& [tid, t] : rmon::bench::thread_cpu()) n += t.name.rfind("ZMQbg/IO", 0) == 0;
  return n;
}

// The keys of a CURVE run, in a temporary folder removed afterwards: the
// monitor's pair (runner-monitor.key_secret) and `runner_keys` runner pairs
// enrolled in clients/ with role runner and prefix "runner-" (the fleet's ids).
class CurveKeys {
 public:
  explicit CurveKeys(std::size_t runner_keys) {
    char tmpl[] = "/tmp/rmon-curve-bench-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    std::filesystem::create_directories(dir_ / "clients");
    check(sec::save_certificate(dir_, "runner-monitor", server_, {}));
    for (std::size_t k = 0; k < runner_keys; ++k) {
      runners_.push_back(sec::KeyPair::generate());
      check(sec::save_public_certificate(
          sec::public_file(dir_ / "clients", "runner-" + std::to_string(k)),
          runners_.back().public_key, sec::principal_metadata(sec::Role::kRunner, "runner-", "")));
    }
  }
  ~CurveKeys() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  CurveKeys(const CurveKeys&) = delete;
  CurveKeys& operator=(const CurveKeys&) = delete;

  void configure(rmon::monitor::MonitorConfig& c) const {
    c.security.security = "curve";
    c.security.curve_secret_file = sec::secret_file(dir_, "runner-monitor").string();
    c.security.curve_clients_dir = (dir_ / "clients").string();
  }
  sec::ClientKeys client(std::size_t k) const {
    return {runners_[k % runners_.size()], server_.public_key};
  }
  const sec::SecretKey& server_secret() const { return server_.secret_key; }
  std::size_t size() const { return runners_.size(); }

 private:
  static void check(const sec::Status& s) {
    if (!s.ok()) throw std::runtime_error(s.error().message);
  }
  std::filesystem::path dir_;
  sec::KeyPair server_ = sec::KeyPair::generate();
  std::vector<sec::KeyPair> runners_;
};

// Waits until each XPUB socket of `xpubs` has its subscriber's subscription:
// the connection's handshake (CURVE and ZAP included) is then done, and what
// the socket sends is delivered. Calls `on_ready(i)` for each as it gets
// there. Returns how many did before `limit`.
template <class OnReady>
std::size_t await_subscriptions(std::vector<zmq::socket_t>& xpubs, std::chrono::milliseconds limit,
                                OnReady on_ready) {
  std::vector<std::size_t> pending(xpubs.size());
  for (std::size_t i = 0; i < pending.size(); ++i) pending[i] = i;
  std::vector<zmq::pollitem_t> items;
  const auto deadline = SteadyClock::now() + limit;
  while (!pending.empty() && SteadyClock::now() < deadline) {
    items.clear();
    for (std::size_t i : pending) items.push_back({xpubs[i].handle(), 0, ZMQ_POLLIN, 0});
    if (zmq::poll(items, std::chrono::milliseconds(100)) == 0) continue;
    std::vector<std::size_t> still;
    still.reserve(pending.size());
    for (std::size_t j = 0; j < items.size(); ++j) {
      const std::size_t i = pending[j];
      if ((items[j].revents & ZMQ_POLLIN) == 0) {
        still.push_back(i);
        continue;
      }
      zmq::message_t m;
      while (xpubs[i].recv(m, zmq::recv_flags::dontwait)) {
      }
      on_ready(i);
    }
    pending.swap(still);
  }
  return xpubs.size() - pending.size();
}

// The publisher of a --curve round: every heartbeat pre-encoded, then
// --connections XPUB sockets (CURVE clients with `keys`, else plain)
// connected; "ready" once each has its subscription, then the whole batch on
// "go", runner r's heartbeats always on connection r mod K.
int conn_publisher(rmon::bench::Pipe& to_child, rmon::bench::Pipe& from_child, const Params& p,
                   const std::optional<sec::ClientKeys>& keys) {
  if (p.pin) rmon::bench::pin_to_cpu(0);
  std::vector<std::string> payloads;
  rmon::tools::Fleet fleet = encode_round(p, payloads);
  const auto k = static_cast<std::size_t>(p.connections);

  const std::string endpoint = to_child.read_line();
  zmq::context_t ctx(p.io_threads);
  rmon::SocketOptions o;
  o.send_hwm = 0;  // never drop: TCP back-pressure paces the publisher instead
  o.linger_ms = 30'000;
  std::vector<zmq::socket_t> pubs;
  for (std::size_t c = 0; c < k; ++c) {
    pubs.push_back(rmon::make_socket(ctx, zmq::socket_type::xpub, o));
    if (keys) sec::make_curve_client(pubs.back(), *keys, std::chrono::milliseconds(o.linger_ms));
    pubs.back().connect(endpoint);
  }
  if (await_subscriptions(pubs, 30s, [](std::size_t) {}) < k) return 2;
  from_child.write_line("ready");
  if (to_child.read_line() != "go") return 1;
  // Runs of up to 64 heartbeats per connection in turn, each connection's in
  // the batch's order (one message per connection in turn would wake an I/O
  // thread per message and make the publisher the bottleneck).
  constexpr std::size_t kRun = 64;
  std::vector<std::vector<uint32_t>> per_conn(k);
  for (std::size_t i = 0; i < p.messages; ++i) {
    per_conn[(i % p.runners) % k].push_back(static_cast<uint32_t>(i));
  }
  std::vector<std::size_t> next(k, 0);
  for (std::size_t left = p.messages; left > 0;) {
    for (std::size_t c = 0; c < k; ++c) {
      const std::size_t end = std::min(per_conn[c].size(), next[c] + kRun);
      for (; next[c] < end; ++next[c], --left) {
        const uint32_t i = per_conn[c][next[c]];
        rmon::send_frames(pubs[c], {fleet.topic(i % p.runners), payloads[i]},
                          zmq::send_flags::none);
      }
    }
  }
  return 0;
}

enum class Kind { kRawPlain, kRawCurve, kMonitorOff, kMonitorCurve };
constexpr Kind kKinds[] = {Kind::kRawPlain, Kind::kRawCurve, Kind::kMonitorOff,
                           Kind::kMonitorCurve};
const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kRawPlain:
      return "raw-plain";
    case Kind::kRawCurve:
      return "raw-curve";
    case Kind::kMonitorOff:
      return "monitor-off";
    case Kind::kMonitorCurve:
      return "monitor-curve";
  }
  return "?";
}

// Waits for the publisher's "ready" (every connection subscribed).
void await_ready(rmon::bench::Pipe& from_child) {
  if (!from_child.readable(60'000) || from_child.read_line() != "ready") {
    throw std::runtime_error("the publisher's connections never became ready");
  }
}

// The monitor's own context takes --monitor-io-threads I/O threads (its
// --io-threads setting).
std::unique_ptr<rmon::monitor::MonitorService> make_monitor(const Params& p,
                                                            rmon::monitor::MonitorConfig c) {
  if (p.monitor_io_threads > 0) c.io_threads = static_cast<uint32_t>(p.monitor_io_threads);
  return std::make_unique<rmon::monitor::MonitorService>(c, rmon::SystemClock::instance());
}

struct ConnRound {
  double rate = 0;    // heartbeats/s received
  double cpu_us = 0;  // the receiving process's CPU (every thread) per heartbeat, µs
  double busy = 0;    // that CPU over the round's time: cores in use
};

// One --curve round of `kind`.
ConnRound conn_round(const Params& p, Kind kind, const CurveKeys& keys) {
  const bool curve = kind == Kind::kRawCurve || kind == Kind::kMonitorCurve;
  const std::optional<sec::ClientKeys> client =
      curve ? std::optional(keys.client(0)) : std::nullopt;
  rmon::bench::Pipe to_child, from_child;
  const pid_t child = rmon::bench::fork_child([&] {
    to_child.close_write();  // EOF if this process dies
    from_child.close_read();
    return conn_publisher(to_child, from_child, p, client);
  });
  from_child.close_write();  // EOF when the child exits
  ConnRound out;
  auto finish = [&](std::size_t got, double secs, double cpu) {
    out.rate = static_cast<double>(got) / secs;
    out.cpu_us = got > 0 ? cpu / static_cast<double>(got) * 1e6 : 0;
    out.busy = cpu / secs;
  };
  if (kind == Kind::kRawPlain || kind == Kind::kRawCurve) {
    zmq::context_t ctx(p.io_threads);
    rmon::SocketOptions o;
    o.recv_hwm = p.hwm >= 0 ? p.hwm : rmon::monitor::MonitorConfig{}.heartbeat_hwm;
    o.recv_timeout_ms = 10'000;
    auto sub = rmon::make_socket(ctx, zmq::socket_type::sub, o);
    sub.set(zmq::sockopt::subscribe, "hb/");
    if (curve) make_raw_curve_server(sub, keys.server_secret());
    to_child.write_line(rmon::bind_endpoint(sub, "tcp://127.0.0.1:*"));
    // A bound socket attaches a new connection (and sends it the
    // subscription) only when its own thread calls into it.
    for (int i = 0; i < 60'000 && !from_child.readable(1); ++i) (void)sub.get(zmq::sockopt::events);
    await_ready(from_child);
    std::vector<zmq::message_t> frames;
    const auto cpu0 = rmon::bench::thread_cpu();
    const double pcpu0 = process_cpu();
    const auto t0 = SteadyClock::now();
    to_child.write_line("go");
    std::size_t got = 0;
    while (got < p.messages) {
      if (!rmon::recv_frames(sub, frames)) break;
      if (frames.size() == 2) ++got;
    }
    const double secs = std::chrono::duration<double>(SteadyClock::now() - t0).count();
    const double pcpu = process_cpu() - pcpu0;
    if (got < p.messages) {
      std::printf("  %s: lost %zu messages\n", kind_name(kind), p.messages - got);
    }
    if (p.threads) rmon::bench::print_thread_cpu(cpu0, rmon::bench::thread_cpu(), secs);
    finish(got, secs, pcpu);
  } else {
    rmon::monitor::MonitorConfig c = rmon::bench::loopback_monitor_config();
    if (p.hwm >= 0) c.heartbeat_hwm = p.hwm;
    if (curve) keys.configure(c);
    RoundDataDir data(p, c);
    auto svc = make_monitor(p, c);
    svc->start();
    to_child.write_line(svc->endpoints().heartbeat);
    await_ready(from_child);
    auto accepted = [&] { return svc->table().counters().accepted; };
    const auto cpu0 = rmon::bench::thread_cpu();
    const double pcpu0 = process_cpu();
    const auto t0 = SteadyClock::now();
    to_child.write_line("go");
    const auto limit = t0 + 120s;
    while (accepted() < p.messages && SteadyClock::now() < limit) {
      std::this_thread::sleep_for(1ms);
    }
    const double secs = std::chrono::duration<double>(SteadyClock::now() - t0).count();
    const double pcpu = process_cpu() - pcpu0;
    const auto got = accepted();
    if (got < p.messages) {
      std::printf("  %s: lost %zu messages\n", kind_name(kind), p.messages - got);
    }
    if (p.threads) rmon::bench::print_thread_cpu(cpu0, rmon::bench::thread_cpu(), secs);
    finish(got, secs, pcpu);
    static bool told = false;
    if (!told) {  // now: each I/O thread names itself once it runs
      told = true;
      std::printf("  the monitor's context: %d I/O threads%s\n", zmq_io_threads(),
                  p.monitor_io_threads > 0 ? " (--monitor-io-threads)" : " (its default)");
    }
    svc->stop();
  }
  if (const int rc = rmon::bench::wait_child(child); rc != 0) {
    std::printf("  %s: the publisher exited with %d\n", kind_name(kind), rc);
  }
  return out;
}

std::string range(std::vector<double> v, const char* fmt) {
  if (v.empty()) return "";
  std::sort(v.begin(), v.end());
  char buf[64];
  std::string out;
  std::snprintf(buf, sizeof buf, fmt, v.front());
  out += buf;
  out += "–";
  std::snprintf(buf, sizeof buf, fmt, v.back());
  out += buf;
  return out;
}

int curve_rounds(const Params& p) {
  const CurveKeys keys(1);  // one runner key for every connection: one host's
  std::vector<double> rate[4], cpu[4], busy[4];
  std::vector<double> mon_vs_raw, curve_cost, off_vs_raw;     // throughput ratios
  std::vector<double> cmon_vs_raw, ccurve_cost, coff_vs_raw;  // CPU-per-message ratios
  auto wanted = [&](Kind k) { return p.only.empty() || p.only == kind_name(k); };
  std::printf(
      "%zu heartbeats over %zu runners per round, %d connections, %d I/O threads in the "
      "publisher and raw receivers%s\n",
      p.messages, p.runners, p.connections, p.io_threads,
      p.pin ? "; publisher on CPU 0, receivers on CPU 1" : "");
  for (int r = 0; r < p.rounds; ++r) {
    ConnRound got[4];
    for (int j = 0; j < 4; ++j) {
      const Kind k = kKinds[(j + r) % 4];
      if (wanted(k)) got[static_cast<int>(k)] = conn_round(p, k, keys);
    }
    if (!p.only.empty()) {
      for (int j = 0; j < 4; ++j) {
        if (got[j].rate > 0) {
          std::printf("round %d: %s %.0f msg/s, receiver %.2f us CPU per msg (%.2f cores)\n", r + 1,
                      kind_name(kKinds[j]), got[j].rate, got[j].cpu_us, got[j].busy);
        }
      }
      continue;
    }
    for (int j = 0; j < 4; ++j) {
      rate[j].push_back(got[j].rate);
      cpu[j].push_back(got[j].cpu_us);
      busy[j].push_back(got[j].busy);
    }
    const double a = got[3].rate / got[1].rate, b = got[1].rate / got[0].rate,
                 c = got[2].rate / got[0].rate;
    // Capacity ratios: receiving CPU per message, inverted (what one core of
    // the receiving side would sustain, whoever limited this round).
    const double ca = got[1].cpu_us / got[3].cpu_us, cb = got[0].cpu_us / got[1].cpu_us,
                 cc = got[0].cpu_us / got[2].cpu_us;
    mon_vs_raw.push_back(a);
    curve_cost.push_back(b);
    off_vs_raw.push_back(c);
    cmon_vs_raw.push_back(ca);
    ccurve_cost.push_back(cb);
    coff_vs_raw.push_back(cc);
    std::printf(
        "round %d: raw-plain %.0f, raw-curve %.0f, monitor-off %.0f, monitor-curve %.0f msg/s; "
        "receiver us/msg %.2f, %.2f, %.2f, %.2f (cores %.2f, %.2f, %.2f, %.2f); "
        "monitor-curve/raw-curve %.2f (CPU %.2f), raw-curve/raw-plain %.2f (CPU %.2f), "
        "monitor-off/raw-plain %.2f (CPU %.2f)\n",
        r + 1, got[0].rate, got[1].rate, got[2].rate, got[3].rate, got[0].cpu_us, got[1].cpu_us,
        got[2].cpu_us, got[3].cpu_us, got[0].busy, got[1].busy, got[2].busy, got[3].busy, a, ca, b,
        cb, c, cc);
    std::fflush(stdout);
  }
  if (!p.only.empty()) return 0;
  using rmon::bench::median;
  std::printf(
      "\ningest with CURVE, %zu heartbeats over %zu runners, %d connections, median of %d "
      "rounds (range)\n",
      p.messages, p.runners, p.connections, p.rounds);
  for (int j = 0; j < 4; ++j) {
    std::printf("  %-14s %9.0f msg/s (%s); receiver %.2f us CPU per msg (%s), %.2f cores busy\n",
                kind_name(kKinds[j]), median(rate[j]), range(rate[j], "%.0f").c_str(),
                median(cpu[j]), range(cpu[j], "%.2f").c_str(), median(busy[j]));
  }
  std::printf("  throughput (limited by whichever side saturates first; see cores busy):\n");
  const double a = median(mon_vs_raw);
  std::printf("    monitor-curve / raw-curve: %.2f  (rounds %s; target >= 0.70: %s)\n", a,
              range(mon_vs_raw, "%.2f").c_str(), a >= 0.7 ? "PASS" : "FAIL");
  std::printf("    raw-curve / raw-plain:     %.2f  (rounds %s; CURVE's own cost)\n",
              median(curve_cost), range(curve_cost, "%.2f").c_str());
  std::printf("    monitor-off / raw-plain:   %.2f  (rounds %s)\n", median(off_vs_raw),
              range(off_vs_raw, "%.2f").c_str());
  std::printf(
      "  receiving capacity (inverse CPU per message: what the receiving side sustains "
      "per core):\n");
  const double ca = median(cmon_vs_raw);
  std::printf("    monitor-curve / raw-curve: %.2f  (rounds %s; target >= 0.70: %s)\n", ca,
              range(cmon_vs_raw, "%.2f").c_str(), ca >= 0.7 ? "PASS" : "FAIL");
  std::printf("    raw-curve / raw-plain:     %.2f  (rounds %s)\n", median(ccurve_cost),
              range(ccurve_cost, "%.2f").c_str());
  std::printf("    monitor-off / raw-plain:   %.2f  (rounds %s)\n", median(coff_vs_raw),
              range(coff_vs_raw, "%.2f").c_str());
  return 0;
}

// ---- Handshake storm (--handshake-storm N).

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
    return p.storm > 0 ? storm_rounds(p) : curve_rounds(p);
  }
  if (p.compare_persistence) {
    if (p.joins && runners_opt->count() == 0) p.runners = 1'000'000;
    spdlog::set_level(spdlog::level::warn);
    if (p.pin && !rmon::bench::pin_to_cpu(1)) p.pin = false;
    return persistence_rounds(p);
  }
  if (p.joins) {
    if (runners_opt->count() == 0) p.runners = 1'000'000;
    p.default_sync = p.persist;
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
