#include "gateway.hpp"

#include "rmon/protocol/codec.hpp"

namespace rmon::console {

std::string_view name(Service s) {
  switch (s) {
    case Service::kMonitor:
      return "runner-monitor";
    case Service::kTaskQueue:
      return "task-queue";
    case Service::kPoolManager:
      return "pool-manager";
  }
  return "?";
}

struct Gateway::Client {
  std::mutex mu;
  runner::ApiClient api;  // guarded by mu
  Client(zmq::context_t& ctx, const std::string& endpoint, int timeout_ms,
         std::optional<security::ClientKeys> keys)
      : api(ctx, endpoint, timeout_ms, std::move(keys)) {}
};

Gateway::Gateway(const ConsoleConfig& config) {
  const std::pair<Service, const std::string*> endpoints[] = {
      {Service::kMonitor, &config.monitor_endpoint},
      {Service::kTaskQueue, &config.task_queue_endpoint},
      {Service::kPoolManager, &config.pool_manager_endpoint}};
  for (const auto& [s, endpoint] : endpoints) {
    auto keys = config.security.keys_for(name(s));
    if (!keys) throw std::runtime_error(keys.error().message);
    clients_[static_cast<int>(s)] =
        std::make_unique<Client>(ctx_, *endpoint, config.timeout_ms, std::move(keys.value()));
  }
}

Gateway::~Gateway() {
  for (auto& c : clients_) c.reset();
  ctx_.shutdown();
}

Gateway::Client& Gateway::client(Service s) { return *clients_[static_cast<int>(s)]; }

namespace {

// An error code in plain words for the page.
std::string plain_words(Service s, const runner::ApiError& e) {
  const std::string who(name(s));
  if (e.code == "timeout") return who + " did not answer in time; is it running?";
  if (e.code == "not_enrolled") {
    return who + " refused the console's key: enrol it in that service's clients folder";
  }
  if (e.code == "forbidden") return "the console's key may not do this (" + e.detail + ")";
  if (e.code == "not_found") return "not found (" + e.detail + ")";
  if (e.code == "conflict") return "not possible in its current state (" + e.detail + ")";
  if (e.code == "bad_request") return "refused as malformed (" + e.detail + ")";
  if (e.code == "unavailable") return who + " cannot take it now (" + e.detail + ")";
  return who + " answered " + e.code + (e.detail.empty() ? "" : ": " + e.detail);
}

int http_status(const runner::ApiError& e) {
  if (e.code == "timeout") return 504;
  if (e.code == "not_found") return 404;
  if (e.code == "conflict" || e.code == "stale_attempt") return 409;
  if (e.code == "bad_request" || e.code == "unknown_op") return 400;
  if (e.code == "forbidden") return 403;
  if (e.code == "unavailable") return 503;
  return 502;
}

}  // namespace

JsonReply Gateway::failure(Service s, const runner::ApiError& e) {
  JsonReply r;
  r.status = http_status(e);
  r.body = protocol::to_json(protocol::MapBuilder()
                                 .boolean("ok", false)
                                 .str("service", name(s))
                                 .str("error", e.code)
                                 .str("detail", e.detail)
                                 .str("message", plain_words(s, e))
                                 .finish());
  return r;
}

runner::Outcome<std::string> Gateway::call_raw(Service s, std::string_view op,
                                               const protocol::MapBuilder& fields) {
  Client& c = client(s);
  std::lock_guard lock(c.mu);
  return c.api.call(op, fields);
}

JsonReply Gateway::call(Service s, std::string_view op, const protocol::MapBuilder& fields) {
  auto r = call_raw(s, op, fields);
  if (!r) return failure(s, r.error());
  return {200, protocol::to_json(r.value())};
}

runner::Outcome<std::string> Gateway::monitor_raw(const protocol::ControlRequest& req) {
  Client& c = client(Service::kMonitor);
  runner::Outcome<std::string> raw = [&] {
    std::lock_guard lock(c.mu);
    return c.api.exchange(protocol::encode_control_request(req));
  }();
  if (!raw) return raw;
  auto reply = protocol::decode_control_reply(raw.value());
  if (!reply) return runner::ApiError{"bad_reply", reply.error().to_string()};
  if (!reply.value().ok) return runner::ApiError{reply.value().error, reply.value().detail};
  return raw;
}

JsonReply Gateway::monitor(const protocol::ControlRequest& req) {
  auto r = monitor_raw(req);
  if (!r) return failure(Service::kMonitor, r.error());
  return {200, protocol::to_json(r.value())};
}

}  // namespace rmon::console
