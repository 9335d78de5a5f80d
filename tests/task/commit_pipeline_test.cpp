// Pipelined group commit (--sync full), shown on the task-queue (the
// skeleton is the pool-manager's too): the log's fsync is replaced by a gate
// the test opens, so what leaves before and after it is seen exactly.
//   - a reply waits for the fsync of its batch's commit;
//   - the next batch is applied and committed while the last one waits;
//   - with --max-in-flight 0 each batch waits for its own fsync;
//   - stopping answers what was committed, once it is durable;
//   - a failed fsync answers nothing and stops the process.
// Every receive has a timeout; "nothing arrives" is checked over 300 ms.

#include <gtest/gtest.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "../support/api_client.hpp"
#include "../support/loopback.hpp"
#include "../support/temp_dir.hpp"
#include "../support/wait.hpp"
#include "rmon/protocol/msgmap.hpp"
#include "task_service.hpp"

namespace rmon::tq {
namespace {

using protocol::MapBuilder;
using protocol::MapReader;
using rmon::testing::wait_until;

// Stands in for the log's fsync: blocks while closed, then succeeds (or
// fails with `failure`). Outlives the service that calls it.
class SyncGate {
 public:
  store::WalSyncer::SyncFn fn() {
    return [this] {
      std::unique_lock lock(mu_);
      ++waiting_;
      cv_.wait(lock, [&] { return open_; });
      --waiting_;
      ++syncs_;
      return failure_;
    };
  }
  void close() {
    std::lock_guard lock(mu_);
    open_ = false;
  }
  void open(std::string failure = {}) {
    {
      std::lock_guard lock(mu_);
      open_ = true;
      failure_ = std::move(failure);
    }
    cv_.notify_all();
  }
  int waiting() {
    std::lock_guard lock(mu_);
    return waiting_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  int waiting_ = 0;
  int syncs_ = 0;
  std::string failure_;
};

std::string request(const std::string& op, const MapBuilder& fields = {}) {
  MapBuilder m;
  m.u64("v", 1).str("op", op).extend(fields);
  return m.finish();
}

std::string submit_request() {
  return request("submit", MapBuilder().raw("payload", MapBuilder().str("k", "v").finish()));
}

class CommitPipelineTest : public ::testing::Test {
 protected:
  TaskQueueConfig config() {
    auto c = rmon::testing::loopback_consumer_config<TaskQueueConfig>(dir_.str());
    c.sync = "full";
    // No monitor: its endpoints lead nowhere (connects only retry).
    c.events_endpoint = "ipc://" + dir_.str() + "/no-events";
    c.ack_endpoint = "ipc://" + dir_.str() + "/no-acks";
    c.monitor_endpoint = "ipc://" + dir_.str() + "/no-monitor";
    c.first_heartbeat_grace_ms = 86'400'000;
    c.log_sync_for_tests = gate_.fn();
    return c;
  }
  void start(TaskQueueConfig c) {
    tq_ = std::make_unique<TaskQueueService>(std::move(c), SystemClock::instance());
    tq_->start();
  }
  std::unique_ptr<rmon::testing::ApiClient> client() {
    return std::make_unique<rmon::testing::ApiClient>(ctx_, tq_->endpoints().api);
  }
  uint64_t commits() const { return tq_->service_stats().commits.load(); }
  // The reply to what `c` sent, if one comes within `ms`.
  static std::optional<std::string> reply(rmon::testing::ApiClient& c, int ms) {
    c.socket().set(zmq::sockopt::rcvtimeo, ms);
    zmq::message_t m;
    if (!c.socket().recv(m)) return std::nullopt;
    return m.to_string();
  }
  static void send(rmon::testing::ApiClient& c, const std::string& frame) {
    ASSERT_TRUE(send_frames(c.socket(), {frame}, zmq::send_flags::none));
  }
  static std::string task_id(const std::string& reply) {
    auto m = MapReader::parse(reply);
    std::string id;
    if (m) (void)m->str("task_id", id);
    return id;
  }

