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
#include <csignal>
#include <filesystem>
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

// Stands in for the log's fsync: blocks while closed (step() lets one
// through), then succeeds (or fails with `failure`). Outlives the service
// that calls it.
class SyncGate {
 public:
  store::WalSyncer::SyncFn fn() {
    return [this] {
      std::unique_lock lock(mu_);
      ++waiting_;
      cv_.wait(lock, [&] { return open_ || permits_ > 0; });
      if (!open_) --permits_;
      --waiting_;
      ++syncs_;
      return failure_;
    };
  }
  void close() {
    std::lock_guard lock(mu_);
    open_ = false;
  }
  void step() {
    {
      std::lock_guard lock(mu_);
      ++permits_;
    }
    cv_.notify_all();
  }
  int syncs() {
    std::lock_guard lock(mu_);
    return syncs_;
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
  int permits_ = 0;
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
    c.events_endpoints = {"ipc://" + dir_.str() + "/no-events"};
    c.ack_endpoints = {"ipc://" + dir_.str() + "/no-acks"};
    c.monitor_endpoints = {"ipc://" + dir_.str() + "/no-monitor"};
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
  bool in_flight_gauge(int n) const {
    return tq_->render_metrics().find("tq_commits_in_flight " + std::to_string(n) + "\n") !=
           std::string::npos;
  }
  static std::string task_id(const std::string& reply) {
    auto m = MapReader::parse(reply);
    std::string id;
    if (m) (void)m->str("task_id", id);
    return id;
  }

  // In a death test's child: SIGTERM (how a service thread stops its
  // process) blocked in every thread, so that the child can look for a reply
  // after it. Exits 0 when stopped and unanswered, 3 when answered, 4 when
  // not stopped.
  [[noreturn]] void fail_an_fsync_and_look_for_a_reply() {
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, nullptr);
    start(config());
    auto a = client();
    gate_.close();
    send(*a, submit_request());
    (void)wait_until([&] { return gate_.waiting() == 1; });
    gate_.open("fdatasync test.db-wal: Input/output error");
    const timespec five{5, 0};
    if (sigtimedwait(&term, nullptr, &five) != SIGTERM) std::_Exit(4);
    if (reply(*a, 500)) std::_Exit(3);
    std::_Exit(0);
  }

  // Closes the gate and sends a submit from `c`: returns once it is
  // committed and its fsync waits at the gate.
  void submit_held(rmon::testing::ApiClient& c) {
    gate_.close();
    send(c, submit_request());
    ASSERT_TRUE(wait_until([&] { return commits() == 1 && gate_.waiting() == 1; }));
  }

  SyncGate gate_;  // outlives the service
  rmon::testing::TempDir dir_;
  zmq::context_t ctx_;
  std::unique_ptr<TaskQueueService> tq_;
};

TEST_F(CommitPipelineTest, AReplyWaitsForTheFsyncOfItsCommit) {
  start(config());
  auto a = client();
  submit_held(*a);
  EXPECT_FALSE(reply(*a, 300)) << "answered before its commit was on the disk";
  EXPECT_TRUE(wait_until([&] { return in_flight_gauge(1); })) << tq_->render_metrics();
  gate_.open();
  auto r = reply(*a, 5000);
  ASSERT_TRUE(r);
  EXPECT_FALSE(task_id(*r).empty()) << protocol::to_json(*r);
  EXPECT_TRUE(wait_until([&] { return in_flight_gauge(0); })) << tq_->render_metrics();
}

TEST_F(CommitPipelineTest, TheNextBatchIsCommittedWhileTheLastWaitsForItsFsync) {
  start(config());
  auto a = client();
  auto b = client();
  submit_held(*a);
  send(*b, submit_request());
  // b's batch is applied and committed while a's fsync is still pending.
  ASSERT_TRUE(wait_until([&] { return commits() == 2; }));
  EXPECT_FALSE(reply(*b, 300)) << "b answered before a's fsync (and its own)";
  // The fsync that was running covers a's commit, not b's (it began before).
  gate_.step();
  EXPECT_TRUE(reply(*a, 5000));
  ASSERT_TRUE(wait_until([&] { return gate_.syncs() == 1 && gate_.waiting() == 1; }));
  EXPECT_FALSE(reply(*b, 300)) << "b answered by an fsync that began before its commit";
  gate_.step();
  EXPECT_TRUE(reply(*b, 5000));
}

TEST_F(CommitPipelineTest, WithMaxInFlightZeroEachBatchWaitsForItsOwnFsync) {
  TaskQueueConfig c = config();
  c.max_in_flight = 0;
  start(c);
  auto a = client();
  auto b = client();
  submit_held(*a);
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
  submit_held(*a);
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
  EXPECT_EXIT(fail_an_fsync_and_look_for_a_reply(), ::testing::ExitedWithCode(0), "");
}

// The real fsync: the log SQLite names, synced; a log that went away is a
// failure, not a success.
TEST(WalSyncer, SyncsTheRealLogAndFailsWhenItIsGone) {
  rmon::testing::TempDir dir;
  store::Db db(dir.path() / "w.db", store::SyncMode::kFull);
  db.exec("CREATE TABLE t(x)");
  store::WalSyncer syncer(db);
  db.exec("INSERT INTO t VALUES(1)");
  const uint64_t t1 = syncer.commit();
  syncer.wait(t1);
  EXPECT_GE(syncer.durable(), t1);
  EXPECT_FALSE(syncer.failure());
  EXPECT_GE(syncer.stats().syncs.load(), 1u);
  std::filesystem::remove(dir.path() / "w.db-wal");
  db.exec("INSERT INTO t VALUES(2)");
  const uint64_t t2 = syncer.commit();
  syncer.wait(t2);
  EXPECT_LT(syncer.durable(), t2);
  ASSERT_TRUE(syncer.failure());
  EXPECT_NE(syncer.failure()->find("w.db-wal"), std::string::npos) << *syncer.failure();
}

}  // namespace
}  // namespace rmon::tq
