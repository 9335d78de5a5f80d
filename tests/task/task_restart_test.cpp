// task-queue as a child process (the real executable) against a fake
// monitor on ipc:// sockets: after SIGTERM, and after kill -9 in the middle of
// a stream of requests and events, every answered submit and every
// acknowledged event is still there.

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "../support/api_client.hpp"
#include "../support/child_process.hpp"
#include "../support/temp_dir.hpp"
#include "../support/wait.hpp"
#include "rmon/protocol/codec.hpp"

namespace rmon::tq {
namespace {

using namespace std::chrono_literals;
using protocol::MapBuilder;
using protocol::MapReader;
using rmon::testing::ApiClient;
using rmon::testing::ChildProcess;
using rmon::testing::wait_until;

class TaskRestartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const SocketOptions o = rmon::testing::timeouts(3000);
    events_ = make_socket(ctx_, zmq::socket_type::push, o);
    events_.bind(ep("events"));
    acks_ = make_socket(ctx_, zmq::socket_type::pull, o);
    acks_.bind(ep("acks"));
  }
  std::string ep(const std::string& name) { return "ipc://" + dir_.str() + "/" + name; }
  std::unique_ptr<ChildProcess> start() {
    auto child = std::make_unique<ChildProcess>(
        TASK_QUEUE_BIN,
        std::vector<std::string>{"--data-dir", dir_.str() + "/data", "--api-endpoint", ep("api"),
                                 "--events-endpoint", ep("events"), "--ack-endpoint", ep("acks"),
                                 "--monitor-endpoint", ep("monitor"), "--metrics-address", "",
                                 "--backoff-base-ms", "1", "--backoff-cap-ms", "1"},
        dir_.str() + "/task-queue.log");
    client_ = std::make_unique<ApiClient>(ctx_, ep("api"), 3000);
    // Up once it answers.
    EXPECT_TRUE(wait_until([&] { return !client_->call("stats").empty(); }, 20s));
    return child;
  }
  std::string submit(ApiClient& c, int i) {
    const std::string reply =
        c.call("submit", MapBuilder().raw("payload", MapBuilder().u64("i", i).finish()));
    auto m = MapReader::parse(reply);
    std::string id;
    if (m) (void)m->str("task_id", id);
    return id;
  }
  std::string lease_one() {
    const std::string reply = client_->call("lease", MapBuilder().str("runner_id", "r"));
    auto m = MapReader::parse(reply);
    std::optional<MapReader> task;
    std::string id;
    if (m && m->opt_map("task", task).ok() && task) (void)task->str("task_id", id);
    return id;
  }
  std::string state_of(const std::string& id) {
    const std::string reply = client_->call("get", MapBuilder().str("task_id", id));
    auto m = MapReader::parse(reply);
    std::optional<MapReader> task;
    std::string state;
    if (m && m->opt_map("task", task).ok() && task) (void)task->str("state", state);
    return state;
  }
  void send_timeout(const std::string& task_id, const std::string& event_id) {
    protocol::TimeoutEvent ev;
    ev.event_id = event_id;
    ev.runner.runner_id = "r";
    ev.runner.task_id = task_id;
    ev.runner.attempt = 1;
    ev.runner.pool = "p";
    ASSERT_TRUE(send_frames(events_, {protocol::encode_timeout_event(ev)}, zmq::send_flags::none));
  }
  // Acks received so far (non-blocking drain).
  void drain_acks(std::set<std::string>& acked) {
    zmq::message_t m;
    while (acks_.recv(m, zmq::recv_flags::dontwait)) {
      auto a = protocol::decode_ack(m.to_string_view());
      ASSERT_TRUE(a.ok());
      EXPECT_EQ(a->group, "task-queue");
      acked.insert(a->event_id);
    }
  }

  rmon::testing::TempDir dir_;
  zmq::context_t ctx_;
  zmq::socket_t events_, acks_;
  std::unique_ptr<ApiClient> client_;
};

