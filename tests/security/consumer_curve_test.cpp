// The task-queue and the pool-manager with --security curve, in process on
// 127.0.0.1 beside a CURVE runner-monitor, with the keys `rmon-keygen init`
// writes (keygen::init_stack) and the C++ runner library as the clients:
// what each role may do on each API, the complete/fail fence on the runner
// the task is leased to, the services as CURVE clients of the monitor (a
// silent runner's task comes back), and a refused client that recovers once
// its key is enrolled.

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "../support/loopback.hpp"
#include "../support/temp_dir.hpp"
#include "../support/wait.hpp"
#include "keygen/stack_keys.hpp"
#include "pool_service.hpp"
#include "rmon/protocol/msgmap.hpp"
#include "rmon/runner/heartbeat_publisher.hpp"
#include "rmon/runner/pool_manager_client.hpp"
#include "rmon/runner/task_queue_client.hpp"
#include "rmon/security/certificate.hpp"
#include "rmon/security/client.hpp"
#include "service.hpp"
#include "task_service.hpp"

namespace rmon {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using rmon::testing::wait_until;
using runner::HeartbeatOptions;
using runner::HeartbeatPublisher;
using runner::PoolManagerClient;
using runner::TaskQueueClient;
using security::ClientKeys;
using security::ClientSecurity;

constexpr int kTimeoutMs = 3000;

class CurveConsumers : public ::testing::Test {
 protected:
  CurveConsumers() {
    const auto written = keygen::init_stack(keys(), {"eu-", security::Overwrite::kNo});
    EXPECT_TRUE(written.ok()) << written.error().message;
    // A second runner key, for ids starting with "us-", enrolled at both APIs.
    const auto us =
        keygen::write_client_key(keys() / "clients", "runner-us", security::Role::kRunner, "us-",
                                 "", security::Overwrite::kNo);
    EXPECT_TRUE(us.ok()) << us.error().message;
    for (const char* service : {"task-queue", "pool-manager"}) {
      fs::copy_file(keys() / "clients" / "runner-us.key",
                    keys() / service / "clients" / "runner-us.key");
    }

    monitor::MonitorConfig mc = rmon::testing::loopback_monitor_config();
    mc.security.security = "curve";
    mc.security.curve_secret_file = (keys() / "runner-monitor/runner-monitor.key_secret").string();
    mc.security.curve_clients_dir = (keys() / "runner-monitor/clients").string();
    monitor_ = std::make_unique<monitor::MonitorService>(mc, SystemClock::instance());
    monitor_->start();

    tq_ = std::make_unique<tq::TaskQueueService>(consumer<tq::TaskQueueConfig>("task-queue", 0),
                                                 SystemClock::instance());
    tq_->start();
    auto pc = consumer<pool::PoolConfig>("pool-manager", 1);
    pc.pools = {"local=local-process:4"};
    pm_ = std::make_unique<pool::PoolManagerService>(pc, SystemClock::instance());
    pm_->start();
  }
  ~CurveConsumers() override {
    pm_->stop();
    tq_->stop();
    monitor_->stop();
  }

  fs::path keys() const { return dir_.path() / "keys"; }

  template <class Config>
  Config consumer(const std::string& service, std::size_t group) {
    fs::create_directories(dir_.path() / service);
    auto c = rmon::testing::loopback_consumer_config<Config>((dir_.path() / service).string());
    rmon::testing::connect_to_monitor(c, monitor_->endpoints(), group);
    c.security.security = "curve";
    c.security.curve_secret_file = (keys() / service / (service + ".key_secret")).string();
    c.security.curve_clients_dir = (keys() / service / "clients").string();
    c.monitor_curve_secret_file =
        (keys() / service / ("consumer-" + service + ".key_secret")).string();
    c.monitor_public_key_file = (keys() / service / "runner-monitor.key").string();
    c.first_heartbeat_grace_ms = 60'000;
    EXPECT_EQ(c.validate(), "");
    return c;
  }

