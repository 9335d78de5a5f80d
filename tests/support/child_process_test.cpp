// The test launcher itself (child_process.hpp), on /bin/sh: what the child
// gets (arguments, environment, a log file or pipes) and what the parent gets
// back (status, output, a kill past the deadline).

#include "child_process.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

#include "temp_dir.hpp"

namespace rmon::testing {
namespace {

using namespace std::chrono_literals;

Completed sh(const std::string& script, const ChildEnv& env = {},
             std::chrono::milliseconds limit = 15s) {
  return run_to_completion("/bin/sh", {"-c", script}, env, limit);
}

TEST(ChildProcess, CapturesStdoutAndStderrApartAndTheExitCode) {
  const Completed r = sh("printf 'out %s' \"$0\"; printf err >&2; exit 3");
  EXPECT_EQ(r.code, 3) << r;
  EXPECT_EQ(r.out, "out /bin/sh");
  EXPECT_EQ(r.err, "err");
}

TEST(ChildProcess, CapturesMoreThanAPipeHolds) {
  const Completed r = sh("head -c 1000000 /dev/zero");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.size(), 1'000'000u);
}

TEST(ChildProcess, TheEnvironmentIsOursMinusDroppedPrefixesPlusOverrides) {
  ::setenv("RMON_LAUNCHER_TEST_A", "a", 1);
  ::setenv("RMON_LAUNCHER_TEST_B", "b", 1);
  ::setenv("RMON_LAUNCHER_KEEP", "kept", 1);
  const Completed r =
      sh("echo \"${RMON_LAUNCHER_TEST_A-unset} ${RMON_LAUNCHER_TEST_B-unset} "
         "$RMON_LAUNCHER_KEEP $RMON_LAUNCHER_NEW\"",
         {{"RMON_LAUNCHER_TEST_"},
          {{"RMON_LAUNCHER_NEW", "new"}, {"RMON_LAUNCHER_KEEP", "replaced"}}});
  EXPECT_EQ(r.out, "unset unset replaced new\n") << r;
  const Completed all = sh("echo $RMON_LAUNCHER_TEST_A $RMON_LAUNCHER_KEEP");
  EXPECT_EQ(all.out, "a kept\n") << all;
  ::unsetenv("RMON_LAUNCHER_TEST_A");
  ::unsetenv("RMON_LAUNCHER_TEST_B");
  ::unsetenv("RMON_LAUNCHER_KEEP");
}

TEST(ChildProcess, PastTheDeadlineItIsKilled) {
  const Completed r = sh("echo started; exec sleep 30", {}, 300ms);
  EXPECT_EQ(r.code, 128 + SIGKILL);
  EXPECT_EQ(r.out, "started\n");
  EXPECT_LT(r.seconds, 10.0);
}

TEST(ChildProcess, ALogFileIsAppendedAcrossRuns) {
  TempDir dir;
  const std::string log = dir.str() + "/child.log";
  for (const char* word : {"one", "two"}) {
    ChildProcess c("/bin/sh", {"-c", std::string("echo ") + word + "; echo err >&2"}, log);
    EXPECT_EQ(c.wait(10s), 0);
  }
  std::ifstream f(log);
  const std::string all{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  EXPECT_EQ(all, "one\nerr\ntwo\nerr\n");
}

TEST(ChildProcess, ASignalEndsItWithTheShellsConvention) {
  ChildProcess c("/bin/sh", {"-c", "exec sleep 30"}, kCapture);
  EXPECT_TRUE(c.running());
  EXPECT_FALSE(c.wait(0ms));
  c.signal(SIGTERM);
  EXPECT_EQ(c.wait(10s), 128 + SIGTERM);
  EXPECT_FALSE(c.running());
}

TEST(ChildProcess, DestroyedWhileRunningItIsKilledAndReaped) {
  pid_t pid = 0;
  {
    ChildProcess c("/bin/sh", {"-c", "exec sleep 30"}, kCapture);
    pid = c.pid();
    ASSERT_EQ(::kill(pid, 0), 0);
  }
  EXPECT_EQ(::kill(pid, 0), -1) << "still there, or a zombie";
  EXPECT_EQ(errno, ESRCH);
}

TEST(ChildProcess, AMissingExecutableIsAStartError) {
  EXPECT_THROW(ChildProcess("/nonexistent/rmon-nothing", {}, kCapture), std::system_error);
}

}  // namespace
}  // namespace rmon::testing
