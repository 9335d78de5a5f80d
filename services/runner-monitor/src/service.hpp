#pragma once
// runner-monitor as a whole: binds every socket, then runs its threads
// around one shared table: ingest, dispatch (the only one that convicts),
// acks (the outbox's acknowledgements and pruning), control, and with a data
// folder the persister. Sockets are created and bound in start(), so a bad
// endpoint is a start-up error, and each is then used only by the thread it
// is handed to.
//
// With --security curve the keys and the ZAP handler are ready when the
// constructor returns (it throws when they cannot be read); every bound
// socket is a CURVE server on its own ZAP domain (hb, events.<group>, acks,
// control), and the ingest, ack and control threads each check every message
// against the live keyring through their MessageGate.
//
// start() and stop() are called from one thread; the accessors are
// thread-safe. The destructor stops the service.

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "ack_writer.hpp"
#include "control.hpp"
#include "dispatcher.hpp"
#include "ingest.hpp"
#include "lifecycle_log.hpp"
#include "metrics.hpp"
#include "monitor_config.hpp"
#include "outbox.hpp"
#include "persister.hpp"
#include "rmon/service/server_security.hpp"
#include "runner_table.hpp"

namespace rmon::monitor {

struct BoundEndpoints {
  std::string heartbeat;
  std::vector<std::string> groups;  // same order as the config's groups
  std::string ack;
  std::string control;
  int metrics_port = 0;  // 0 when /metrics is disabled
};

class MonitorService {
 public:
  MonitorService(MonitorConfig config, const Clock& clock);
  ~MonitorService();
  MonitorService(const MonitorService&) = delete;
  MonitorService& operator=(const MonitorService&) = delete;

  // Binds and starts; throws (zmq::error_t, std::runtime_error) on failure.
  void start();
  // Stops the threads and closes the sockets. Idempotent.
  void stop();

  const BoundEndpoints& endpoints() const { return endpoints_; }
  RunnerTable& table() { return *table_; }
  const MonitorStats& stats() const { return *stats_; }
  Metrics& metrics() { return *metrics_; }
  const Persister* persister() const { return persister_.get(); }
  // Null with --security off.
  const ServerSecurity* security() const { return security_.get(); }
  // SIGHUP: reloads --curve-clients-dir (nothing with --security off).
  void reload_keys() {
    if (security_) security_->reload();
  }

 private:
  // Reads the saved table and outbox back (before any thread runs).
  void restore();

  const MonitorConfig config_;
  const Clock& clock_;
  // The context first, destroyed last; then the security that /metrics,
  // ingest and acks read: destroyed after them, and its ZAP handler before
  // the context. Each gate is used by one thread (ingest, acks, control).
  zmq::context_t ctx_{static_cast<int>(config_.io_threads)};
  std::unique_ptr<ServerSecurity> security_;  // null with --security off
  std::unique_ptr<MessageGate> hb_gate_, ack_gate_, control_gate_;
  std::unique_ptr<LifecycleLog> observer_;  // the table's lifecycle lines
  std::unique_ptr<Persister> persister_;    // null without a data folder
  std::unique_ptr<ObserverFanout> observers_;
  std::unique_ptr<MonitorStats> stats_;
  std::unique_ptr<RunnerTable> table_;
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<IngestLoop> ingest_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<ControlHandler> control_;  // posts to the dispatcher's brake release
  std::unique_ptr<AckWriter> ack_writer_;

  zmq::socket_t sub_;
  std::vector<zmq::socket_t> push_;
  zmq::socket_t acks_;
  zmq::socket_t router_;
  BoundEndpoints endpoints_;

  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

}  // namespace rmon::monitor