  // A client's keys for `service`, from its secret file under keys/clients.
  std::optional<ClientKeys> key(const std::string& name, std::string_view service) const {
    ClientSecurity s{"curve", (keys() / "clients" / (name + ".key_secret")).string(),
                     (keys() / "servers").string()};
    auto k = s.keys_for(service);
    EXPECT_TRUE(k.ok()) << k.error().message;
    return k.ok() ? k.value() : std::nullopt;
  }
  TaskQueueClient tasks(const std::string& name) {
    return TaskQueueClient(ctx_, tq_->endpoints().api, kTimeoutMs,
                           key(name, security::kTaskQueueService));
  }
  PoolManagerClient pools(const std::string& name) {
    return PoolManagerClient(ctx_, pm_->endpoints().api, kTimeoutMs,
                             key(name, security::kPoolManagerService));
  }
  std::string submit() {
    auto r = tasks("submitter").submit(protocol::MapBuilder().str("job", "x").finish());
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    return r.ok() ? r.value().task_id : std::string();
  }

  rmon::testing::TempDir dir_;
  zmq::context_t ctx_;
  std::unique_ptr<monitor::MonitorService> monitor_;
  std::unique_ptr<tq::TaskQueueService> tq_;
  std::unique_ptr<pool::PoolManagerService> pm_;
};

TEST_F(CurveConsumers, ARunnerLeasesHoldsASlotAndCompletesWithinItsPrefix) {
  const std::string id = submit();
  auto runner = tasks("runner");
  auto leased = runner.lease("eu-1", std::nullopt);
  ASSERT_TRUE(leased.ok()) << leased.error().to_string();
  ASSERT_TRUE(leased.value().has_value());
  EXPECT_EQ(leased.value()->task_id, id);
  auto slot = pools("runner").acquire("local", "eu-1", id, leased.value()->attempt);
  ASSERT_TRUE(slot.ok()) << slot.error().to_string();
  auto done = runner.complete(id, leased.value()->attempt);
  EXPECT_TRUE(done.ok()) << done.error().to_string();
  auto released = pools("runner").release("eu-1");
  ASSERT_TRUE(released.ok()) << released.error().to_string();
  EXPECT_TRUE(released.value());
}

TEST_F(CurveConsumers, ARunnerMayNotActForAnotherPrefix) {
  const std::string id = submit();
  auto eu = tasks("runner");
  auto us = tasks("runner-us");

  auto wrong_lease = eu.lease("us-1", std::nullopt);
  ASSERT_FALSE(wrong_lease.ok());
  EXPECT_EQ(wrong_lease.error().code, "forbidden");

  auto leased = us.lease("us-1", std::nullopt);
  ASSERT_TRUE(leased.ok() && leased.value()) << "lease by us-1";
  const uint64_t attempt = leased.value()->attempt;
  // The task is leased to us-1: the eu- runner may neither complete nor fail it.
  auto complete = eu.complete(id, attempt);
  ASSERT_FALSE(complete.ok());
  EXPECT_EQ(complete.error().code, "forbidden");
  auto fail = eu.fail(id, attempt, "not mine");
  ASSERT_FALSE(fail.ok());
  EXPECT_EQ(fail.error().code, "forbidden");
  auto slot = pools("runner").acquire("local", "us-1", id, attempt);
  ASSERT_FALSE(slot.ok());
  EXPECT_EQ(slot.error().code, "forbidden");

  // Its own runner completes it; a late complete of a task leased to nobody
  // gets the service's answer, not forbidden.
  ASSERT_TRUE(us.complete(id, attempt).ok());
  auto late = eu.complete(id, attempt);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, "conflict");

  const std::string metrics = tq_->render_metrics();
  EXPECT_NE(
      metrics.find(
          R"(rmon_authz_denied_total{endpoint="task-queue",op="lease",reason="runner_prefix"} 1)"),
      std::string::npos)
      << metrics;
  EXPECT_NE(
      metrics.find(
          R"(rmon_authz_denied_total{endpoint="task-queue",op="complete",reason="runner_prefix"} 1)"),
      std::string::npos);
}

