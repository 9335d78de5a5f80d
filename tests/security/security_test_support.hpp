#pragma once
// Shared by the security tests: client keys enrolled into a clients
// directory, a CURVE server with the process's ZAP handler, CURVE clients
// whose handshakes are watched, and running a command (python3, rmon-keygen)
// for its output.

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <utility>

#include "../support/child_process.hpp"
#include "../support/temp_dir.hpp"
#include "rmon/security/certificate.hpp"
#include "rmon/security/curve_socket.hpp"
#include "rmon/security/handshake_monitor.hpp"
#include "rmon/security/principal.hpp"
#include "rmon/zmq_util.hpp"

namespace rmon::security::testing {

// A fresh key pair whose public certificate NAME.key sits in `clients_dir`.
inline KeyPair enroll(const std::filesystem::path& clients_dir, const std::string& name, Role role,
                      std::string_view prefix_or_group = {}) {
  KeyPair keys = KeyPair::generate();
  const Metadata m = principal_metadata(role, prefix_or_group, prefix_or_group);
  const Status s = save_public_certificate(public_file(clients_dir, name), keys.public_key, m);
  EXPECT_TRUE(s.ok()) << s.error().message;
  return keys;
}

// A CURVE client socket (DEALER) watched from before its connect. The
// monitor is declared after the socket so that it is destroyed first.
struct Client {
  zmq::socket_t socket;
  std::unique_ptr<HandshakeMonitor> monitor;

  Client(zmq::context_t& ctx, const std::string& endpoint, const ClientKeys* keys) {
    SocketOptions o;
    o.recv_timeout_ms = 2000;
    o.send_timeout_ms = 2000;
    socket = make_socket(ctx, zmq::socket_type::dealer, o);
    if (keys != nullptr) make_curve_client(socket, *keys, std::chrono::milliseconds(0));
    monitor = std::make_unique<HandshakeMonitor>(ctx, socket);
    socket.connect(endpoint);
  }
  // The first event of `kind` within `wait`, or nullopt.
  std::optional<HandshakeEvent> wait_for(HandshakeKind kind,
                                         std::chrono::milliseconds wait = std::chrono::seconds(3)) {
    return first_event(*monitor, kind, wait);
  }
  static std::optional<HandshakeEvent> first_event(HandshakeMonitor& monitor, HandshakeKind kind,
                                                   std::chrono::milliseconds wait) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < deadline) {
      for (auto& e : monitor.poll(std::chrono::milliseconds(50))) {
        if (e.kind == kind) return e;
      }
    }
    return std::nullopt;
  }
};

// A ROUTER bound on 127.0.0.1 as a CURVE server, watched from before its bind.
struct Server {
  zmq::socket_t socket;
  std::unique_ptr<HandshakeMonitor> monitor;
  std::string endpoint;

  // `configure` sets the CURVE options (make_curve_server or the raw ones).
  template <class Configure>
  Server(zmq::context_t& ctx, Configure&& configure) {
    SocketOptions o;
    o.recv_timeout_ms = 2000;
    socket = make_socket(ctx, zmq::socket_type::router, o);
    configure(socket);
    monitor = std::make_unique<HandshakeMonitor>(ctx, socket);
    endpoint = bind_endpoint(socket, "tcp://127.0.0.1:*");
  }
  // The payload frame of the next message, or nullopt after `timeout_ms`.
  std::optional<zmq::message_t> receive(int timeout_ms = 2000) {
    socket.set(zmq::sockopt::rcvtimeo, timeout_ms);
    std::vector<zmq::message_t> frames;
    if (!recv_frames(socket, frames) || frames.size() < 2) return std::nullopt;
    return std::move(frames[1]);
  }
};

struct CommandResult {
  int status = -1;
  std::string output;  // stdout and stderr
};

// Runs a shell command line and collects its output (stderr merged into
// stdout), through the tests' one launcher.
inline CommandResult run_command(const std::string& command) {
  const auto done = rmon::testing::run_to_completion("/bin/sh", {"-c", command + " 2>&1"});
  return {done.code, done.out};
}

// Single-quoted for the shell.
inline std::string sh_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace rmon::security::testing
