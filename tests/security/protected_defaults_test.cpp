// --security off's protected defaults on all three services: default
// endpoints on loopback, a bind reachable from other hosts refused without
// --insecure-listen (the real executables exit 2 naming the endpoint) and
// logged at WARN with it; with curve the defaults bind every address again.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "../support/child_process.hpp"
#include "../support/wait.hpp"
#include "monitor_config.hpp"
#include "pool_config.hpp"
#include "rmon/service/security_settings.hpp"
#include "task_config.hpp"

namespace rmon {
namespace {

using monitor::MonitorConfig;
using rmon::testing::ChildEnv;
using rmon::testing::ChildProcess;
using rmon::testing::kCapture;
using rmon::testing::run_to_completion;

// Settings as a service parses them: flags only (the tests' environment's
// RMON_* variables are not read: their names are made unique).
template <class Config>
Config parsed(std::vector<const char*> args) {
  Config c;
  Settings s("test", "test", "RMON_PROTECTED_DEFAULTS_TEST_");
  c.register_settings(s);
  args.insert(args.begin(), "test");
  EXPECT_FALSE(s.parse(static_cast<int>(args.size()), args.data()));
  c.resolve_defaults(s);
  return c;
}

const std::vector<const char*> kCurve = {"--security",          "curve", "--curve-secret-file", "s",
                                         "--curve-clients-dir", "c"};

TEST(LocalEndpoint, OnlyLoopbackIpcAndInprocStayOnThisHost) {
  for (const char* local :
       {"tcp://127.0.0.1:5555", "tcp://127.0.0.1:*", "tcp://127.1.2.3:1", "tcp://localhost:5555",
        "tcp://[::1]:5555", "tcp://lo:5555", "ipc:///tmp/x", "inproc://x"}) {
    EXPECT_TRUE(is_local_endpoint(local)) << local;
  }
  for (const char* exposed :
       {"tcp://*:5555", "tcp://0.0.0.0:5555", "tcp://10.0.0.1:5555", "tcp://eth0:5555",
        "tcp://[::]:5555", "tcp://128.0.0.1:5555", "tcp://127.0.0.1.example.com:1",
        "tcp://127.0.0.1", "udp://127.0.0.1:5555", "pgm://eth0;239.0.0.1:5555"}) {
    EXPECT_FALSE(is_local_endpoint(exposed)) << exposed;
  }
  EXPECT_EQ(default_bind(SecurityMode::kOff, 5555), "tcp://127.0.0.1:5555");
  EXPECT_EQ(default_bind(SecurityMode::kCurve, 5555), "tcp://*:5555");
}

TEST(ProtectedDefaults, EveryDefaultEndpointBindsLoopbackWithSecurityOff) {
  const auto m = parsed<MonitorConfig>({});
  EXPECT_EQ(m.heartbeat_endpoint, "tcp://127.0.0.1:5555");
  EXPECT_EQ(m.groups, (std::vector<std::string>{"task-queue=tcp://127.0.0.1:5556",
                                                "pool-manager=tcp://127.0.0.1:5557"}));
  EXPECT_EQ(m.ack_endpoint, "tcp://127.0.0.1:5558");
  EXPECT_EQ(m.control_endpoint, "tcp://127.0.0.1:5559");
  EXPECT_EQ(m.validate(), "");
  EXPECT_EQ(parsed<tq::TaskQueueConfig>({}).api_endpoint, "tcp://127.0.0.1:5560");
  EXPECT_EQ(parsed<pool::PoolConfig>({}).api_endpoint, "tcp://127.0.0.1:5561");
  EXPECT_EQ(parsed<tq::TaskQueueConfig>({}).validate(), "");
}

TEST(ProtectedDefaults, WithCurveTheDefaultsBindEveryAddressAndGivenEndpointsStay) {
  auto args = kCurve;
  args.insert(args.end(), {"--control-endpoint", "tcp://127.0.0.1:6000"});
  const auto m = parsed<MonitorConfig>(args);
  EXPECT_EQ(m.heartbeat_endpoint, "tcp://*:5555");
  EXPECT_EQ(m.groups,
            (std::vector<std::string>{"task-queue=tcp://*:5556", "pool-manager=tcp://*:5557"}));
  EXPECT_EQ(m.ack_endpoint, "tcp://*:5558");
  EXPECT_EQ(m.control_endpoint, "tcp://127.0.0.1:6000");
  EXPECT_EQ(m.validate(), "");
  EXPECT_EQ(parsed<pool::PoolConfig>(kCurve).api_endpoint, "tcp://*:5561");
}

TEST(ProtectedDefaults, ABindReachableFromOtherHostsNeedsInsecureListen) {
  const auto wildcard = parsed<MonitorConfig>({"--group", "task-queue=tcp://0.0.0.0:5556"});
  const std::string err = wildcard.validate();
  EXPECT_NE(err.find("--group task-queue=tcp://0.0.0.0:5556"), std::string::npos) << err;
  EXPECT_NE(err.find("--insecure-listen"), std::string::npos) << err;
  EXPECT_EQ(parsed<MonitorConfig>({"--group", "task-queue=tcp://0.0.0.0:5556", "--insecure-listen"})
                .validate(),
            "");
  // A connecting endpoint is not a bind.
  EXPECT_EQ(
      parsed<MonitorConfig>({"--heartbeat-endpoint", "connect:tcp://10.0.0.1:5555"}).validate(),
      "");

  const std::string api =
      parsed<tq::TaskQueueConfig>({"--api-endpoint", "tcp://*:5560"}).validate();
  EXPECT_NE(api.find("--api-endpoint tcp://*:5560"), std::string::npos) << api;
  EXPECT_EQ(
      parsed<pool::PoolConfig>({"--api-endpoint", "tcp://*:5561", "--insecure-listen"}).validate(),
      "");
}

// /metrics is plain HTTP whatever the mode: it listens on loopback by
// default, and with security off a wider address needs --insecure-listen like
// any other bind (with curve it is the operator's deliberate choice: compose
// publishes it on the host's loopback).
TEST(ProtectedDefaults, MetricsListenOnLoopbackAndAWiderAddressNeedsInsecureListen) {
  EXPECT_EQ(parsed<MonitorConfig>({}).metrics_address, "127.0.0.1:9464");
  EXPECT_EQ(parsed<MonitorConfig>(kCurve).metrics_address, "127.0.0.1:9464");
  EXPECT_EQ(parsed<tq::TaskQueueConfig>({}).metrics_address, "127.0.0.1:9465");
  EXPECT_EQ(parsed<pool::PoolConfig>(kCurve).metrics_address, "127.0.0.1:9466");
  // CivetWeb reads a comma as another listener, a bare or '+' port as every
  // address, 's'/'r' as TLS or a redirect; it has no IPv6 here. Only exactly
  // "127.x.y.z:port" or "localhost:port" stays on this host.
  for (const char* wide :
       {"0.0.0.0:9464", ":9464", "9464", "+9464", "10.1.2.3:9464", "[::]:9464", "[::1]:9464",
        "127.0.0.1:9464,9465", "127.0.0.1:9464,+9465", "127.0.0.1:9464, 9465", "127.0.0.1:9464s",
        "127.0.0.1:9464r", "lo:9464", "127.0.0.1:"}) {
    const std::string err = parsed<MonitorConfig>({"--metrics-address", wide}).validate();
    EXPECT_NE(err.find(std::string("--metrics-address ") + wide), std::string::npos) << err;
    EXPECT_NE(err.find("--insecure-listen"), std::string::npos) << err;
    EXPECT_EQ(parsed<MonitorConfig>({"--metrics-address", wide, "--insecure-listen"}).validate(),
              "");
  }
  for (const char* local : {"127.0.0.1:0", "localhost:9464", "127.0.0.2:9464", ""}) {
    EXPECT_EQ(parsed<MonitorConfig>({"--metrics-address", local}).validate(), "") << local;
  }
  const std::string tq =
      parsed<tq::TaskQueueConfig>({"--metrics-address", "0.0.0.0:9465"}).validate();
  EXPECT_NE(tq.find("--metrics-address 0.0.0.0:9465"), std::string::npos) << tq;
  auto curve = kCurve;
  curve.insert(curve.end(), {"--metrics-address", "0.0.0.0:9464"});
  EXPECT_EQ(parsed<MonitorConfig>(curve).validate(), "");
}

TEST(ProtectedDefaults, SecuritySettingsThemselvesAreChecked) {
  EXPECT_NE(parsed<MonitorConfig>({"--security", "on"}).validate().find("off or curve"),
            std::string::npos);
  EXPECT_NE(parsed<MonitorConfig>({"--security", "curve"}).validate().find("--curve-secret-file"),
            std::string::npos);
  auto connect = kCurve;
  connect.insert(connect.end(), {"--ack-endpoint", "connect:tcp://127.0.0.1:5558"});
  EXPECT_NE(parsed<MonitorConfig>(connect).validate().find("must bind"), std::string::npos);
  // A consumer service with curve needs its own key to the monitor and the
  // monitor's public key as well.
  const std::string tq = parsed<tq::TaskQueueConfig>(kCurve).validate();
  EXPECT_NE(tq.find("--monitor-curve-secret-file"), std::string::npos) << tq;
  auto full = kCurve;
  full.insert(full.end(), {"--monitor-curve-secret-file", "c.key_secret",
                           "--monitor-public-key-file", "m.key"});
  EXPECT_EQ(parsed<pool::PoolConfig>(full).validate(), "");
}

// The real executables, with none of the environment's RMON_ settings.
const ChildEnv kCleanEnv{{"RMON_"}, {}};

struct Exe {
  const char* path;
  std::vector<std::string> wildcard_args;  // one setting bound to a wildcard
};

TEST(ProtectedDefaultsProcess, EachServiceRefusesAWildcardBindWithoutInsecureListen) {
  const std::vector<Exe> exes = {
      {RMON_MONITOR_BIN, {"--heartbeat-endpoint", "tcp://*:*", "--data-dir", ""}},
      {RMON_TASK_QUEUE_BIN, {"--api-endpoint", "tcp://*:*"}},
      {RMON_POOL_MANAGER_BIN, {"--api-endpoint", "tcp://*:*"}}};
  for (const Exe& exe : exes) {
    auto args = exe.wildcard_args;
    args.insert(args.end(), {"--metrics-address", ""});
    const auto done = run_to_completion(exe.path, args, kCleanEnv, std::chrono::seconds(10));
    EXPECT_EQ(done.code, 2) << exe.path << "\n" << done.out << done.err;
    const std::string said = done.out + done.err;
    EXPECT_NE(said.find(exe.wildcard_args[0] + " tcp://*:*"), std::string::npos) << said;
    EXPECT_NE(said.find("--insecure-listen"), std::string::npos) << said;
  }
}

// Waits until the child has logged `line` or exited.
bool logged(ChildProcess& child, const std::string& line) {
  return rmon::testing::wait_until([&] {
    (void)child.wait(std::chrono::milliseconds(20));
    return (child.out() + child.err()).find(line) != std::string::npos || !child.running();
  });
}

TEST(ProtectedDefaultsProcess, WithInsecureListenTheMonitorStartsAndWarnsWhatAnyoneCouldDo) {
  ChildProcess child(
      RMON_MONITOR_BIN,
      {"--heartbeat-endpoint", "tcp://*:*", "--group",
       "task-queue=tcp://127.0.0.1:*,pool-manager=tcp://127.0.0.1:*", "--ack-endpoint",
       "tcp://127.0.0.1:*", "--control-endpoint", "tcp://127.0.0.1:*", "--metrics-address", "",
       "--data-dir", "", "--insecure-listen"},
      kCapture, ChildEnv{{"RMON_"}, {{"RMON_LOG_LEVEL", "info"}}});
  ASSERT_TRUE(logged(child, "runner-monitor started")) << child.out() << child.err();
  ASSERT_TRUE(child.running()) << child.out() << child.err();
  const std::string said = child.out() + child.err();
  EXPECT_NE(said.find("INSECURE: --heartbeat-endpoint tcp://*:*"), std::string::npos) << said;
  EXPECT_NE(said.find("forge heartbeats"), std::string::npos) << said;
  EXPECT_EQ(said.find("INSECURE: --ack-endpoint"), std::string::npos) << "loopback is not exposed";
  child.signal(SIGTERM);
  EXPECT_EQ(child.wait(std::chrono::seconds(10)).value_or(-1), 0);
}

// Whether `port` on 127.0.0.1 is free now (a loopback default needs it).
bool port_free(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

TEST(ProtectedDefaultsProcess, TheMonitorStartsOnItsLoopbackDefaults) {
  for (int port = 5555; port <= 5559; ++port) {
    if (!port_free(port)) GTEST_SKIP() << "port " << port << " is taken on this machine";
  }
  ChildProcess child(RMON_MONITOR_BIN, {"--metrics-address", "", "--data-dir", ""}, kCapture,
                     ChildEnv{{"RMON_"}, {{"RMON_LOG_LEVEL", "info"}}});
  ASSERT_TRUE(logged(child, "runner-monitor started")) << child.out() << child.err();
  ASSERT_TRUE(child.running()) << child.out() << child.err();
  const std::string said = child.out() + child.err();
  EXPECT_NE(said.find("heartbeat=tcp://127.0.0.1:5555"), std::string::npos) << said;
  EXPECT_NE(said.find("control=tcp://127.0.0.1:5559"), std::string::npos) << said;
  EXPECT_EQ(said.find("INSECURE"), std::string::npos) << said;
  child.signal(SIGTERM);
  EXPECT_EQ(child.wait(std::chrono::seconds(10)).value_or(-1), 0);
}

}  // namespace
}  // namespace rmon
