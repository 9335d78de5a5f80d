#include "service.hpp"

#include <spdlog/spdlog.h>

#include <pthread.h>

#include <stdexcept>

#include <absl/container/flat_hash_set.h>

#include "rmon/service/main.hpp"
#include "rmon/service/router.hpp"
#include "rmon/zmq_util.hpp"

namespace rmon::monitor {

namespace {

// Serves the ROUTER socket: [identity, (empty,) request] -> same envelope + reply.
// Between polls (at least every 100 ms) it lets `log` write the summary of
// lifecycle lines held back.
// With a `gate`, each request's op must be one its sender's role may do.
void serve_control(zmq::socket_t& router, ControlHandler& handler, LifecycleLog& log,
                   MessageGate* gate, const std::atomic<bool>& stop) {
  std::vector<Request> requests;
  const Request* current = nullptr;
  ControlHandler::OpCheck check;
  if (gate != nullptr) {
    check = [&](protocol::Op op) -> std::optional<std::string> {
      if (gate->allow(current->body, protocol::to_string(op))) return std::nullopt;
      return gate->detail();
    };
  }
  zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
  while (!stop.load(std::memory_order_relaxed)) {
    log.flush();
    if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) == 0) continue;
    requests.clear();
    while (receive_requests(router, requests, 256) > 0) {
      for (Request& r : requests) {
        current = &r;
        r.reply = handler.handle(r.body_view(), check);
      }
      send_replies(router, requests);
      requests.clear();
    }
  }
}

}  // namespace

MonitorService::MonitorService(MonitorConfig config, const Clock& clock)
    : config_(std::move(config)), clock_(clock), observer_(std::make_unique<LifecycleLog>(clock)) {
  if (std::string err = config_.validate(); !err.empty()) throw std::invalid_argument(err);
  if (config_.security.curve()) {
    // Keys first: a monitor that cannot read them must not start at all.
    security_ = std::make_unique<ServerSecurity>(ctx_, config_.security);
    hb_gate_ = std::make_unique<MessageGate>(*security_, security::Domain::hb());
    ack_gate_ = std::make_unique<MessageGate>(*security_, security::Domain::acks());
    control_gate_ = std::make_unique<MessageGate>(*security_, security::Domain::control());
  }
  const OutboxOptions outbox_opts = config_.outbox_options();
  stats_ = std::make_unique<MonitorStats>(outbox_opts.groups);
  std::unique_ptr<OutboxStore> outbox_store;
  TableObserver* observer = observer_.get();
  if (!config_.data_dir.empty()) {
    // Two files, one per writer thread: the outbox (dispatch) and the table
    // (persister). Each is opened for this process alone.
    const std::string owner = "one runner-monitor per data folder";
    // Its log is copied into the database by a thread of its own, at most
    // once a second when no append or ack came for 100 ms, at once past
    // 64 MiB (store::Checkpointer's defaults): that bounds the log.
    outbox_store = OutboxStore::open(store::service_db_path(config_.data_dir, "runner-monitor"),
                                     config_.sync_mode(), owner, outbox_opts.groups,
                                     store::Checkpointer::Options{}, config_.drop_groups);
    persister_ = std::make_unique<Persister>(
        std::make_unique<TableStore>(
            store::open_service_db(store::service_db_path(config_.data_dir, "runner-monitor-table"),
                                   store::SyncMode::kNormal, owner, kTableSchemaVersion)),
        Millis(config_.save_interval_ms), kMaxDirtyRunners, config_.rewrite_pass_runners);
    observers_ = std::make_unique<ObserverFanout>(
        std::vector<TableObserver*>{observer_.get(), persister_.get()});
    observer = observers_.get();
  } else {
    spdlog::warn("no data folder: runners and pending events are kept in memory only");
  }
  table_ = std::make_unique<RunnerTable>(
      config_.table_options(make_event_id_prefix(config_.instance, clock_.wall_ms())), observer);
  outbox_ = std::make_unique<Outbox>(outbox_opts, std::move(outbox_store));
  if (persister_) {
    persister_->attach(*table_);
    restore();
  }
  StorageStats storage;
  if (persister_) storage.saves = &persister_->stats();
  if (const auto* ck = outbox_->store().checkpointer()) storage.outbox_checkpoints = &ck->stats();
  metrics_ = std::make_unique<Metrics>(*table_, *stats_, storage);
  metrics_->add_collector([s = security_.get()] { return security_metrics(s); });
  // The threshold itself, so an alert rule compares rmon_events_pending with it
  // (deploy/prometheus/alerts.yml) instead of repeating the setting.
  metrics_->add_collector([threshold = static_cast<double>(config_.backlog_alert)] {
    auto f = metrics::family("rmon_events_backlog_alert_threshold",
                             "Unacknowledged events of one group that raise the backlog alert "
                             "(--backlog-alert)",
                             prometheus::MetricType::Gauge);
    metrics::add(f, threshold);
    return std::vector<prometheus::MetricFamily>{std::move(f)};
  });
  ingest_ = std::make_unique<IngestLoop>(*table_, *stats_, clock_, hb_gate_.get());
  dispatcher_ = std::make_unique<Dispatcher>(*table_, *outbox_, *stats_, metrics_.get(), clock_,
                                             config_.dispatch_options());
  control_ =
      std::make_unique<ControlHandler>(*table_, *stats_, dispatcher_->brake_release(), clock_);
  ack_writer_ = std::make_unique<AckWriter>(outbox_->store(), outbox_->acks(), *stats_, clock_,
                                            config_.ack_writer_options(),
                                            [d = dispatcher_.get()] { d->wake(); });
}

