#include "rmon/service/consumer_service.hpp"

#include <spdlog/fmt/ranges.h>

#include <pthread.h>

#include <algorithm>

#include "rmon/service/main.hpp"
#include "rmon/service/server_security.hpp"
#include "rmon/store/pg_syncer.hpp"
#include "rmon/store/wal_syncer.hpp"
#include "rmon/zmq_util.hpp"

namespace rmon {

ConsumerService::ConsumerService(const ConsumerServiceConfig& config, ServiceDomain& domain,
                                 ServiceStats& stats, const Clock& clock)
    : config_(config), domain_(domain), stats_(stats), clock_(clock) {
  if (domain_.ops().size() > ServiceStats::kMaxOps) throw std::logic_error("too many ops");
  if (config_.security.curve()) {
    // Keys and the ZAP handler before any socket exists; a key that cannot be
    // read is a start-up error naming its file.
    const auto api_domain = security::Domain::parse(domain_.name());
    if (!api_domain)
      throw std::logic_error("no security domain for " + std::string(domain_.name()));
    security_ = std::make_unique<ServerSecurity>(ctx_, config_.security);
    api_gate_ = std::make_unique<MessageGate>(*security_, *api_domain);
    auto keys = security::load_client_keys(config_.monitor_curve_secret_file,
                                           config_.monitor_public_key_file);
    if (!keys) throw std::runtime_error(keys.error().message);
    if (auto warning = security::secret_file_mode_warning(config_.monitor_curve_secret_file)) {
      spdlog::warn("{}", *warning);
    }
    monitor_keys_ = std::move(keys).value();
  }
  add_metrics();
  domain_.add_metrics(metrics_);
  metrics_.add_collector([s = security_.get()] { return security_metrics(s); });
  policy_ = std::make_unique<BatchPolicy>(domain_, stats_, clock_, batch_size_, api_gate_.get());
  if (store::Db* sqlite = domain_.db().sqlite();
      sqlite && config_.sync_mode() == store::SyncMode::kFull) {
    syncer_ = std::make_unique<store::WalSyncer>(*sqlite, config_.log_sync_for_tests);
  } else if (store::PgDb* pg = domain_.db().postgres();
             pg && config_.pg_pipelined_commits && config_.max_in_flight > 0) {
    // Without it a COMMIT returns once flushed (synchronous_commit), and
    // the loop waits for each.
    syncer_ = std::make_unique<store::PgSyncer>(*pg);
  }
  domain_.publish();
  metrics_.set_readiness([this] { return readiness(); });
}

Readiness ConsumerService::readiness() const {
  if (!running_.load(std::memory_order_relaxed)) return {false, "not running"};
  std::string detail;
  bool ready = true;
  if (store_ok_.load(std::memory_order_relaxed)) {
    detail = "store reachable";
  } else {
    std::lock_guard lock(store_error_mu_);
    detail = "store unreachable: " + (store_error_.empty() ? "not checked yet" : store_error_);
    ready = false;
  }
  const std::size_t monitors = config_.monitor_endpoints.size();
  const std::size_t answering = monitors_answering_.load(std::memory_order_relaxed);
  detail += "; monitors answering " + std::to_string(answering) + " of " + std::to_string(monitors);
  // One monitor of a pair is enough to work with (the pair exists for that).
  if (monitors > 0 && answering == 0) ready = false;
  if (!flushing_now()) {
    detail += "; commits cannot be made durable (the store's flush fails)";
    ready = false;
  }
  return {ready, detail};
}

void ConsumerService::probe_store() {
  try {
    domain_.db().probe();
    store_ok_.store(true, std::memory_order_relaxed);
  } catch (const std::exception& e) {
    store_ok_.store(false, std::memory_order_relaxed);
    std::lock_guard lock(store_error_mu_);
    store_error_ = e.what();
  }
}

ConsumerService::~ConsumerService() { stop(); }

void ConsumerService::start() {
  if (thread_.joinable()) return;
  if (!config_.metrics_address.empty() && endpoints_.metrics_port == 0) {
    endpoints_.metrics_port = metrics_.serve(config_.metrics_address);
  }
  SocketOptions api_opts;
  // Frames past the domain's limit get bad_request (too_large); only far
  // larger ones make libzmq drop the sender's connection.
  api_opts.max_msg_size = static_cast<int64_t>(4 * domain_.max_request_frame());
  api_opts.backlog = kFleetListenBacklog;
  api_ = make_socket(ctx_, zmq::socket_type::router, api_opts);
  if (security_) {
    security_->secure(api_, *security::Domain::parse(domain_.name()));
  }
  endpoints_.api = attach(api_, config_.api_endpoint);
  warn_exposed();
  std::vector<MonitorLink> links;
  for (std::size_t i = 0; i < config_.monitor_count(); ++i) {
    links.push_back({config_.events_endpoints[i], config_.ack_endpoints[i]});
  }
  events_ =
      std::make_unique<EventConsumer>(ctx_, std::string(domain_.name()), links, monitor_keys_);
  ReconcileOptions ro;
  ro.interval = Millis(config_.reconcile_interval_ms);
  ro.end_settle = Millis(config_.end_settle_ms);
  ro.monitor_timeout = Millis(config_.monitor_timeout_ms);
  ro.min_monitor_uptime = Millis(config_.first_heartbeat_grace_ms);
  reconciler_ = std::make_unique<Reconciler>(ctx_, config_.monitor_endpoints, ro, monitor_keys_);

  // Logged before the loop thread owns the domain.
  spdlog::info(
      "{} started api={} monitors={} events={} acks={} control={} metrics_port={} data_dir={} "
      "sync={} first_heartbeat_grace_ms={} reconcile_interval_ms={} end_settle_ms={} security={} "
      "{}",
      domain_.name(), endpoints_.api, config_.monitor_count(),
      fmt::join(config_.events_endpoints, ","), fmt::join(config_.ack_endpoints, ","),
      fmt::join(config_.monitor_endpoints, ","), endpoints_.metrics_port, config_.data_dir,
      config_.sync, config_.first_heartbeat_grace_ms, config_.reconcile_interval_ms,
      config_.end_settle_ms, config_.security.security, domain_.describe());
  stop_ = false;
  thread_ = std::thread([this] {
    const std::string name = std::string(domain_.metric_prefix()) + "-loop";
    pthread_setname_np(pthread_self(), name.c_str());
    try {
      run();
    } catch (const std::exception& e) {
      fail_service(std::string(domain_.name()) + " loop: " + e.what());
    }
  });
}

void ConsumerService::warn_exposed() const {
  std::string exposure = "send any request of its API:";
  for (std::string_view op : domain_.ops()) exposure += " " + std::string(op);
  config_.security.warn_exposed(config_.service_endpoints(), exposure);
}

void ConsumerService::stop() {
  if (!thread_.joinable()) {
    if (security_) security_->unwatch();  // a start that failed: before the API closes
    return;
  }
  stop_ = true;
  thread_.join();
  if (security_) security_->unwatch();  // before the API socket it watches closes
  reconciler_.reset();
  events_.reset();
  // The last replies (released at the loop's end) get a second to leave.
  api_.set(zmq::sockopt::linger, 1000);
  api_.close();
  spdlog::info("{} stopped {}", domain_.name(), domain_.describe());
}

void ConsumerService::run() {
  const std::size_t max_batch = config_.max_batch;
  const Millis tick{config_.tick_interval_ms};
  MonoTime next_tick = clock_.now();
  MonoTime reconcile_retry_at{};
  MonoTime next_probe = clock_.now();
  std::vector<zmq::pollitem_t> items;
  running_.store(true, std::memory_order_relaxed);
  while (!stop_.load(std::memory_order_relaxed)) {
    MonoTime now = clock_.now();
    if (now >= next_tick) {
      policy_->maintain();
      next_tick = now + tick;
    }
    if (now >= next_probe) {
      probe_store();
      next_probe = now + kStoreProbeEvery;
    }
    if (auto from = now >= reconcile_retry_at ? reconciler_->wants_page(now) : std::nullopt) {
      try {
        reconciler_->give_page(domain_.reconcile_candidates(*from, reconciler_->options().batch),
                               now);
      } catch (const std::exception& e) {
        // A read that failed: the round is retried at the next pass.
        spdlog::error("{} reconciliation candidates not read error=\"{}\"", domain_.name(),
                      e.what());
        stats_.storage_errors.fetch_add(1, std::memory_order_relaxed);
        reconcile_retry_at = now + tick;
      }
    }
    const MonoTime wake =
        std::min({next_tick, now + Millis(100), std::max(now, reconciler_->next_due())});
    // A full pipeline takes nothing new: it waits for the log's flush. While
    // the flush fails (PostgreSQL), nothing is applied: requests are
    // answered `unavailable` at once, events and lookup answers wait in
    // their sockets.
    const bool full = pipeline_full();
    const bool flushing = flushing_now();
    const short in = full ? 0 : ZMQ_POLLIN;
    const short in_events = full || !flushing ? 0 : ZMQ_POLLIN;
    items.clear();
    items.push_back({api_.handle(), 0, in, 0});
    for (std::size_t i = 0; i < events_->monitor_count(); ++i) {
      items.push_back({events_->events_socket(i).handle(), 0, in_events, 0});
    }
    for (std::size_t i = 0; i < reconciler_->monitor_count(); ++i) {
      items.push_back({reconciler_->socket(i).handle(), 0, in_events, 0});
    }
    if (syncer_) items.push_back({nullptr, syncer_->fd(), ZMQ_POLLIN, 0});
    zmq::poll(items.data(), items.size(), Millis(std::max<int64_t>(0, ms_between(now, wake) + 1)));
    if (syncer_) syncer_->drain();
    release_durable();
    if (pipeline_full()) continue;

    Batch b;
    if (!spare_.empty()) {
      b = std::move(spare_.back());
      spare_.pop_back();
    }
    b.clear();
    if (!flushing_now()) {
      refuse_requests(b);
      continue;
    }
    events_->maintain();
    events_->receive(b.events, max_batch);
    reconciler_->poll(clock_.now(), b.verdicts);
    monitors_answering_.store(reconciler_->answering(clock_.now()), std::memory_order_relaxed);
    receive_requests(api_, b.requests, max_batch);
    const ReconcileCounters& rc = reconciler_->counters();
    stats_.reconcile_rounds.store(rc.rounds, std::memory_order_relaxed);
    stats_.lookups.store(rc.lookups, std::memory_order_relaxed);
    stats_.lookups_unanswered.store(rc.lookups_unanswered, std::memory_order_relaxed);
    stats_.events_received.store(events_->received(), std::memory_order_relaxed);
    stats_.events_rejected.store(events_->rejected(), std::memory_order_relaxed);
    if (b.empty()) {
      recycle(std::move(b));
      continue;
    }
    commit(std::move(b));
  }
  running_.store(false, std::memory_order_relaxed);
  // Stopping: what was committed is answered once it is durable.
  if (syncer_ && !in_flight_.empty()) syncer_->wait(in_flight_.back().ticket);
  release_durable();
}

void ConsumerService::commit(Batch b) {
  policy_->apply(b);
  if (!syncer_) {  // --sync normal: durable (against a crash of the process) now
    release(b);
    recycle(std::move(b));
    return;
  }
  b.ticket = syncer_->commit();
  in_flight_bytes_ += batch_bytes(b);
  in_flight_.push_back(std::move(b));
  in_flight_count_.store(in_flight_.size(), std::memory_order_relaxed);
  if (config_.max_in_flight == 0) syncer_->wait(in_flight_.back().ticket);  // not pipelined
  release_durable();
}

bool ConsumerService::flushing_now() const { return !syncer_ || syncer_->healthy(); }

void ConsumerService::refuse_requests(Batch& b) {
  receive_requests(api_, b.requests, config_.max_batch);
  if (!b.requests.empty()) {
    policy_->refuse(b, "storage failure (commits cannot be made durable now); retry later");
    send_replies(api_, b.requests);
  }
  recycle(std::move(b));
}

bool ConsumerService::pipeline_full() const {
  return syncer_ && config_.max_in_flight > 0 &&
         (in_flight_.size() >= config_.max_in_flight || in_flight_bytes_ >= kMaxInFlightBytes);
}

std::size_t ConsumerService::batch_bytes(const Batch& b) {
  std::size_t n = 0;
  for (const Request& r : b.requests) n += r.body.size() + r.reply.size();
  return n;
}

void ConsumerService::recycle(Batch&& b) {
  // Cleared at once (replies may be large); a few kept for their capacity.
  b.clear();
  if (spare_.size() < kSpareBatches) spare_.push_back(std::move(b));
}

void ConsumerService::release_durable() {
  if (!syncer_) return;
  if (auto why = syncer_->failure()) {
    // Nothing waiting here was answered: its requests are asked again, its
    // events redelivered, once the service is back.
    throw std::runtime_error("the log's fsync failed, stopping with " +
                             std::to_string(in_flight_.size()) +
                             " committed batches unanswered: " + *why);
  }
  for (const store::CommitSyncer::Settled& s : syncer_->take_settled()) {
    std::size_t lost = 0;
    while (!in_flight_.empty() && in_flight_.front().ticket <= s.through) {
      Batch& b = in_flight_.front();
      in_flight_bytes_ -= batch_bytes(b);  // as counted: before lost() rewrites its replies
      if (s.durable) {
        release(b);
      } else {
        // Its commit may be gone: answered `unavailable` (asked again),
        // its events left for the monitor to redeliver. (A batch that rolled
        // back was answered so already.)
        if (b.committed) {
          policy_->lost(b);
          ++lost;
        }
        send_replies(api_, b.requests);
      }
      recycle(std::move(b));
      in_flight_.pop_front();
    }
    if (lost > 0) {
      spdlog::error(
          "commits lost: {} batches answered unavailable, their events left "
          "unacknowledged: {}",
          lost, s.why);
    }
  }
  in_flight_count_.store(in_flight_.size(), std::memory_order_relaxed);
}

void ConsumerService::release(Batch& b) {
  policy_->release(b);
  send_replies(api_, b.requests);
  events_->send_acks(b.events);
  stats_.acks_sent.store(events_->acks_sent(), std::memory_order_relaxed);
}

}  // namespace rmon
