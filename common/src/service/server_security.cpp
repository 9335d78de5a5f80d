#include "rmon/service/server_security.hpp"

#include <spdlog/spdlog.h>

#include <pthread.h>

#include <stdexcept>

#include "rmon/security/certificate.hpp"
#include "rmon/service/metrics_endpoint.hpp"

namespace rmon {
namespace {

using security::DenyReason;

// The clients folder, once libzmq is known to speak CURVE.
std::filesystem::path clients_dir(const SecuritySettings& settings) {
  if (!security::curve_available()) {
    throw std::runtime_error("--security curve: this libzmq was built without CURVE");
  }
  return settings.curve_clients_dir;
}

security::KeyPair own_keys(const SecuritySettings& settings) {
  auto keys = security::load_key_pair(settings.curve_secret_file);
  if (!keys) throw std::runtime_error("--curve-secret-file: " + keys.error().message);
  if (auto warning = security::secret_file_mode_warning(settings.curve_secret_file)) {
    spdlog::warn("{}", *warning);
  }
  return std::move(keys).value();
}

const security::Keyring& logged(const security::Keyring& keyring) {
  security::log_reload(keyring, keyring.first_load(), "start");
  return keyring;
}

}  // namespace

ServerSecurity::ServerSecurity(zmq::context_t& ctx, const SecuritySettings& settings)
    : ctx_(ctx),
      keyring_(clients_dir(settings)),
      own_(own_keys(settings)),
      zap_(ctx, logged(keyring_)),
      watcher_(keyring_, [this](const security::ReloadResult& r, std::string_view cause) {
        security::log_reload(keyring_, r, cause);
        if (r.removed == 0) return;
        revocations_.fetch_add(1, std::memory_order_acq_rel);
        std::lock_guard lock(revocation_mu_);
        if (revocation_listener_) revocation_listener_();
      }) {
  spdlog::info("security=curve public_key={} clients_dir={} keys={}", own_.public_key.z85(),
               settings.curve_clients_dir, keyring_.size());
}

ServerSecurity::~ServerSecurity() { unwatch(); }

void ServerSecurity::on_revocation(std::function<void()> listener) {
  std::lock_guard lock(revocation_mu_);
  revocation_listener_ = std::move(listener);
}

void ServerSecurity::secure(zmq::socket_t& socket, const security::Domain& domain) {
  security::make_curve_server(socket, zap_, own_.secret_key, domain);
  auto monitor = std::make_unique<security::HandshakeMonitor>(ctx_, socket);
  std::lock_guard lock(watch_mu_);
  watched_.push_back({domain.name(), std::move(monitor)});
  if (!watch_thread_.joinable()) watch_thread_ = std::thread([this] { watch_loop(); });
}

void ServerSecurity::watch_loop() {
  pthread_setname_np(pthread_self(), "rmon-handshakes");
  std::vector<zmq::pollitem_t> items;
  while (!watch_stop_.load(std::memory_order_relaxed)) {
    {
      std::lock_guard lock(watch_mu_);
      items.clear();
      for (const Watched& w : watched_) {
        items.push_back({w.monitor->pollable().handle(), 0, ZMQ_POLLIN, 0});
      }
    }
    // The sockets polled stay open until unwatch() has joined this thread.
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(100));
    std::lock_guard lock(watch_mu_);
    for (std::size_t i = 0; i < items.size(); ++i) {
      if ((items[i].revents & ZMQ_POLLIN) == 0) continue;
      for (const security::HandshakeEvent& e : watched_[i].monitor->poll()) {
        if (e.kind != security::HandshakeKind::kSucceeded) {
          ++handshake_failures_[{watched_[i].endpoint, e.kind}];
        }
      }
    }
  }
}

void ServerSecurity::unwatch() {
  watch_stop_ = true;
  if (watch_thread_.joinable()) watch_thread_.join();
  std::lock_guard lock(watch_mu_);
  watched_.clear();  // each stops libzmq's monitor of its socket
}

uint64_t ServerSecurity::handshake_failures(std::string_view endpoint,
                                            security::HandshakeKind kind) const {
  std::lock_guard lock(watch_mu_);
  const auto it = handshake_failures_.find({std::string(endpoint), kind});
  return it == handshake_failures_.end() ? 0 : it->second;
}

