// rmon-event-sink's environment variables are its own (RMON_EVENT_SINK_*):
// a shell that exports the monitor's settings (RMON_GROUP, RMON_EVENTS...)
// must not configure the sink, least of all onto a service's group. The
// real executable as a child process, no monitor needed; and the settings
// prefix it is built on.

#include <gtest/gtest.h>

#include <stdlib.h>

#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>

#include "../support/child_process.hpp"
#include "../support/temp_dir.hpp"
#include "../support/wait.hpp"
#include "rmon/config.hpp"

namespace rmon {
namespace {

using namespace std::chrono_literals;
using rmon::testing::ChildProcess;
using rmon::testing::TempDir;
using rmon::testing::wait_until;

// Sets environment variables of this process for its lifetime, then puts
// back what was there: only for in-process Settings checks, while no other
// thread runs (a child gets its variables through ChildEnv instead).
using Vars = std::map<std::string, std::string>;
class ScopedEnv {
 public:
  explicit ScopedEnv(const Vars& vars) {
    for (const auto& [name, value] : vars) {
      const char* old = ::getenv(name.c_str());
      saved_.emplace(name, old ? std::optional<std::string>(old) : std::nullopt);
      ::setenv(name.c_str(), value.c_str(), 1);
    }
  }
  ~ScopedEnv() {
    for (const auto& [name, old] : saved_) {
      if (old) {
        ::setenv(name.c_str(), old->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

class EventSinkEnvTest : public ::testing::Test {
 protected:
  // The sink with `env` added to this process's environment.
  std::unique_ptr<ChildProcess> sink(const std::vector<std::string>& args, const Vars& env = {}) {
    return std::make_unique<ChildProcess>(RMON_EVENT_SINK_EXE, args, log_path.string(),
                                          rmon::testing::ChildEnv{{}, env});
  }
  std::string log() const {
    std::ifstream in(log_path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  // Endpoints nobody binds, in this test's folder: the sink connects and waits.
  std::vector<std::string> quiet_endpoints() const {
    return {"--events", "ipc://" + dir.str() + "/events", "--acks", "ipc://" + dir.str() + "/acks"};
  }

  TempDir dir;
  std::filesystem::path log_path = dir.path() / "sink.log";
};

TEST_F(EventSinkEnvTest, TheMonitorsVariablesDoNotConfigureIt) {
  // As in a shell that runs the monitor: its groups, a service's among them.
  auto p = sink(quiet_endpoints(), {{"RMON_GROUP", "task-queue"},
                                    {"RMON_EVENTS", "tcp://127.0.0.1:5556"},
                                    {"RMON_LOG_LEVEL", "error"}});
  ASSERT_TRUE(wait_until([&] { return log().find("event sink started") != std::string::npos; }))
      << "exit " << p->wait(0ms).value_or(-1) << ": " << log();
  EXPECT_NE(log().find("group=debug "), std::string::npos) << log();
  p->signal(SIGTERM);
  ASSERT_TRUE(p->wait(10s));
  EXPECT_EQ(*p->wait(0ms), 0);
}

TEST_F(EventSinkEnvTest, ItsOwnVariablesConfigureIt) {
  auto p = sink(quiet_endpoints(), {{"RMON_EVENT_SINK_GROUP", "mine"}});
  ASSERT_TRUE(wait_until([&] { return log().find("event sink started") != std::string::npos; }))
      << log();
  EXPECT_NE(log().find("group=mine "), std::string::npos) << log();
  p->signal(SIGTERM);
  ASSERT_TRUE(p->wait(10s));
}

TEST_F(EventSinkEnvTest, ItsOwnVariablesAreCheckedLikeItsFlags) {
  auto p = sink(quiet_endpoints(), {{"RMON_EVENT_SINK_GROUP", "task-queue"}});
  const auto status = p->wait(10s);
  ASSERT_TRUE(status) << "the sink did not refuse a service's group: " << log();
  EXPECT_EQ(*status, 2);
  EXPECT_NE(log().find("refusing to attach to group task-queue"), std::string::npos) << log();
}

TEST_F(EventSinkEnvTest, HelpNamesItsOwnVariables) {
  auto p = sink({"--help"});
  ASSERT_EQ(p->wait(10s), 0);
  EXPECT_NE(log().find("RMON_EVENT_SINK_GROUP"), std::string::npos) << log();
  EXPECT_NE(log().find("RMON_EVENT_SINK_LOG_LEVEL"), std::string::npos) << log();
  EXPECT_EQ(log().find("Env:RMON_GROUP"), std::string::npos) << log();
}

TEST(SettingsEnvPrefix, AToolReadsItsOwnPrefixAndNotTheServices) {
  EXPECT_EQ(Settings::env_name("some-flag", "RMON_TOOL_"), "RMON_TOOL_SOME_FLAG");
  EXPECT_EQ(Settings::env_name("some-flag"), "RMON_SOME_FLAG");
  ScopedEnv env(Vars{{"RMON_SOME_FLAG", "7"}, {"RMON_TOOL_OTHER_FLAG", "9"}});
  Settings s("tool", "test", "RMON_TOOL_");
  int some = 1, other = 2;
  s.add("some-flag", some, "read from RMON_TOOL_SOME_FLAG only");
  s.add("other-flag", other, "read from RMON_TOOL_OTHER_FLAG");
  const char* argv[] = {"tool"};
  ASSERT_EQ(s.parse(1, argv), std::nullopt);
  EXPECT_EQ(some, 1) << "a service's variable configured the tool";
  EXPECT_EQ(other, 9);
}

}  // namespace
}  // namespace rmon
