#include "rmon/security/zap.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <iterator>

#include "rmon/logging.hpp"
#include "rmon/security/rules.hpp"
#include "rmon/zmq_util.hpp"

namespace rmon::security {
namespace {

constexpr std::array<std::string_view, kZapResultCount> kResultNames = {
    "allowed", "unknown_key", "role_denied", "bad_mechanism", "bad_domain", "malformed"};

ZapReply refuse(ZapResult result, std::string detail) {
  return ZapReply{result, "400", std::string(zap_result_name(result)), {}, std::move(detail)};
}

}  // namespace

std::string_view zap_result_name(ZapResult result) {
  return kResultNames[static_cast<std::size_t>(result)];
}

std::optional<ZapRequest> parse_zap_request(const std::vector<zmq::message_t>& frames) {
  if (frames.size() < 6) return std::nullopt;
  ZapRequest r;
  r.version = frames[0].to_string();
  r.request_id = frames[1].to_string();
  r.domain = frames[2].to_string();
  r.address = frames[3].to_string();
  r.routing_id = frames[4].to_string();
  r.mechanism = frames[5].to_string();
  for (std::size_t i = 6; i < frames.size(); ++i) r.credentials.push_back(frames[i].to_string());
  return r;
}

ZapReply decide_zap(const ZapRequest& request, KeyringView& view) {
  const std::string from = " from " + request.address;
  if (request.version != "1.0") return refuse(ZapResult::kMalformed, "ZAP version" + from);
  const auto domain = Domain::parse(request.domain);
  if (!domain) return refuse(ZapResult::kBadDomain, "unknown domain \"" + request.domain + "\"");
  if (request.mechanism != "CURVE") {
    return refuse(ZapResult::kBadMechanism, "mechanism " + request.mechanism + from);
  }
  if (request.credentials.size() != 1 || request.credentials[0].size() != kKeyBytes) {
    return refuse(ZapResult::kMalformed, "CURVE credentials" + from);
  }
  KeyBytes bytes;
  std::copy(request.credentials[0].begin(), request.credentials[0].end(), bytes.begin());
  std::string z85 = z85_encode_key(bytes);
  const Principal* p = view.find(z85);
  if (p == nullptr) return refuse(ZapResult::kUnknownKey, "key not enrolled: " + z85 + from);
  if (Decision d = admit(*p, *domain); !d) return refuse(ZapResult::kRoleDenied, d.detail + from);
  return ZapReply{ZapResult::kAllowed, "200", "OK", std::move(z85), p->describe() + from};
}

ZapHandler::ZapHandler(zmq::context_t& ctx, const Keyring& keyring) : keyring_(keyring) {
  SocketOptions o;
  zmq::socket_t zap = make_socket(ctx, zmq::socket_type::rep, o);
  zap.bind(kZapEndpoint);
  const std::string stop_ep =
      "inproc://rmon-zap-stop-" + std::to_string(reinterpret_cast<uintptr_t>(this));
  zmq::socket_t stop_rx = make_socket(ctx, zmq::socket_type::pair, o);
  stop_rx.bind(stop_ep);
  stop_ = make_socket(ctx, zmq::socket_type::pair, o);
  stop_.connect(stop_ep);
  thread_ = std::thread(&ZapHandler::run, this, std::move(zap), std::move(stop_rx));
}

ZapHandler::~ZapHandler() {
  try {
    (void)stop_.send(zmq::str_buffer("stop"), zmq::send_flags::dontwait);
  } catch (const zmq::error_t&) {
    // ETERM: the context is shutting down and the thread has seen it too.
  }
  thread_.join();
}

void ZapHandler::run(zmq::socket_t zap, zmq::socket_t stop) {
  KeyringView view(keyring_);
  LogRateLimiter limiter(10, std::chrono::seconds(10));
  std::vector<zmq::message_t> frames;
  try {
    std::array<zmq::pollitem_t, 2> items{
        {{zap.handle(), 0, ZMQ_POLLIN, 0}, {stop.handle(), 0, ZMQ_POLLIN, 0}}};
    while (true) {
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(-1));
      if (items[1].revents & ZMQ_POLLIN) return;
      if (!(items[0].revents & ZMQ_POLLIN) || !recv_frames(zap, frames)) continue;
      const auto request = parse_zap_request(frames);
      const ZapReply reply = request ? decide_zap(*request, view)
                                     : refuse(ZapResult::kMalformed, "fewer than 6 frames");
      const std::string request_id = frames.size() > 1 ? frames[1].to_string() : std::string();
      // A REP must answer every request, or it cannot take the next one.
      (void)send_frames(
          zap, {"1.0", request_id, reply.status_code, reply.status_text, reply.user_id, ""},
          zmq::send_flags::none);
      const std::string domain = request ? request->domain : std::string();
      record(domain, reply.result);
      uint64_t suppressed = 0;
      if (reply.result != ZapResult::kAllowed &&
          limiter.allow(domain + "/" + std::string(zap_result_name(reply.result)),
                        std::chrono::steady_clock::now(), suppressed)) {
        spdlog::warn("handshake refused domain={} result={} {} suppressed={}", domain,
                     zap_result_name(reply.result), reply.detail, suppressed);
      }
    }
  } catch (const zmq::error_t& e) {
    if (e.num() != ETERM) {
      spdlog::critical("ZAP handler stopped, no new connection can be admitted: {}", e.what());
    }
  } catch (const std::exception& e) {
    // Not std::terminate from a library thread: said loudly instead.
    spdlog::critical("ZAP handler stopped, no new connection can be admitted: {}", e.what());
  }
}

void ZapHandler::record(const std::string& domain, ZapResult result) {
  std::lock_guard lock(mu_);
  ++counts_[{domain, result}];
}

std::vector<ZapHandler::Count> ZapHandler::counts() const {
  std::lock_guard lock(mu_);
  std::vector<Count> out;
  for (const auto& [key, value] : counts_) out.push_back({key.first, key.second, value});
  return out;
}

uint64_t ZapHandler::count(std::string_view domain, ZapResult result) const {
  std::lock_guard lock(mu_);
  const auto it = counts_.find({std::string(domain), result});
  return it == counts_.end() ? 0 : it->second;
}

}  // namespace rmon::security