  SyncGate gate_;  // outlives the service
  rmon::testing::TempDir dir_;
  zmq::context_t ctx_;
  std::unique_ptr<TaskQueueService> tq_;
};

TEST_F(CommitPipelineTest, AReplyWaitsForTheFsyncOfItsCommit) {
  start(config());
  auto a = client();
  gate_.close();
  send(*a, submit_request());
  ASSERT_TRUE(wait_until([&] { return commits() == 1 && gate_.waiting() == 1; }));
  EXPECT_FALSE(reply(*a, 300)) << "answered before its commit was on the disk";
  EXPECT_NE(tq_->render_metrics().find("tq_commits_in_flight 1"), std::string::npos)
      << tq_->render_metrics();
  gate_.open();
  auto r = reply(*a, 5000);
  ASSERT_TRUE(r);
  EXPECT_FALSE(task_id(*r).empty()) << protocol::to_json(*r);
  EXPECT_NE(tq_->render_metrics().find("tq_commits_in_flight 0"), std::string::npos);
}

TEST_F(CommitPipelineTest, TheNextBatchIsCommittedWhileTheLastWaitsForItsFsync) {
  start(config());
  auto a = client();
  auto b = client();
  gate_.close();
  send(*a, submit_request());
  ASSERT_TRUE(wait_until([&] { return commits() == 1 && gate_.waiting() == 1; }));
  send(*b, submit_request());
  // b's batch is applied and committed while a's fsync is still pending.
  ASSERT_TRUE(wait_until([&] { return commits() == 2; }));
  EXPECT_FALSE(reply(*b, 300)) << "b answered before a's fsync (and its own)";
  gate_.open();
  auto ra = reply(*a, 5000);
  auto rb = reply(*b, 5000);
  ASSERT_TRUE(ra && rb);
  EXPECT_LT(task_id(*ra), task_id(*rb)) << "a's task was created first";
}

TEST_F(CommitPipelineTest, WithMaxInFlightZeroEachBatchWaitsForItsOwnFsync) {
  TaskQueueConfig c = config();
  c.max_in_flight = 0;
  start(c);
  auto a = client();
  auto b = client();
  gate_.close();
  send(*a, submit_request());
  ASSERT_TRUE(wait_until([&] { return commits() == 1 && gate_.waiting() == 1; }));
  send(*b, submit_request());
  EXPECT_FALSE(reply(*b, 300));
  EXPECT_EQ(commits(), 1u) << "the loop went on while a batch waited for its fsync";
  gate_.open();
  EXPECT_TRUE(reply(*a, 5000));
  EXPECT_TRUE(reply(*b, 5000));
  EXPECT_EQ(commits(), 2u);
}

TEST_F(CommitPipelineTest, StoppingAnswersWhatWasCommittedOnceItIsDurable) {
  start(config());
  auto a = client();
  gate_.close();
  send(*a, submit_request());
  ASSERT_TRUE(wait_until([&] { return commits() == 1 && gate_.waiting() == 1; }));
  std::thread stopper([&] { tq_.reset(); });
  EXPECT_FALSE(reply(*a, 300));
  gate_.open();
  auto r = reply(*a, 5000);
  stopper.join();
  ASSERT_TRUE(r) << "a committed request was never answered";
  const std::string id = task_id(*r);
  ASSERT_FALSE(id.empty());
  // And it is there after a restart.
  start(config());
  auto again = client();
  const std::string got = again->call("get", MapBuilder().str("task_id", id));
  EXPECT_NE(got.find("queued"), std::string::npos) << protocol::to_json(got);
}

TEST_F(CommitPipelineTest, AFailedFsyncAnswersNothingAndStopsTheProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        start(config());
        auto a = client();
        gate_.close();
        send(*a, submit_request());
        (void)wait_until([&] { return gate_.waiting() == 1; });
        gate_.open("fdatasync test.db-wal: Input/output error");
        if (reply(*a, 2000)) std::_Exit(3);  // answered: a lie
        std::_Exit(4);                       // not stopped
      },
      ::testing::KilledBySignal(SIGTERM), "");
}

}  // namespace
}  // namespace rmon::tq