void ServerSecurity::record_denial(std::string_view endpoint, std::string_view op,
                                   DenyReason reason, const std::string& detail) {
  {
    std::lock_guard lock(mu_);
    ++denials_[{std::string(endpoint), std::string(op), reason}];
  }
  uint64_t suppressed = 0;
  const std::string key = std::string(endpoint) + "/" + std::string(op) + "/" +
                          std::string(security::deny_reason_name(reason));
  if (warn_limit_.allow(key, std::chrono::steady_clock::now(), suppressed)) {
    spdlog::warn("forbidden endpoint={} op={} reason={} {} suppressed={}", endpoint, op,
                 security::deny_reason_name(reason), detail, suppressed);
  }
}

uint64_t ServerSecurity::denials(std::string_view endpoint, std::string_view op,
                                 DenyReason reason) const {
  std::lock_guard lock(mu_);
  const auto it = denials_.find({std::string(endpoint), std::string(op), reason});
  return it == denials_.end() ? 0 : it->second;
}

void ServerSecurity::collect(std::vector<prometheus::MetricFamily>& out) const {
  using prometheus::MetricType;
  auto zap = metrics::family(
      "rmon_zap_requests_total",
      "CurveZMQ handshakes answered by the ZAP handler, by domain and result", MetricType::Counter);
  for (const auto& c : zap_.counts()) {
    metrics::add(
        zap, static_cast<double>(c.value),
        {{"domain", c.domain}, {"result", std::string(security::zap_result_name(c.result))}});
  }
  if (!zap.metric.empty()) out.push_back(std::move(zap));

  auto keys = metrics::family("rmon_keyring_keys", "Client keys admitted (the clients directory)",
                              MetricType::Gauge);
  metrics::add(keys, static_cast<double>(keyring_.size()));
  out.push_back(std::move(keys));

  auto reloads =
      metrics::family("rmon_keyring_reloads_total", "Reloads of the clients directory, by result",
                      MetricType::Counter);
  for (int i = 0; i < security::kReloadOutcomeCount; ++i) {
    const auto outcome = static_cast<security::ReloadOutcome>(i);
    metrics::add(reloads, static_cast<double>(keyring_.reloads(outcome)),
                 {{"result", std::string(security::reload_outcome_name(outcome))}});
  }
  out.push_back(std::move(reloads));

  auto failures = metrics::family(
      "rmon_handshake_failures_total",
      "Handshakes that failed on a bound socket, by endpoint (ZAP domain) and kind (auth: the ZAP "
      "handler refused the key; protocol: wrong mechanism or keys; no_detail: other)",
      MetricType::Counter);
  {
    std::lock_guard lock(watch_mu_);
    for (const auto& [key, value] : handshake_failures_) {
      metrics::add(failures, static_cast<double>(value),
                   {{"endpoint", key.first},
                    {"kind", std::string(security::handshake_kind_name(key.second))}});
    }
  }
  if (!failures.metric.empty()) out.push_back(std::move(failures));

  auto denied = metrics::family("rmon_authz_denied_total",
                                "Messages refused by the per-message check, by endpoint (ZAP "
                                "domain), op and reason",
                                MetricType::Counter);
  {
    std::lock_guard lock(mu_);
    for (const auto& [key, value] : denials_) {
      const auto& [endpoint, op, reason] = key;
      metrics::add(denied, static_cast<double>(value),
                   {{"endpoint", endpoint},
                    {"op", op},
                    {"reason", std::string(security::deny_reason_name(reason))}});
    }
  }
  if (!denied.metric.empty()) out.push_back(std::move(denied));
}

std::vector<prometheus::MetricFamily> security_metrics(const ServerSecurity* sec) {
  std::vector<prometheus::MetricFamily> out;
  auto enabled = metrics::family(
      "rmon_security_enabled", "1 when every bound socket is a CurveZMQ server (--security curve)",
      prometheus::MetricType::Gauge);
  metrics::add(enabled, sec != nullptr ? 1 : 0);
  out.push_back(std::move(enabled));
  if (sec != nullptr) sec->collect(out);
  return out;
}

MessageGate::MessageGate(ServerSecurity& owner, security::Domain domain)
    : security_(owner), endpoint_(domain.name()), authz_(owner.keyring(), std::move(domain)) {}

bool MessageGate::allow(const zmq::message_t& payload, std::string_view op,
                        std::optional<std::string_view> subject, bool unowned) {
  auto result = authz_.check(payload, op, subject, unowned);
  if (result.decision.allowed) return true;
  detail_ = std::move(result.decision.detail);
  security_.record_denial(endpoint_, op, result.decision.reason, detail_);
  return false;
}

}  // namespace rmon
