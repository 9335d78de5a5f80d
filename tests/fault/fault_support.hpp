#pragma once
// The fault suite's shared helpers (issue #9): the three real executables as
// child processes on ipc:// endpoints in a temp folder, each startable,
// killable (kill -9) and restartable on its own; a fleet of simulated runners
// heartbeating from a thread, any subset of which can be cut; pipelined
// request clients; /metrics scrapes; and the report every fault prints.
//
// Scale comes from the environment: RMON_FAULT_RUNNERS (default 1000, the CI
// scale; scripts/fault-suite.sh runs 10000). Every socket has a receive
// timeout; waits poll observable state with a deadline.
//
// Not thread-safe unless a member says so: a FaultStack belongs to the test
// thread; a FleetPublisher sends from its own thread.

#include <zmq.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../support/api_client.hpp"
#include "../support/child_process.hpp"
#include "../support/temp_dir.hpp"
#include "fleet.hpp"
#include "rmon/protocol/msgmap.hpp"

namespace rmon::fault {

using namespace std::chrono_literals;
using Ms = std::chrono::milliseconds;

// RMON_FAULT_RUNNERS, or `fallback` when unset or not a positive number.
std::size_t scale_runners(std::size_t fallback = 1000);

// kMonitorB: the second monitor of a pair (StackOptions::monitor_pair).
enum class Svc { kMonitor = 0, kTaskQueue = 1, kPoolManager = 2, kMonitorB = 3 };
inline constexpr std::array<Svc, 3> kServices = {Svc::kMonitor, Svc::kTaskQueue, Svc::kPoolManager};
inline constexpr std::size_t kSvcSlots = 4;
const char* name(Svc s);

struct StackOptions {
  // pool-manager's --pool.
  std::string pools = "fault=local-process:1000";
  // Both consumers: `full`, their default (pipelined commits: kill -9 lands
  // while batches wait for their fsync).
  std::string sync = "full";
  uint64_t redelivery_interval_ms = 1000;
  // Far beyond a test's length: only timeout events take tasks and slots
  // back, so the counts a fault checks have one cause.
  uint64_t first_heartbeat_grace_ms = 600'000;
  // The consumers connect to ipc://<dir>/tq-relay and pm-relay instead of the
  // monitor's group endpoints; the test runs an EventRelay between them.
  bool relay_events = false;
  // A second monitor (Svc::kMonitorB) fed the same heartbeats, with its own
  // endpoints (named "...-b") and data folder (<dir>/data-b); both consumers
  // list both monitors. heartbeat_endpoints() names both.
  bool monitor_pair = false;
  // Extra flags for one service (indexed by Svc).
  std::array<std::vector<std::string>, kSvcSlots> extra_args;
};

// The stack as processes. Endpoints are ipc:// sockets in a fresh temp
// folder; the data folder of all three is <dir>/data; each service logs to
// <dir>/<name>.log (appended across restarts); /metrics binds 127.0.0.1:0 and
// the port is read from the log.
class FaultStack {
 public:
  explicit FaultStack(StackOptions opts = {});
  ~FaultStack();  // SIGTERM to each still running, then kill -9 past 15 s
  FaultStack(const FaultStack&) = delete;
  FaultStack& operator=(const FaultStack&) = delete;

  void start_all();
  // Starts the service (again); returns once it answers ping. A test failure
  // (with the log's tail) when it exits or stays silent for 30 s.
  void start(Svc s);
  // SIGKILL and reap: a test failure unless it died of it.
  void kill9(Svc s);
  void restart(Svc s) {
    kill9(s);
    start(s);
  }
  // SIGTERM; the exit status (nullopt if it did not exit within `timeout`).
  std::optional<int> stop(Svc s, Ms timeout = 15s);
  void signal(Svc s, int sig);  // SIGSTOP, SIGCONT, ...
  bool running(Svc s) const;
  int starts(Svc s) const { return starts_[static_cast<int>(s)]; }

  // One ping with a fresh client (a late answer cannot be read as another
  // request's reply).
  bool ping(Svc s, Ms timeout = 1000ms);
  // The API (or control) endpoint of a service.
  std::string api(Svc s) const;
  std::string heartbeat_endpoint() const { return ep("hb"); }
  // Every monitor's heartbeat endpoint, comma separated (FleetPublisher
  // connects to each).
  std::string heartbeat_endpoints() const {
    return opts_.monitor_pair ? ep("hb") + "," + ep("hb-b") : ep("hb");
  }
  std::string ack_endpoint() const { return ep("acks"); }
  // The monitor's PUSH endpoint for a consumer's group, and what the
  // consumer connects to (the relay's when relay_events).
  std::string group_endpoint(Svc consumer) const;
  std::string consumer_events_endpoint(Svc consumer) const;
  std::string ep(const std::string& name) const { return "ipc://" + dir_.str() + "/" + name; }
  std::string dir() const { return dir_.str(); }
  std::string data_dir() const { return dir_.str() + "/data"; }
  std::string log_path(Svc s) const;
  std::string log_tail(Svc s, std::size_t bytes = 2000) const;

  // GET /metrics of the running instance ("" when it cannot be reached).
  std::string metrics(Svc s);
  zmq::context_t& ctx() { return ctx_; }
  const StackOptions& options() const { return opts_; }

 private:
  std::vector<std::string> args(Svc s) const;
  int metrics_port(Svc s);

