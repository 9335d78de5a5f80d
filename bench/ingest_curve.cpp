// ingest_bench --curve: ingest over CURVE against raw ZeroMQ, and the CURVE
// pieces the handshake storm shares (see ingest_curve.hpp and the modes at the
// top of ingest_bench.cpp).

#include "ingest_curve.hpp"

#include <stdlib.h>  // mkdtemp
#include <sys/resource.h>
#include <sys/time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <system_error>

#include "bench_util.hpp"
#include "rmon/security/certificate.hpp"
#include "rmon/security/principal.hpp"

using namespace std::chrono_literals;

namespace rmon::bench::ingest {
namespace {

double seconds_of(const timeval& tv) {
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

// libzmq's I/O threads alive in this process (named ZMQbg/IO/<n>).
int zmq_io_threads() {
  int n = 0;
  for (const auto& [tid, t] : rmon::bench::thread_cpu()) n += t.name.rfind("ZMQbg/IO", 0) == 0;
  return n;
}

void check(const sec::Status& s) {
  if (!s.ok()) throw std::runtime_error(s.error().message);
}

}  // namespace

// CPU seconds this process used so far, every thread (not its children).
double process_cpu() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return seconds_of(ru.ru_utime) + seconds_of(ru.ru_stime);
}

void make_raw_curve_server(zmq::socket_t& socket, const sec::SecretKey& server_secret) {
  socket.set(zmq::sockopt::curve_server, 1);
  socket.set(zmq::sockopt::curve_secretkey,
             zmq::const_buffer(server_secret.bytes().data(), sec::kKeyBytes));
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

CurveKeys::CurveKeys(std::size_t runner_keys) {
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

CurveKeys::~CurveKeys() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

void CurveKeys::configure(rmon::monitor::MonitorConfig& c) const {
  c.security.security = "curve";
  c.security.curve_secret_file = sec::secret_file(dir_, "runner-monitor").string();
  c.security.curve_clients_dir = (dir_ / "clients").string();
}

namespace {

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
    auto sub = make_raw_sub(ctx, p);
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
    rmon::monitor::MonitorConfig c = round_config(p);
    if (curve) keys.configure(c);
    RoundDataDir data(p, c);
    auto svc = make_monitor(p, c);
    svc->start();
    to_child.write_line(svc->endpoints().heartbeat);
    await_ready(from_child);
    auto accepted = [&] { return svc->table().counters().accepted; };
    const auto cpu0 = rmon::bench::thread_cpu();
    const double pcpu0 = process_cpu();
    const double secs = go_and_wait(to_child, 120s, [&] { return accepted() >= p.messages; });
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

}  // namespace

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

}  // namespace rmon::bench::ingest
