// pool-manager with the real runner-monitor in-process, over loopback
// sockets: a runner that goes silent loses its slot through the monitor's
// timeout event (acknowledged: nothing stays pending for the group), a runner
// that never heartbeats loses it after the first-heartbeat grace, and one the
// monitor knows keeps it. Runners that must not time out use long timeouts.

#include <gtest/gtest.h>

#include <memory>

#include "../support/api_client.hpp"
#include "../support/heartbeats.hpp"
#include "../support/loopback.hpp"
#include "../support/temp_dir.hpp"
#include "pool_service.hpp"
#include "pool_test_support.hpp"
#include "rmon/protocol/codec.hpp"
#include "rmon/zmq_util.hpp"
#include "service.hpp"

namespace rmon::pool {
namespace {

using protocol::MapBuilder;
using testing::acquire_fields;
using testing::read_pools;
using testing::read_reply;
using testing::reply_u64;
using testing::wait_until;

class PoolWithMonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    monitor::MonitorConfig mc = rmon::testing::loopback_monitor_config();
    mc.groups = {rmon::testing::loopback_group("pool-manager")};
    mc.redelivery_interval_ms = 1000;
    monitor_service = std::make_unique<monitor::MonitorService>(mc, SystemClock::instance());
    monitor_service->start();
    SocketOptions o;
    o.send_timeout_ms = 3000;
    pub = make_socket(ctx, zmq::socket_type::pub, o);
    pub.connect(monitor_service->endpoints().heartbeat);
  }
  void TearDown() override {
    client.reset();
    pool_service.reset();
    monitor_service->stop();
  }

  void start_pool(uint64_t grace_ms) {
    auto c = rmon::testing::loopback_consumer_config<PoolConfig>(dir.str());
    rmon::testing::connect_to_monitor(c, monitor_service->endpoints(), 0);
    c.pools = {"local=local-process:4"};
    c.first_heartbeat_grace_ms = grace_ms;
    c.tick_interval_ms = 50;
    pool_service = std::make_unique<PoolManagerService>(c, SystemClock::instance());
    pool_service->start();
    client = std::make_unique<rmon::testing::ApiClient>(ctx, pool_service->endpoints().api, 3000);
  }

  // Heartbeats until the monitor tracks `runners` runners.
  void heartbeat_until_tracked(const std::string& runner, uint64_t timeout_ms,
                               std::size_t runners) {
    protocol::Heartbeat h = rmon::testing::local_heartbeat(runner, "task-" + runner, 1, timeout_ms);
    ASSERT_TRUE(rmon::testing::heartbeat_until(
        pub, h, [&] { return monitor_service->table().size() >= runners; }));
  }
  std::string acquire(const std::string& runner) {
    return client->call("acquire", acquire_fields("local", runner, "task-" + runner, 1));
  }
  uint64_t stat(const char* key) { return reply_u64(client->call("stats"), key).value_or(~0ULL); }
  uint64_t pending_for_pool_manager() const {
    return monitor_service->stats().per_group[0].pending.load();
  }

  rmon::testing::TempDir dir;
  zmq::context_t ctx;
  zmq::socket_t pub;
  std::unique_ptr<monitor::MonitorService> monitor_service;
  std::unique_ptr<PoolManagerService> pool_service;
  std::unique_ptr<rmon::testing::ApiClient> client;
};

TEST_F(PoolWithMonitorTest, ASilentRunnersSlotIsReleasedByItsTimeoutEventWhichIsAcknowledged) {
  start_pool(600'000);  // the grace never interferes here
  ASSERT_EQ(read_reply(acquire("alive")).slot, 0u);
  ASSERT_EQ(read_reply(acquire("silent")).slot, 1u);
  heartbeat_until_tracked("alive", 600'000, 1);
  heartbeat_until_tracked("silent", 300, 2);
  // "silent" stops now; its timeout (300 ms) produces one event.
  ASSERT_TRUE(wait_until([&] { return stat("released_by_timeout") == 1; }));
  EXPECT_EQ(stat("events_applied"), 1u);
  const auto pools = read_pools(client->call("status"));
  ASSERT_EQ(pools.size(), 1u);
  ASSERT_EQ(pools[0].holders.size(), 1u);
  EXPECT_EQ(pools[0].holders[0].runner_id, "alive");
  // Acknowledged after commit: the monitor holds nothing for the group.
  ASSERT_TRUE(wait_until([&] {
    return monitor_service->stats().per_group[0].acks.load() == 1 &&
           pending_for_pool_manager() == 0;
  }));
  // The dead attempt cannot take a slot again.
  EXPECT_EQ(read_reply(acquire("silent")).error, "stale_attempt");
}

TEST_F(PoolWithMonitorTest, ARunnerThatNeverHeartbeatsLosesItsSlotAfterTheGrace) {
  start_pool(300);
  // "known" reaches the monitor before it acquires, so every check sees it.
  heartbeat_until_tracked("known", 600'000, 1);
  ASSERT_EQ(read_reply(acquire("known")).slot, 0u);
  ASSERT_EQ(read_reply(acquire("ghost")).slot, 1u);
  ASSERT_TRUE(wait_until([&] { return stat("reconciled") == 1; }));
  ASSERT_TRUE(wait_until([&] {
    return pool_service->service_stats().verdicts[static_cast<int>(Verdict::kAlive)].load() >= 1;
  }));
  EXPECT_EQ(stat("released_by_timeout"), 1u);
  const auto pools = read_pools(client->call("status"));
  ASSERT_EQ(pools.size(), 1u);
  ASSERT_EQ(pools[0].holders.size(), 1u);
  EXPECT_EQ(pools[0].holders[0].runner_id, "known");
  EXPECT_EQ(read_reply(acquire("next")).slot, 1u);
}

}  // namespace
}  // namespace rmon::pool
