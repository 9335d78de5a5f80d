#include "rmon/security/client.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "rmon/logging.hpp"

namespace rmon::security {
namespace {

constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{5'000};

// One limiter for the process: a fleet of refused sockets with the same key
// logs a few lines, not one per socket and attempt.
LogRateLimiter& refusal_log_limit() {
  static LogRateLimiter limit(5, std::chrono::seconds(10));
  return limit;
}

}  // namespace

void ClientSecurity::add_options(CLI::App& app, std::string_view env_prefix) {
  const auto env = [&](const char* name) { return std::string(env_prefix) + name; };
  app.add_option("--security", mode, "off, or curve: CURVE with the keys below")
      ->envname(env("SECURITY"))
      ->capture_default_str();
  app.add_option("--curve-secret-file", secret_file,
                 "--security curve: this client's own NAME.key_secret")
      ->envname(env("CURVE_SECRET_FILE"));
  app.add_option("--curve-servers-dir", servers_dir,
                 "--security curve: the servers' public keys (runner-monitor.key, task-queue.key, "
                 "pool-manager.key; rmon-keygen init writes them to DIR/servers)")
      ->envname(env("CURVE_SERVERS_DIR"));
}

std::string ClientSecurity::validate() const {
  if (mode != "off" && mode != "curve")
    return "--security must be off or curve, not '" + mode + "'";
  if (!curve()) return {};
  if (secret_file.empty()) return "--security curve needs --curve-secret-file (the client's key)";
  if (servers_dir.empty()) {
    return "--security curve needs --curve-servers-dir (the servers' public keys)";
  }
  return {};
}

Expected<std::optional<ClientKeys>> ClientSecurity::keys_for(std::string_view service) const {
  if (!curve()) return std::optional<ClientKeys>{};
  if (std::string err = validate(); !err.empty()) return Error{err};
  auto keys = load_client_keys(secret_file, public_file(servers_dir, service));
  if (!keys) return keys.error();
  return std::optional<ClientKeys>(std::move(keys).value());
}

ClientSocket::ClientSocket(zmq::context_t& ctx, zmq::socket_type type, SocketOptions options,
                           std::string endpoint, std::optional<ClientKeys> keys)
    : ctx_(ctx),
      type_(type),
      options_(options),
      endpoint_(std::move(endpoint)),
      keys_(std::move(keys)) {
  open();
}

ClientSocket::~ClientSocket() { monitor_.reset(); }

void ClientSocket::open() {
  monitor_.reset();
  zmq::socket_t s = make_socket(ctx_, type_, options_);
  if (keys_) {
    make_curve_client(s, *keys_, std::chrono::milliseconds(options_.linger_ms));
    // Before connect, so the first handshake is seen.
    monitor_ = std::make_unique<HandshakeMonitor>(ctx_, s);
  }
  s.connect(endpoint_);
  socket_ = std::move(s);
}

void* ClientSocket::events_handle() const {
  return monitor_ ? monitor_->pollable().handle() : nullptr;
}

void ClientSocket::reconnect() {
  reopen_at_.reset();
  open();
}

bool ClientSocket::maintain(std::chrono::steady_clock::time_point now) {
  if (!monitor_) return false;
  for (const HandshakeEvent& e : monitor_->poll()) {
    if (e.kind == HandshakeKind::kSucceeded) {
      refused_ = false;
      backoff_ = std::chrono::milliseconds(0);
      continue;
    }
    if (e.kind != HandshakeKind::kAuthFailed) continue;  // libzmq retries these itself
    refused_ = true;
    ++refusals_;
    backoff_ = std::clamp(backoff_ * 2, kFirstBackoff, kMaxBackoff);
    reopen_at_ = now + backoff_;
    const std::string key = keys_->own.public_key.z85();
    uint64_t suppressed = 0;
    if (refusal_log_limit().allow(key, now, suppressed)) {
      spdlog::warn("{} endpoint={} status={} retry_in_ms={} suppressed={}",
                   not_enrolled_message(keys_->own.public_key), endpoint_, e.value,
                   backoff_.count(), suppressed);
    }
  }
  if (reopen_at_ && now >= *reopen_at_) {
    reconnect();
    return true;
  }
  return false;
}

}  // namespace rmon::security
