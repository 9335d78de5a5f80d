// CURVE over real sockets on 127.0.0.1 with the ZAP handler: who gets in,
// who does not and what the client sees, the per-message check against the
// live keyring, and what libzmq 4.3.4 does without a handler.

#include <gtest/gtest.h>

#include "rmon/security/curve_socket.hpp"
#include "security_test_support.hpp"

namespace rmon::security {
namespace {

namespace fs = std::filesystem;
using testing::Client;
using testing::enroll;
using testing::Server;

class Curve : public ::testing::Test {
 protected:
  Curve()
      : clients_(dir_.path()),
        server_keys_(KeyPair::generate()),
        runner_(enroll(clients_, "runner-r", Role::kRunner, "r-")),
        consumer_(enroll(clients_, "consumer-tq", Role::kConsumer, "task-queue")),
        submitter_(enroll(clients_, "submitter", Role::kSubmitter)),
        keyring_(clients_),
        zap_(ctx_, keyring_) {}

  Server server(const Domain& domain) {
    return Server(ctx_, [&](zmq::socket_t& s) {
      make_curve_server(s, zap_, server_keys_.secret_key, domain);
    });
  }
  ClientKeys keys_of(const KeyPair& own) { return {own, server_keys_.public_key}; }

  rmon::testing::TempDir dir_;
  const fs::path clients_;
  const KeyPair server_keys_, runner_, consumer_, submitter_;
  Keyring keyring_;
  zmq::context_t ctx_;
  ZapHandler zap_;
};

TEST_F(Curve, AnEnrolledKeyGetsInAndItsUserIdNamesItsPrincipal) {
  Server srv = server(Domain::hb());
  const ClientKeys keys = keys_of(runner_);
  Client client(ctx_, srv.endpoint, &keys);
  client.socket.send(zmq::str_buffer("hb"), zmq::send_flags::none);

  auto payload = srv.receive();
  ASSERT_TRUE(payload);
  EXPECT_EQ(user_id(*payload), runner_.public_key.z85());
  MessageAuthorizer authz(keyring_, Domain::hb());
  auto ok = authz.check(*payload, ops::kHeartbeat, "r-1");
  EXPECT_TRUE(ok.decision.allowed) << ok.decision.detail;
  ASSERT_NE(ok.principal, nullptr);
  EXPECT_EQ(ok.principal->name, "runner-r");
  auto outside = authz.check(*payload, ops::kHeartbeat, "x-1");
  EXPECT_EQ(outside.decision.reason, DenyReason::kRunnerPrefix);
  EXPECT_TRUE(client.wait_for(HandshakeKind::kSucceeded));
  EXPECT_EQ(zap_.count("hb", ZapResult::kAllowed), 1u);
}

TEST_F(Curve, AnUnenrolledKeyGetsNothingThroughAndItsClientSeesWhy) {
  Server srv = server(Domain::hb());
  const KeyPair stranger = KeyPair::generate();
  const ClientKeys keys = keys_of(stranger);
  Client client(ctx_, srv.endpoint, &keys);
  client.socket.send(zmq::str_buffer("forged"), zmq::send_flags::none);

  const auto refused = client.wait_for(HandshakeKind::kAuthFailed);
  ASSERT_TRUE(refused) << "no HANDSHAKE_FAILED_AUTH on the client";
  EXPECT_EQ(refused->value, 400);
  EXPECT_EQ(not_enrolled_message(stranger.public_key),
            "key not enrolled: " + stranger.public_key.z85());
  EXPECT_FALSE(srv.receive(100));
  EXPECT_EQ(zap_.count("hb", ZapResult::kUnknownKey), 1u);
  // libzmq does not reconnect after a ZAP refusal (its reconnect interval is
  // 100 ms): the client has to recreate the socket.
  EXPECT_FALSE(client.wait_for(HandshakeKind::kAuthFailed, std::chrono::milliseconds(300)));
  EXPECT_EQ(zap_.count("hb", ZapResult::kUnknownKey), 1u);
}

TEST_F(Curve, AClientWithTheWrongServerKeyFailsWithoutDetailAndRetries) {
  Server srv = server(Domain::hb());
  const ClientKeys keys{runner_, KeyPair::generate().public_key};
  Client client(ctx_, srv.endpoint, &keys);
  client.socket.send(zmq::str_buffer("hb"), zmq::send_flags::none);
  EXPECT_TRUE(
      Client::first_event(*srv.monitor, HandshakeKind::kProtocolFailed, std::chrono::seconds(3)));
  EXPECT_TRUE(client.wait_for(HandshakeKind::kNoDetail));
  EXPECT_TRUE(client.wait_for(HandshakeKind::kNoDetail)) << "libzmq retries this one";
  EXPECT_FALSE(srv.receive(0));
  EXPECT_TRUE(zap_.counts().empty());
}

TEST_F(Curve, ANullClientGetsNothingThroughAndNeverReachesZap) {
  Server srv = server(Domain::control());
  Client client(ctx_, srv.endpoint, nullptr);
  client.socket.send(zmq::str_buffer("plain"), zmq::send_flags::none);
  EXPECT_TRUE(
      Client::first_event(*srv.monitor, HandshakeKind::kProtocolFailed, std::chrono::seconds(3)));
  EXPECT_FALSE(srv.receive(100));
  EXPECT_TRUE(zap_.counts().empty());
}

TEST_F(Curve, AKeyWhoseRoleTheDomainDoesNotAdmitIsRefused) {
  Server hb = server(Domain::hb());
  const ClientKeys submitter = keys_of(submitter_);
  Client client(ctx_, hb.endpoint, &submitter);
  client.socket.send(zmq::str_buffer("hb"), zmq::send_flags::none);
  ASSERT_TRUE(client.wait_for(HandshakeKind::kAuthFailed));
  EXPECT_FALSE(hb.receive(100));
  EXPECT_EQ(zap_.count("hb", ZapResult::kRoleDenied), 1u);

  // A consumer gets its own group's event socket and no other.
  const ClientKeys consumer = keys_of(consumer_);
  Server other = server(Domain::events("pool-manager"));
  Client refused(ctx_, other.endpoint, &consumer);
  EXPECT_TRUE(refused.wait_for(HandshakeKind::kAuthFailed));
  Server own = server(Domain::events("task-queue"));
  Client admitted(ctx_, own.endpoint, &consumer);
  EXPECT_TRUE(admitted.wait_for(HandshakeKind::kSucceeded));
  EXPECT_EQ(zap_.count("events.pool-manager", ZapResult::kRoleDenied), 1u);
  EXPECT_EQ(zap_.count("events.task-queue", ZapResult::kAllowed), 1u);
}

TEST_F(Curve, ARemovedKeyIsRefusedOnItsNextMessageOverAnOpenConnection) {
  Server srv = server(Domain::hb());
  const ClientKeys keys = keys_of(runner_);
  Client client(ctx_, srv.endpoint, &keys);
  MessageAuthorizer authz(keyring_, Domain::hb());
  client.socket.send(zmq::str_buffer("1"), zmq::send_flags::none);
  auto first = srv.receive();
  ASSERT_TRUE(first);
  EXPECT_TRUE(authz.check(*first, ops::kHeartbeat, "r-1").decision.allowed);

  fs::remove(public_file(clients_, "runner-r"));
  ASSERT_EQ(keyring_.reload().removed, 1u);
  client.socket.send(zmq::str_buffer("2"), zmq::send_flags::none);
  auto second = srv.receive();
  ASSERT_TRUE(second) << "the open connection still delivers";
  const auto refused = authz.check(*second, ops::kHeartbeat, "r-1");
  EXPECT_FALSE(refused.decision.allowed);
  EXPECT_EQ(refused.decision.reason, DenyReason::kUnknownKey);
  EXPECT_EQ(refused.principal, nullptr);
  EXPECT_NE(refused.decision.detail.find(runner_.public_key.z85()), std::string::npos);
}

TEST_F(Curve, AMessageWithoutUserIdIsRefused) {
  // A plain (NULL) pair: what a socket someone forgot to secure receives.
  zmq::socket_t pull(ctx_, zmq::socket_type::pull), push(ctx_, zmq::socket_type::push);
  pull.set(zmq::sockopt::rcvtimeo, 2000);
  push.set(zmq::sockopt::linger, 0);
  const std::string ep = bind_endpoint(pull, "tcp://127.0.0.1:*");
  push.connect(ep);
  push.send(zmq::str_buffer("x"), zmq::send_flags::none);
  zmq::message_t msg;
  ASSERT_TRUE(pull.recv(msg));
  EXPECT_FALSE(user_id(msg));
  MessageAuthorizer authz(keyring_, Domain::acks());
  EXPECT_EQ(authz.check(msg, ops::kAck, "task-queue").decision.reason, DenyReason::kNoIdentity);
}

// libzmq 4.3.4 consults ZAP at each handshake, looking the handler up then.
// With ZMQ_ZAP_ENFORCE_DOMAIN and no handler, nobody gets in; without it, any
// key does: the reason make_curve_server() always sets it.
TEST(CurveWithoutZap, AnEnforcedDomainAdmitsNobody) {
  zmq::context_t ctx;  // no ZapHandler in this context
  const KeyPair server_keys = KeyPair::generate();
  const ClientKeys keys{KeyPair::generate(), server_keys.public_key};
  Server enforced(ctx, [&](zmq::socket_t& s) {
    set_curve_server_options(s, server_keys.secret_key, "hb", true);
  });
  Client client(ctx, enforced.endpoint, &keys);
  client.socket.send(zmq::str_buffer("x"), zmq::send_flags::none);
  EXPECT_TRUE(
      Client::first_event(*enforced.monitor, HandshakeKind::kNoDetail, std::chrono::seconds(3)));
  EXPECT_FALSE(enforced.receive(100));

  Server lax(ctx, [&](zmq::socket_t& s) {
    set_curve_server_options(s, server_keys.secret_key, "hb", false);
  });
  Client anyone(ctx, lax.endpoint, &keys);
  anyone.socket.send(zmq::str_buffer("x"), zmq::send_flags::none);
  EXPECT_TRUE(lax.receive()) << "libzmq no longer admits any key without a handler";
}

TEST(CurveClient, LingerIsSetDeliberately) {
  zmq::context_t ctx;
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  const ClientKeys keys{KeyPair::generate(), KeyPair::generate().public_key};
  make_curve_client(s, keys, std::chrono::milliseconds(250));
  EXPECT_EQ(s.get(zmq::sockopt::linger), 250);
  EXPECT_EQ(s.get(zmq::sockopt::curve_serverkey, kZ85KeyChars + 1), keys.server.z85());
}

}  // namespace
}  // namespace rmon::security