  StackOptions opts_;
  testing::TempDir dir_;
  zmq::context_t ctx_;
  // The endpoint `base` of monitor `s` (kMonitorB's end in "-b").
  std::string monitor_ep(Svc s, const std::string& base) const {
    return ep(s == Svc::kMonitorB ? base + "-b" : base);
  }

  std::array<std::unique_ptr<testing::ChildProcess>, kSvcSlots> children_;
  std::array<int, kSvcSlots> starts_{};
  std::array<int, kSvcSlots> ports_{};  // of the current instance; 0 until read
};

// A request client with a receive timeout (DEALER). call() returns the
// reply frame, "" on timeout.
std::unique_ptr<testing::ApiClient> client(FaultStack& stack, Svc s, int timeout_ms = 5000);
// Sends `requests` on one DEALER, `window` in flight, and returns the replies
// in order ("" for each one missing when a receive timed out). A service
// answers one connection's requests in order (one loop thread).
std::vector<std::string> pipeline(testing::ApiClient& c, const std::vector<std::string>& requests,
                                  std::size_t window = 128);
// {v: 1, op, ...fields}, encoded.
std::string request(const std::string& op, const protocol::MapBuilder& fields = {});

// Every unsigned (or non-negative) integer at the top level of a reply map:
// `stats` replies. Empty when the reply does not parse.
std::map<std::string, uint64_t> counters(const std::string& reply);
// One `stats` call; empty map on timeout.
std::map<std::string, uint64_t> stats(testing::ApiClient& c);
// Reply is {ok: true, ...}; `error` receives the error code otherwise.
bool reply_ok(const std::string& reply, std::string* error = nullptr);

// Sum of every sample of metric `name` whose label text contains `labels`
// (e.g. `result="rejected"`), in Prometheus text format.
double metric(const std::string& text, const std::string& name, const std::string& labels = "");

// Heartbeats for a fleet of simulated runners (tools/fleet.hpp) from a
// thread of its own: every runner not cut sends one per `interval_ms`,
// spread evenly over the interval. Thread-safe.
class FleetPublisher {
 public:
  // `endpoint`: one, or several comma separated (a monitor pair).
  FleetPublisher(zmq::context_t& ctx, std::string endpoint, tools::FleetOptions opts);
  ~FleetPublisher();
  FleetPublisher(const FleetPublisher&) = delete;
  FleetPublisher& operator=(const FleetPublisher&) = delete;

  std::size_t size() const { return size_; }
  const std::string& runner_id(std::size_t i) const { return ids_[i]; }
  // Runner i heartbeats for this task attempt from its next heartbeat on.
  void assign(std::size_t i, std::string task_id, uint64_t attempt);
  void start();
  void stop();
  // The runners in `which` send nothing more: all at once, or one after the
  // other spread over `spread` (a burst of timeouts that long).
  void cut(const std::vector<std::size_t>& which, Ms spread = 0ms);
  void resume(const std::vector<std::size_t>& which);
  bool is_cut(std::size_t i) const;
  // Completed passes over the fleet, and heartbeats sent.
  uint64_t rounds() const { return rounds_.load(); }
  uint64_t sent() const { return sent_.load(); }
  // Until `n` more passes have completed since the call.
  bool wait_rounds(uint64_t n, Ms timeout = 30s) const;

 private:
  void run();

  zmq::context_t& ctx_;
  const std::string endpoint_;
  const std::size_t size_;
  const Ms interval_;
  std::vector<std::string> ids_;  // constant after construction
  std::mutex mu_;
  tools::Fleet fleet_;  // guarded by mu_
  // Steady-clock nanoseconds from which runner i is silent; INT64_MAX: never.
  std::unique_ptr<std::atomic<int64_t>[]> cut_at_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> rounds_{0}, sent_{0};
  std::thread thread_;
};

// Between the monitor's PUSH for one group and a consumer's PULL
// (StackOptions::relay_events): forwards every event from a thread of its
// own, and sends the messages a test injects on the same socket, so they
// reach the consumer's event socket (which connects; it binds nothing).
// Thread-safe.
class EventRelay {
 public:
  // Connects a PULL to `from` (the monitor's group endpoint), binds a PUSH on
  // `to` (the consumer's events endpoint).
  EventRelay(zmq::context_t& ctx, std::string from, std::string to);
  ~EventRelay();
  EventRelay(const EventRelay&) = delete;
  EventRelay& operator=(const EventRelay&) = delete;

  // Queues one message (its frames) for the consumer.
  void inject(std::vector<std::string> frames);
  // Until everything injected so far has been handed to the socket.
  bool wait_injected(Ms timeout = 10s) const;
  uint64_t forwarded() const { return forwarded_.load(); }
  uint64_t injected() const { return injected_.load(); }

 private:
  void run(std::string from, std::string to);

  zmq::context_t& ctx_;
  std::mutex mu_;
  std::vector<std::vector<std::string>> queue_;  // guarded by mu_
  std::atomic<uint64_t> queued_{0}, injected_{0}, forwarded_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// One line per count: "name=value".
struct Count {
  std::string name;
  uint64_t value;
};
// Prints one block per fault:
//   [fault] <fault>
//     staged:  a=1 b=2 ...
//     checked: c=3 d=4 ...
// and appends it to the file named by RMON_FAULT_REPORT, when set.
void report(const std::string& fault, const std::vector<Count>& staged,
            const std::vector<Count>& checked);

}  // namespace rmon::fault