void MonitorService::restore() {
  const MonoTime now = clock_.now();
  const int64_t wall_ms = clock_.wall_ms();
  // The attempts the outbox has events for (pending or done) timed out, even
  // if the table was saved before it noted so.
  absl::flat_hash_set<std::string> timed_out;
  const auto key = [](std::string_view runner, std::string_view task, uint64_t attempt) {
    std::string k(runner);
    k += '\0';
    k += task;
    k += '\0';
    k += std::to_string(attempt);
    return k;
  };
  std::vector<TimedOutAttempt> attempts;
  outbox_->store().for_each_attempt([&](const TimedOutAttempt& a) {
    timed_out.insert(key(a.runner_id, a.task_id, a.attempt));
    attempts.push_back(a);
  });
  std::size_t live = 0, ended = 0, unreadable = 0;
  std::vector<std::string> revived;
  const std::size_t loaded = persister_->store().load(
      [&](const SavedRunner& saved) {
        SavedRunner r = saved;
        // Saved as timed out but the outbox has no event for it: the event was
        // not written before the crash. Times out again (after the grace)
        // rather than never: a repeat is fenced by the consumers, a loss is not.
        if (r.timed_out &&
            !timed_out.contains(key(r.info.runner_id, r.info.task_id, r.info.attempt))) {
          r.timed_out = false;
          r.state = RunnerState::kRunning;
          revived.push_back(r.info.runner_id);
        }
        if (!table_->restore(r, now, wall_ms)) return;
        (r.state == RunnerState::kRunning || r.state == RunnerState::kSuspect ? live : ended)++;
      },
      unreadable);
  std::size_t reconciled = 0;
  for (const TimedOutAttempt& a : attempts) {
    if (table_->mark_timed_out(a.runner_id, a.task_id, a.attempt, now)) {
      persister_->mark(a.runner_id);
      ++reconciled;
    }
  }
  for (const std::string& id : revived) persister_->mark(id);
  const std::optional<Millis> grace =
      config_.restart_grace_ms > 0 ? std::optional(Millis(config_.restart_grace_ms)) : std::nullopt;
  table_->grant_grace(now, grace);
  std::string pending;
  for (std::size_t g = 0; g < outbox_->groups().size(); ++g) {
    pending += " " + outbox_->groups()[g] + "=" + std::to_string(outbox_->pending(g));
  }
  if (loaded > 0 || outbox_->pending_total() > 0) {
    spdlog::info(
        "restored from {} runners={} live={} ended={} timed_out_per_outbox={} "
        "retimed={} unreadable={} grace={} pending:{}",
        config_.data_dir, loaded, live - reconciled, ended + reconciled, reconciled, revived.size(),
        unreadable, grace ? std::to_string(grace->count()) + "ms" : std::string("own timeout"),
        pending);
  }
  if (unreadable > 0) {
    spdlog::error("{} saved runners could not be read and were skipped", unreadable);
  }
}

MonitorService::~MonitorService() { stop(); }