TEST_F(TaskRestartTest, SigtermKeepsEveryAnsweredSubmitAndAcknowledgedEvent) {
  auto child = start();
  std::vector<std::string> ids;
  for (int i = 0; i < 50; ++i) ids.push_back(submit(*client_, i));
  std::vector<std::string> leased;
  for (int i = 0; i < 10; ++i) leased.push_back(lease_one());
  for (int i = 0; i < 5; ++i) send_timeout(leased[i], "ev-" + std::to_string(i));
  std::set<std::string> acked;
  ASSERT_TRUE(wait_until([&] {
    drain_acks(acked);
    return acked.size() == 5;
  }));
  child->signal(SIGTERM);
  ASSERT_EQ(child->wait(15s), 0);

  child = start();
  for (const auto& id : ids) EXPECT_NE(state_of(id), "") << id;
  for (int i = 0; i < 5; ++i) EXPECT_EQ(state_of(leased[i]), "queued") << leased[i];
  for (int i = 5; i < 10; ++i) EXPECT_EQ(state_of(leased[i]), "leased") << leased[i];
  // Redelivered events after the restart change nothing and are acked again.
  send_timeout(leased[0], "ev-0");
  acked.clear();
  ASSERT_TRUE(wait_until([&] {
    drain_acks(acked);
    return acked.count("ev-0") == 1;
  }));
  const std::string reply = client_->call("stats");
  auto m = MapReader::parse(reply);
  uint64_t reassigned = 0, ignored = 0;
  ASSERT_TRUE(m->u64("reassigned", reassigned).ok() && m->u64("events_ignored", ignored).ok());
  EXPECT_EQ(reassigned, 5u);
  EXPECT_EQ(ignored, 1u);
  child->signal(SIGTERM);
  EXPECT_EQ(child->wait(15s), 0);
}

TEST_F(TaskRestartTest, KillNineMidStreamLosesNothingAnsweredOrAcknowledged) {
  auto child = start();
  // Leased tasks whose timeout events are in flight when the process dies.
  std::vector<std::string> leased;
  for (int i = 0; i < 40; ++i) (void)submit(*client_, i);
  for (int i = 0; i < 40; ++i) leased.push_back(lease_one());

  std::atomic<bool> stop{false};
  std::vector<std::string> answered;  // read only after the writer stops
  std::atomic<std::size_t> answered_n{0};
  std::thread writer([&] {
    ApiClient c(ctx_, ep("api"), 1000);
    for (int i = 0; !stop.load(); ++i) {
      const std::string id = submit(c, 1000 + i);
      if (id.empty()) break;  // the process is gone
      answered.push_back(id);
      answered_n.store(answered.size());
    }
  });
  std::set<std::string> acked;
  for (int i = 0; i < 40; ++i) {
    send_timeout(leased[i], "ev-" + std::to_string(i));
    drain_acks(acked);
  }
  ASSERT_TRUE(wait_until([&] {
    drain_acks(acked);
    return acked.size() >= 10 && answered_n.load() >= 100;
  }));
  child->signal(SIGKILL);
  EXPECT_EQ(child->wait(10s), 128 + SIGKILL);
  stop = true;
  writer.join();
  drain_acks(acked);

  child = start();
  for (const auto& id : answered) ASSERT_NE(state_of(id), "") << "answered submit lost: " << id;
  std::size_t checked = 0;
  for (int i = 0; i < 40; ++i) {
    if (acked.count("ev-" + std::to_string(i)) == 0) continue;
    EXPECT_EQ(state_of(leased[i]), "queued") << "acknowledged event lost: ev-" << i;
    ++checked;
  }
  EXPECT_EQ(checked, acked.size());
  std::printf("kill -9 staged: %zu answered submits and %zu acknowledged events, all present\n",
              answered.size(), acked.size());
  child->signal(SIGTERM);
  EXPECT_EQ(child->wait(15s), 0);
}

// Start-up failures: a clear message and exit status 1, nothing served.
TEST_F(TaskRestartTest, CorruptUnwritableOrBusyDataFolderFailsAtStart) {
  auto run = [&](const std::string& data, const std::string& log) {
    ChildProcess c(TASK_QUEUE_BIN,
                   {"--data-dir", data, "--api-endpoint", ep("api2"), "--events-endpoint",
                    ep("events"), "--ack-endpoint", ep("acks"), "--monitor-endpoint", ep("monitor"),
                    "--metrics-address", ""},
                   log);
    return c.wait(20s);
  };
  auto log_has = [](const std::string& path, const std::string& text) {
    std::ifstream f(path);
    const std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    return all.find(text) != std::string::npos;
  };
  const std::string corrupt = dir_.str() + "/corrupt";
  std::filesystem::create_directories(corrupt);
  std::ofstream(corrupt + "/task-queue.db") << std::string(8192, 'x');
  EXPECT_EQ(run(corrupt, dir_.str() + "/corrupt.log"), 1);
  EXPECT_TRUE(log_has(dir_.str() + "/corrupt.log", "is unusable"));

  const std::string file = dir_.str() + "/plain-file";
  std::ofstream(file) << "not a folder";
  EXPECT_EQ(run(file, dir_.str() + "/file.log"), 1);
  EXPECT_TRUE(log_has(dir_.str() + "/file.log", "data folder"));

  auto first = start();  // holds dir_/data
  EXPECT_EQ(run(dir_.str() + "/data", dir_.str() + "/busy.log"), 1);
  EXPECT_TRUE(log_has(dir_.str() + "/busy.log", "in use by another process"));
  first->signal(SIGTERM);
  EXPECT_EQ(first->wait(15s), 0);
}

}  // namespace
}  // namespace rmon::tq
