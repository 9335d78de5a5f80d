#pragma once
// The skeleton of the services that consume the monitor's timeout events
// (task-queue, pool-manager). It owns, in this order of start (and the
// reverse order of stop):
//   /metrics (its own families and the domain's), the API's ROUTER socket,
//   the event consumer (events PULL, acks PUSH), the reconciler (the
//   monitor client) and the loop thread.
//
// The loop gathers whatever is ready (events, verdicts, requests; up to
// max_batch) into one batch and applies it under the one batch policy
// (batch_policy.hpp). The commits are pipelined (store::CommitSyncer): a
// committed batch waits, in order, for the flush of the log while the loop
// applies the next ones (at most max_in_flight); its replies and acks leave
// once it is durable. SQLite with --sync full: an fsync of its log
// (store::WalSyncer); PostgreSQL with --pg-pipelined-commits: a synchronous
// commit on a second connection (store::PgSyncer), whose failure settles the
// batches it was to cover lost (answered `unavailable`, events not
// acknowledged) and stops all applying until a flush works again. Otherwise
// (SQLite --sync normal, PostgreSQL by default, --max-in-flight 0) replies
// and acks leave once the commit returns. Maintenance runs every
// tick_interval.
//
// start() and stop() from one thread; stats() and metrics are thread-safe.

#include <prometheus/histogram.h>
#include <zmq.hpp>

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "rmon/clock.hpp"
#include "rmon/service/batch_policy.hpp"
#include "rmon/service/consumer_config.hpp"
#include "rmon/service/domain.hpp"
#include "rmon/service/event_consumer.hpp"
#include "rmon/service/metrics_endpoint.hpp"
#include "rmon/service/reconciler.hpp"
#include "rmon/service/router.hpp"
#include "rmon/service/server_security.hpp"
#include "rmon/store/commit_syncer.hpp"

namespace rmon {

struct ServiceEndpoints {
  std::string api;       // bound (wildcard port resolved) or connected
  int metrics_port = 0;  // 0 when /metrics is disabled
};

class ConsumerService {
 public:
  // `domain` and `stats` outlive this object. Nothing binds before start().
  ConsumerService(const ConsumerServiceConfig& config, ServiceDomain& domain, ServiceStats& stats,
                  const Clock& clock);
  ~ConsumerService();
  ConsumerService(const ConsumerService&) = delete;
  ConsumerService& operator=(const ConsumerService&) = delete;

  // Serves /metrics, binds the API, connects to the monitor, starts the
  // loop. Throws on a bad endpoint (a start-up error).
  void start();
  // Finishes the batch in progress, stops the loop, closes the sockets.
  // Idempotent. /metrics is served until destruction: it reads only `stats`
  // and the domain, which outlive this object.
  void stop();

  // SIGHUP: reloads --curve-clients-dir (nothing with --security off).
  void reload_keys() {
    if (security_) security_->reload();
  }

  const ServiceEndpoints& endpoints() const { return endpoints_; }
  std::string render_metrics() const { return metrics_.render(); }

 private:
  void run();
  // Applies `b` (taken from the spares) and hands it to the pipeline.
  void commit(Batch b);
  // Releases the batches whose commit is settled, in order: when durable,
  // log lines, replies and acks; when lost, `unavailable` replies and no
  // acks. Throws std::runtime_error if the log's fsync failed (SQLite).
  void release_durable();
  void release(Batch& b);
  bool pipeline_full() const;
  // False while the syncer's flush fails: nothing is applied then.
  bool flushing_now() const;
  // Answers what the API socket holds `unavailable`, applying nothing.
  void refuse_requests(Batch& b);
  static std::size_t batch_bytes(const Batch& b);  // requests and replies
  void recycle(Batch&& b);
  void add_metrics();
  // With --security off --insecure-listen: the WARN for an API reachable from other hosts.
  void warn_exposed() const;

  const ConsumerServiceConfig& config_;
  ServiceDomain& domain_;
  ServiceStats& stats_;
  const Clock& clock_;
  // Declared before policy_, which observes into it. Destroyed last of the
  // two, and /metrics (metrics_) before everything it reads.
  prometheus::Histogram* batch_size_ = nullptr;

  zmq::context_t ctx_;
  // --security curve (null with off): the API's CURVE server side and its
  // per-request gate, and this service's keys as a client of the monitor.
  // Created with the object: /metrics reads security_.
  std::unique_ptr<ServerSecurity> security_;
  std::unique_ptr<MessageGate> api_gate_;
  std::optional<security::ClientKeys> monitor_keys_;
  zmq::socket_t api_;
  std::unique_ptr<EventConsumer> events_;
  std::unique_ptr<Reconciler> reconciler_;
  ServiceEndpoints endpoints_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::unique_ptr<BatchPolicy> policy_;
  // The log's flush, off the loop thread (null when commits are durable as
  // they return: SQLite --sync normal, PostgreSQL --max-in-flight 0).
  std::unique_ptr<store::CommitSyncer> syncer_;
  // The loop thread's: committed batches waiting for their fsync, oldest
  // first, and cleared ones to reuse (their vectors keep their capacity).
  // Bounded by max_in_flight batches and kMaxInFlightBytes of requests and
  // replies (a full pipeline reads nothing new until an fsync completes).
  static constexpr std::size_t kMaxInFlightBytes = 64u << 20;
  static constexpr std::size_t kSpareBatches = 4;
  std::deque<Batch> in_flight_;
  std::size_t in_flight_bytes_ = 0;
  std::vector<Batch> spare_;
  std::atomic<uint64_t> in_flight_count_{0};  // for /metrics
  // /readyz: the loop thread's last store probe and monitor answers.
  static constexpr Millis kStoreProbeEvery{2000};
  Readiness readiness() const;
  void probe_store();
  std::atomic<bool> store_ok_{false};
  std::atomic<bool> running_{false};
  std::atomic<std::size_t> monitors_answering_{0};
  mutable std::mutex store_error_mu_;
  std::string store_error_;  // guarded by store_error_mu_
  // Last: destroyed first, so no scrape outlives what it reads.
  MetricsEndpoint metrics_;
};

}  // namespace rmon
