// pool-manager as a child process (the real executable) against a fake
// monitor on ipc:// sockets: SIGTERM exits 0 and keeps everything; kill -9 in
// the middle of a stream of acquires and events loses no answered acquire
// and no acknowledged event; a corrupt or unusable data folder exits 1.

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "../support/api_client.hpp"
#include "../support/child_process.hpp"
#include "../support/temp_dir.hpp"
#include "pool_test_support.hpp"
#include "rmon/protocol/codec.hpp"

namespace rmon::pool {
namespace {

using namespace std::chrono_literals;
using protocol::MapBuilder;
using rmon::testing::ApiClient;
using rmon::testing::ChildProcess;
using testing::acquire_fields;
using testing::read_reply;
using testing::timeout_event;
using testing::wait_until;

class PoolRestartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const SocketOptions o = rmon::testing::timeouts(3000);
    events = make_socket(ctx, zmq::socket_type::push, o);
    events.bind(ep("events"));
    acks = make_socket(ctx, zmq::socket_type::pull, o);
    acks.bind(ep("acks"));
  }
  std::string ep(const std::string& name) const { return "ipc://" + dir.str() + "/" + name; }
  std::string log_path() const { return dir.str() + "/pool-manager.log"; }
  std::unique_ptr<ChildProcess> run(std::vector<std::string> extra = {},
                                    const std::string& data_dir = "data") {
    std::vector<std::string> args{"--data-dir",
                                  dir.str() + "/" + data_dir,
                                  "--api-endpoint",
                                  ep("api"),
                                  "--events-endpoint",
                                  ep("events"),
                                  "--ack-endpoint",
                                  ep("acks"),
                                  "--monitor-endpoint",
                                  ep("monitor"),
                                  "--metrics-address",
                                  "",
                                  "--pool",
                                  "local=local-process:100000"};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<ChildProcess>(POOL_MANAGER_BIN, args, log_path());
  }
  std::unique_ptr<ChildProcess> start() {
    auto child = run();
    // Up once it answers. A fresh client per try: a late answer to a
    // request that timed out would otherwise be read as the next reply.
    EXPECT_TRUE(wait_until(
        [&] {
          client = std::make_unique<ApiClient>(ctx, ep("api"), 1000);
          return !client->call("stats").empty();
        },
        20s));
    return child;
  }
  std::string acquire(int i) {
    const std::string r = "r" + std::to_string(i);
    return client->call("acquire", acquire_fields("local", r, "t" + std::to_string(i), 1));
  }
  std::string log() const {
    std::ifstream in(log_path());
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  rmon::testing::TempDir dir;
  zmq::context_t ctx;
  zmq::socket_t events, acks;
  std::unique_ptr<ApiClient> client;
};

TEST_F(PoolRestartTest, SigtermExitsZeroAndEverythingIsStillThere) {
  auto child = start();
  for (int i = 0; i < 5; ++i) ASSERT_EQ(read_reply(acquire(i)).slot, static_cast<uint64_t>(i));
  ASSERT_TRUE(send_frames(events,
                          {protocol::encode_timeout_event(timeout_event("e1", "r1", "t1", 1))},
                          zmq::send_flags::none));
  zmq::message_t ack;
  ASSERT_TRUE(acks.recv(ack));
  const std::string status = client->call("status");
  const std::string stats = client->call("stats");
  child->signal(SIGTERM);
  EXPECT_EQ(child->wait(10s), 0);
  child = start();
  EXPECT_EQ(client->call("status"), status);
  EXPECT_EQ(client->call("stats"), stats);
  child->signal(SIGINT);
  EXPECT_EQ(child->wait(10s), 0);
}

TEST_F(PoolRestartTest, KillNineMidStreamLosesNoAnsweredAcquireNorAcknowledgedEvent) {
  auto child = start();
  std::map<int, uint64_t> answered;  // runner index -> slot
  std::set<std::string> acked;
  auto drain_acks = [&](int timeout_ms) {
    acks.set(zmq::sockopt::rcvtimeo, timeout_ms);
    zmq::message_t m;
    while (acks.recv(m)) {
      auto a = protocol::decode_ack(m.to_string_view());
      if (a) acked.insert(a->event_id);
    }
  };
  constexpr int kBeforeKill = 400;
  for (int i = 0; i <= kBeforeKill; ++i) {
    if (i == kBeforeKill) {
      // The last acquire and a last event are in flight when the process dies.
      const std::string r = "r" + std::to_string(i);
      ASSERT_TRUE(send_frames(client->socket(),
                              {MapBuilder()
                                   .u64("v", 1)
                                   .str("op", "acquire")
                                   .extend(acquire_fields("local", r, "t" + std::to_string(i), 1))
                                   .finish()},
                              zmq::send_flags::none));
      child->signal(SIGKILL);
      break;
    }
    const auto reply = read_reply(acquire(i));
    ASSERT_TRUE(reply.slot) << reply.json;
    answered[i] = *reply.slot;
    if (i % 10 == 9) {  // the monitor reports an earlier runner lost
      const int lost = i - 5;
      ASSERT_TRUE(send_frames(events,
                              {protocol::encode_timeout_event(timeout_event(
                                  "e" + std::to_string(lost), "r" + std::to_string(lost),
                                  "t" + std::to_string(lost), 1))},
                              zmq::send_flags::none));
    }
    drain_acks(0);
  }
  EXPECT_EQ(child->wait(10s), 128 + SIGKILL);
  drain_acks(200);
  ASSERT_GT(acked.size(), 10u);

  child = start();
  for (const auto& [i, slot] : answered) {
    const auto reply = read_reply(acquire(i));
    if (acked.count("e" + std::to_string(i))) {
      // Its release was committed before the ack: the attempt is fenced.
      EXPECT_EQ(reply.error, "stale_attempt") << i << " " << reply.json;
    } else if (i % 10 != 4) {
      // No event was ever sent for it: the same slot, still held.
      EXPECT_EQ(reply.slot, slot) << i << " " << reply.json;
    }
  }
  const auto events_applied = testing::reply_u64(client->call("stats"), "events_applied");
  ASSERT_TRUE(events_applied);
  EXPECT_GE(*events_applied, acked.size());
}

TEST_F(PoolRestartTest, CorruptOrUnusableDataFolderExitsOneWithAClearMessage) {
  std::filesystem::create_directories(dir.path() / "data");
  std::ofstream(dir.path() / "data" / "pool-manager.db") << "just text\n";
  auto child = run();
  EXPECT_EQ(child->wait(20s), 1);
  EXPECT_NE(log().find("is unusable: file is not a database"), std::string::npos) << log();

  std::ofstream(dir.path() / "file") << "x";
  child = run({}, "file/sub");
  EXPECT_EQ(child->wait(20s), 1);
  EXPECT_NE(log().find("cannot create data folder"), std::string::npos) << log();

  child = run({"--pool", "gpu=vm:2"});
  EXPECT_EQ(child->wait(20s), 2);
  EXPECT_NE(log().find("unknown type 'vm'"), std::string::npos) << log();
}

}  // namespace
}  // namespace rmon::pool