TEST_F(CurveConsumers, RolesKeepToTheirOps) {
  (void)submit();
  auto reader = tasks("reader");
  EXPECT_TRUE(reader.stats().ok());
  auto submitted = reader.submit(protocol::MapBuilder().str("job", "x").finish());
  ASSERT_FALSE(submitted.ok());
  EXPECT_EQ(submitted.error().code, "forbidden");
  auto runner_stats = tasks("runner").stats();
  ASSERT_FALSE(runner_stats.ok());
  EXPECT_EQ(runner_stats.error().code, "forbidden");
  EXPECT_TRUE(pools("reader").status().ok());
  auto reader_acquire = pools("reader").acquire("local", "eu-1", "t", 1);
  ASSERT_FALSE(reader_acquire.ok());
  EXPECT_EQ(reader_acquire.error().code, "forbidden");
  EXPECT_TRUE(tasks("admin").cancel(submit()).ok());
}

TEST_F(CurveConsumers, ASilentRunnersTaskAndSlotComeBackThroughCurveEvents) {
  const std::string id = submit();
  auto runner = tasks("runner");
  auto leased = runner.lease("eu-7", std::nullopt);
  ASSERT_TRUE(leased.ok() && leased.value());
  ASSERT_TRUE(pools("runner").acquire("local", "eu-7", id, 1).ok());
  HeartbeatOptions ho;
  ho.endpoint = monitor_->endpoints().heartbeat;
  ho.runner.runner_id = "eu-7";
  ho.runner.task_id = id;
  ho.runner.attempt = 1;
  ho.runner.pool = "local";
  ho.runner.pool_type = protocol::PoolType::kLocalProcess;
  ho.runner.pid = 4242;
  ho.interval_ms = 50;
  ho.timeout_ms = 300;
  ho.curve = key("runner", security::kMonitorService);
  {
    HeartbeatPublisher hb(ctx_, ho);
    ASSERT_TRUE(wait_until([&] { return monitor_->stats().heartbeat_frames.load() >= 2; }));
    EXPECT_EQ(monitor_->stats().rejected_total(), 0u);
    hb.abandon();  // as a crash would
  }
  // The monitor's event reaches both consumers over CURVE and is acknowledged.
  auto reader = tasks("reader");
  EXPECT_TRUE(wait_until([&] {
    auto t = reader.get(id);
    return t.ok() && t.value().state == "queued" && t.value().attempt == 1;
  })) << "task not requeued";
  EXPECT_TRUE(wait_until([&] {
    auto s = pools("reader").status();
    return s.ok() && !s.value().empty() && s.value()[0].in_use == 0;
  })) << "slot not freed";
  // Both groups acknowledged over their CURVE ack connections.
  EXPECT_TRUE(wait_until([&] {
    const auto& g = monitor_->stats().per_group;
    return g[0].acks.load() == 1 && g[1].acks.load() == 1 && g[0].pending.load() == 0 &&
           g[1].pending.load() == 0;
  }));
}

TEST_F(CurveConsumers, AnUnenrolledClientIsToldAndGetsInOnceEnrolled) {
  const auto late = keygen::write_client_key(
      keys() / "clients", "late-reader", security::Role::kReader, "", "", security::Overwrite::kNo);
  ASSERT_TRUE(late.ok()) << late.error().message;
  auto client = tasks("late-reader");
  auto refused = client.stats();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "not_enrolled") << refused.error().to_string();
  const auto own = security::load_key_pair(keys() / "clients" / "late-reader.key_secret");
  ASSERT_TRUE(own.ok());
  EXPECT_NE(refused.error().detail.find(own.value().public_key.z85()), std::string::npos)
      << refused.error().detail;

  // Enrolled: the keyring reloads on the folder's change, and the client's
  // next try after its backoff is let in, with no restart of either side.
  fs::copy_file(keys() / "clients" / "late-reader.key",
                keys() / "task-queue" / "clients" / "late-reader.key");
  EXPECT_TRUE(wait_until([&] { return client.stats().ok(); }, 15s));
}

TEST_F(CurveConsumers, AServiceWithoutItsMonitorKeysDoesNotStart) {
  auto c = consumer<tq::TaskQueueConfig>("task-queue", 0);
  c.data_dir = (dir_.path() / "second").string();
  fs::create_directories(c.data_dir);
  c.monitor_public_key_file.clear();
  EXPECT_NE(c.validate().find("--monitor-public-key-file"), std::string::npos) << c.validate();
  c.monitor_public_key_file = (keys() / "missing.key").string();
  try {
    tq::TaskQueueService service(c, SystemClock::instance());
    ADD_FAILURE() << "started without the monitor's key";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("missing.key"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace rmon