void MonitorService::start() {
  // Before bind: a CURVE server on its domain (--security curve).
  const auto secure = [this](zmq::socket_t& socket, const security::Domain& domain) {
    if (security_) security_->secure(socket, domain);
  };
  SocketOptions sub_opts;
  sub_opts.recv_hwm = config_.heartbeat_hwm;
  // Frames between 8 KiB and this are counted as too_large; libzmq drops the
  // connection of a peer sending more.
  sub_opts.max_msg_size = static_cast<int64_t>(protocol::kMaxFrame);
  sub_opts.backlog = kFleetListenBacklog;
  sub_ = make_socket(ctx_, zmq::socket_type::sub, sub_opts);
  for (const std::string& prefix : config_.subscribe) sub_.set(zmq::sockopt::subscribe, prefix);
  secure(sub_, security::Domain::hb());
  endpoints_.heartbeat = attach(sub_, config_.heartbeat_endpoint);

  SocketOptions push_opts;
  push_opts.send_hwm = config_.event_hwm;
  for (const GroupEndpoint& g : config_.group_endpoints()) {
    push_.push_back(make_socket(ctx_, zmq::socket_type::push, push_opts));
    secure(push_.back(), security::Domain::events(g.name));
    endpoints_.groups.push_back(attach(push_.back(), g.endpoint));
  }

  SocketOptions small;
  small.max_msg_size = static_cast<int64_t>(protocol::kMaxFrame);
  acks_ = make_socket(ctx_, zmq::socket_type::pull, small);
  secure(acks_, security::Domain::acks());
  endpoints_.ack = attach(acks_, config_.ack_endpoint);
  // Control requests may be bigger than acks: a `lookup` of kMaxLookupIds
  // full-length ids. libzmq drops the connection of a peer sending more.
  SocketOptions control_opts;
  control_opts.max_msg_size = static_cast<int64_t>(protocol::kMaxControlRequestFrame);
  router_ = make_socket(ctx_, zmq::socket_type::router, control_opts);
  secure(router_, security::Domain::control());
  endpoints_.control = attach(router_, config_.control_endpoint);
  if (!config_.metrics_address.empty()) {
    endpoints_.metrics_port = metrics_->serve(config_.metrics_address);
  }

  // Arming something earlier than the dispatcher plans to wake wakes it.
  table_->set_waker([d = dispatcher_.get()] { d->wake(); });
  const Millis max_sleep = kMaxDispatchSleep;
  stats_->ingest_drained_ns.store(clock_.now().time_since_epoch().count());

  // spdlog builds its registry on first use; do that here, before any of our
  // threads can log, rather than racing to it from several threads at once.
  (void)spdlog::default_logger_raw();
  stop_ = false;
  // Named threads show up as such in top -H, perf and gdb.
  // No silent death: an exception (or allocation failure) on a service
  // thread is logged and stops the process with status 1.
  auto guarded = [](const char* name, auto body) {
    return [name, body] {
      pthread_setname_np(pthread_self(), name);
      try {
        body();
      } catch (const std::exception& e) {
        fail_service(std::string(name) + ": " + e.what());
      }
    };
  };
  threads_.emplace_back(guarded("rmon-ingest", [this] { ingest_->run(sub_, stop_); }));
  threads_.emplace_back(guarded("rmon-dispatch", [this, max_sleep] {
    // A PUSH socket checks a consumer's key only at its handshake: after a
    // key was removed, every event socket drops its connections (unbind,
    // bind) so that each consumer reconnects through the ZAP handler, and a
    // revoked one is refused. Events in flight on them are redelivered.
    uint64_t revocations = security_ ? security_->revocations() : 0;
    auto recheck = [this, &revocations](std::vector<zmq::socket_t>& push) {
      if (!security_ || security_->revocations() == revocations) return;
      revocations = security_->revocations();
      for (std::size_t g = 0; g < push.size(); ++g) {
        rebind(push[g], endpoints_.groups[g]);
        spdlog::info("a key was removed: group {} reconnects through the ZAP handler endpoint={}",
                     stats_->groups[g], endpoints_.groups[g]);
      }
    };
    dispatcher_->run(push_, stop_, max_sleep, recheck);
  }));
  if (security_) security_->on_revocation([d = dispatcher_.get()] { d->wake(); });
  threads_.emplace_back(
      guarded("rmon-acks", [this] { ack_writer_->run(acks_, stop_, ack_gate_.get()); }));
  threads_.emplace_back(guarded("rmon-control", [this] {
    serve_control(router_, *control_, *observer_, control_gate_.get(), stop_);
  }));
  if (persister_) {
    threads_.emplace_back(guarded("rmon-persist", [this] { persister_->run(stop_); }));
  }
  // Before the start line, which readiness checks wait for.
  config_.security.warn_exposed(
      config_.service_endpoints(),
      "forge heartbeats (keep a dead runner alive, end a live one), take and acknowledge "
      "timeout events, add, remove or change runners and release the storm brake");
  spdlog::info(
      "runner-monitor started heartbeat={} ack={} control={} metrics_port={} shards={} "
      "default_timeout_ms={}",
      endpoints_.heartbeat, endpoints_.ack, endpoints_.control, endpoints_.metrics_port,
      config_.shards, config_.default_timeout_ms);
  for (std::size_t g = 0; g < push_.size(); ++g) {
    spdlog::info("consumer group group={} endpoint={}", outbox_->groups()[g], endpoints_.groups[g]);
  }
}

void MonitorService::stop() {
  if (threads_.empty()) {
    if (security_) security_->unwatch();  // a start that failed: before the sockets close
    return;
  }
  stop_ = true;
  dispatcher_->wake();  // not a second later
  if (persister_) persister_->wake();
  for (auto& t : threads_) t.join();
  threads_.clear();
  if (security_) security_->on_revocation({});  // the dispatcher may go now
  observer_->flush(true);
  outbox_->take_acks();  // what the ack thread committed after the dispatcher's last pass
  const uint64_t pending = outbox_->pending_total();
  if (pending > 0) {
    if (persister_) {
      spdlog::info("stopping with unacknowledged events pending={} (on disk: sent after restart)",
                   pending);
    } else {
      spdlog::warn("stopping with unacknowledged events pending={} (kept in memory only: lost)",
                   pending);
    }
  }
  if (security_) security_->unwatch();  // before the sockets it watches close
  sub_.close();
  for (auto& s : push_) s.close();
  push_.clear();
  acks_.close();
  router_.close();
  spdlog::info("runner-monitor stopped");
}

}  // namespace rmon::monitor
