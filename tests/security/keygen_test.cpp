// rmon-keygen: a whole stack's keys that work together, and the command line.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "keygen/stack_keys.hpp"
#include "rmon/security/keyring.hpp"
#include "security_test_support.hpp"

namespace rmon::security {
namespace {

namespace fs = std::filesystem;
using testing::Client;
using testing::run_command;
using testing::Server;
using testing::sh_quote;

std::vector<std::string> names_in(const fs::path& clients_dir) {
  return Keyring(clients_dir).snapshot()->names();
}

TEST(KeygenInit, EachServiceGetsItsFolderAndEveryClientItsPair) {
  rmon::testing::TempDir dir;
  auto files = keygen::init_stack(dir.path(), {"sim-", Overwrite::kNo});
  ASSERT_TRUE(files.ok()) << files.error().message;
  const fs::path d = dir.path();
  using V = std::vector<std::string>;
  EXPECT_EQ(names_in(d / "runner-monitor/clients"),
            (V{"admin", "consumer-pool-manager", "consumer-task-queue", "reader", "runner"}));
  EXPECT_EQ(names_in(d / "task-queue/clients"), (V{"admin", "reader", "runner", "submitter"}));
  EXPECT_EQ(names_in(d / "pool-manager/clients"), (V{"admin", "reader", "runner"}));
  for (const fs::path& f : files.value()) {
    struct stat st {};
    ASSERT_EQ(::stat(f.c_str(), &st), 0) << f;
    EXPECT_EQ(st.st_mode & 0777, f.extension() == ".key_secret" ? 0600u : 0644u) << f;
  }
  const PublicKey monitor =
      load_key_pair(d / "runner-monitor/runner-monitor.key_secret")->public_key;
  EXPECT_EQ(load_public_key(d / "task-queue/runner-monitor.key").value(), monitor);
  EXPECT_EQ(load_public_key(d / "pool-manager/runner-monitor.key").value(), monitor);
  EXPECT_EQ(load_public_key(d / "servers/runner-monitor.key").value(), monitor);
  const auto runner = Keyring(d / "runner-monitor/clients").snapshot();
  const auto runner_key = load_key_pair(d / "clients/runner.key_secret");
  EXPECT_EQ(runner->find(runner_key->public_key.z85())->runner_prefix, "sim-");

  // Without --force nothing is replaced; with it every key is new.
  const auto again = keygen::init_stack(d, {"", Overwrite::kNo});
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message.find("exists"), std::string::npos);
  EXPECT_EQ(load_key_pair(d / "runner-monitor/runner-monitor.key_secret")->public_key, monitor);
  ASSERT_TRUE(keygen::init_stack(d, {"", Overwrite::kYes}).ok());
  EXPECT_FALSE(load_key_pair(d / "runner-monitor/runner-monitor.key_secret")->public_key ==
               monitor);
}

// The task-queue reaches the monitor with the files init wrote for it.
TEST(KeygenInit, TheTaskQueuesKeysGetItIntoTheMonitor) {
  rmon::testing::TempDir dir;
  ASSERT_TRUE(keygen::init_stack(dir.path(), {}).ok());
  const fs::path mon = dir.path() / "runner-monitor", tq = dir.path() / "task-queue";
  Keyring keyring(mon / "clients");
  zmq::context_t ctx;
  ZapHandler zap(ctx, keyring);
  const auto server_keys = load_key_pair(mon / "runner-monitor.key_secret");
  ASSERT_TRUE(server_keys.ok());
  Server control(ctx, [&](zmq::socket_t& s) {
    make_curve_server(s, zap, server_keys->secret_key, Domain::control());
  });
  auto keys = load_client_keys(tq / "consumer-task-queue.key_secret", tq / "runner-monitor.key");
  ASSERT_TRUE(keys.ok()) << keys.error().message;
  Client client(ctx, control.endpoint, &keys.value());
  client.socket.send(zmq::str_buffer("lookup"), zmq::send_flags::none);
  auto msg = control.receive();
  ASSERT_TRUE(msg);
  MessageAuthorizer authz(keyring, Domain::control());
  const auto check = authz.check(*msg, "lookup");
  EXPECT_TRUE(check.decision.allowed) << check.decision.detail;
  EXPECT_EQ(check.principal->name, "consumer-task-queue");
  EXPECT_EQ(authz.check(*msg, "remove").decision.reason, DenyReason::kOp);
}

const std::string kKeygen = RMON_KEYGEN_EXE;

TEST(KeygenCli, WritesOnePairPrintsItsPublicKeyAndRefusesToOverwrite) {
  rmon::testing::TempDir dir;
  const std::string d = sh_quote(dir.str());
  const auto made = run_command(kKeygen + " eu1 --role runner --runner-prefix eu1- --dir " + d);
  ASSERT_EQ(made.status, 0) << made.output;
  const auto cert = load_certificate(public_file(dir.path(), "eu1"));
  ASSERT_TRUE(cert.ok());
  EXPECT_EQ(*cert->metadata_value("runner_prefix"), "eu1-");

  const auto printed =
      run_command(kKeygen + " --print-public " + sh_quote(secret_file(dir.path(), "eu1").string()));
  EXPECT_EQ(printed.status, 0);
  EXPECT_EQ(printed.output, cert->public_key.z85() + "\n");

  const auto again = run_command(kKeygen + " eu1 --role runner --runner-prefix eu1- --dir " + d);
  EXPECT_EQ(again.status, 1);
  EXPECT_NE(again.output.find("exists"), std::string::npos) << again.output;
  EXPECT_EQ(load_public_key(public_file(dir.path(), "eu1")).value(), cert->public_key);
  EXPECT_EQ(run_command(kKeygen + " eu1 --role runner --runner-prefix x --force --dir " + d).status,
            0);
  EXPECT_FALSE(load_public_key(public_file(dir.path(), "eu1")).value() == cert->public_key);
}

TEST(KeygenCli, UsageErrorsExitTwo) {
  rmon::testing::TempDir dir;
  const std::string d = " --dir " + sh_quote(dir.str());
  for (const std::string args :
       {"r --role runner", "c --role consumer", "a --role admin --group g", "a --role root",
        "a --runner-prefix p --role reader", "../a --role reader", ""}) {
    const auto r = run_command(kKeygen + " " + args + d);
    // A bad key name is refused while writing (1); the rest is usage (2).
    EXPECT_EQ(r.status, args.rfind("../", 0) == 0 ? 1 : 2) << args << ": " << r.output;
  }
  EXPECT_TRUE(fs::is_empty(dir.path()));
  EXPECT_EQ(run_command(kKeygen + " --version").output.rfind("rmon-keygen ", 0), 0u);
}

TEST(KeygenCli, InitWritesAStackAndSaysHowToUseIt) {
  rmon::testing::TempDir dir;
  const auto r = run_command(kKeygen + " init " + sh_quote((dir.path() / "keys").string()));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("--curve-clients-dir"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("covers every runner id"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir.path() / "keys/pool-manager/consumer-pool-manager.key_secret"));
  EXPECT_EQ(run_command(kKeygen + " init " + sh_quote((dir.path() / "keys").string())).status, 1);
}

}  // namespace
}  // namespace rmon::security
