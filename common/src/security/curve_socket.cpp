#include "rmon/security/curve_socket.hpp"

namespace rmon::security {
namespace {

// cppzmq defines no name for the option (its header hides the draft macro).
constexpr zmq::sockopt::integral_option<ZMQ_ZAP_ENFORCE_DOMAIN, int, true> kZapEnforceDomain{};

}  // namespace

void set_curve_server_options(zmq::socket_t& socket, const SecretKey& server_secret,
                              std::string_view zap_domain, bool enforce_domain) {
  socket.set(zmq::sockopt::curve_server, 1);
  socket.set(zmq::sockopt::curve_secretkey,
             zmq::const_buffer(server_secret.bytes().data(), kKeyBytes));
  socket.set(zmq::sockopt::zap_domain, zap_domain);
  socket.set(kZapEnforceDomain, enforce_domain);
}

void make_curve_server(zmq::socket_t& socket, const ZapHandler& /*zap*/,
                       const SecretKey& server_secret, const Domain& domain) {
  set_curve_server_options(socket, server_secret, domain.name(), true);
}

Expected<ClientKeys> load_client_keys(const std::filesystem::path& own_secret_file,
                                      const std::filesystem::path& server_public_file) {
  auto own = load_key_pair(own_secret_file);
  if (!own) return own.error();
  auto server = load_public_key(server_public_file);
  if (!server) return server.error();
  return ClientKeys{std::move(own).value(), server.value()};
}

void make_curve_client(zmq::socket_t& socket, const ClientKeys& keys,
                       std::chrono::milliseconds linger) {
  socket.set(zmq::sockopt::curve_serverkey,
             zmq::const_buffer(keys.server.bytes().data(), kKeyBytes));
  socket.set(zmq::sockopt::curve_publickey,
             zmq::const_buffer(keys.own.public_key.bytes().data(), kKeyBytes));
  socket.set(zmq::sockopt::curve_secretkey,
             zmq::const_buffer(keys.own.secret_key.bytes().data(), kKeyBytes));
  socket.set(zmq::sockopt::linger, static_cast<int>(linger.count()));
}

std::optional<std::string_view> user_id(const zmq::message_t& frame) {
  const char* v = zmq_msg_gets(frame.handle(), "User-Id");
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string_view(v);
}

MessageAuthorizer::MessageAuthorizer(const Keyring& keyring, Domain domain)
    : view_(keyring), domain_(std::move(domain)) {}

MessageAuthorizer::Result MessageAuthorizer::check(const zmq::message_t& payload,
                                                   std::string_view op,
                                                   std::optional<std::string_view> subject,
                                                   bool unowned) {
  const auto id = user_id(payload);
  if (!id) {
    return {
        Decision::deny(DenyReason::kNoIdentity,
                       "a message without User-Id (not a CURVE connection) on " + domain_.name()),
        nullptr};
  }
  const Principal* p = view_.find(*id);
  if (p == nullptr) {
    return {Decision::deny(DenyReason::kUnknownKey, "key not enrolled: " + std::string(*id) +
                                                        " (removed since it connected?)"),
            nullptr};
  }
  return {authorize(*p, domain_, op, subject, unowned), p};
}

}  // namespace rmon::security
