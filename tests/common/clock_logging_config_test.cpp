// The small pieces of common/: fake clock, log rate limiting, settings.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "rmon/config.hpp"
#include "rmon/fake_clock.hpp"
#include "rmon/logging.hpp"
#include "rmon/version.hpp"

namespace rmon {
namespace {

TEST(FakeClock, MovesOnlyWhenAdvancedAndWallFollowsMonotonic) {
  FakeClock clock(5'000);
  const MonoTime t0 = clock.now();
  EXPECT_EQ(clock.now(), t0);
  clock.advance_ms(250);
  EXPECT_EQ(ms_between(t0, clock.now()), 250);
  EXPECT_EQ(clock.wall_ms(), 5'250);
}

TEST(LogRateLimiter, LetsABurstThroughThenCountsWhatItHeldBack) {
  LogRateLimiter limiter(2, std::chrono::seconds(1));
  FakeClock clock;
  uint64_t suppressed = 99;
  EXPECT_TRUE(limiter.allow("malformed", clock.now(), suppressed));
  EXPECT_EQ(suppressed, 0u);
  EXPECT_TRUE(limiter.allow("malformed", clock.now(), suppressed));
  EXPECT_FALSE(limiter.allow("malformed", clock.now(), suppressed));
  EXPECT_FALSE(limiter.allow("malformed", clock.now(), suppressed));
  EXPECT_TRUE(limiter.allow("too_large", clock.now(), suppressed));  // keys are independent
  clock.advance_ms(1000);
  EXPECT_TRUE(limiter.allow("malformed", clock.now(), suppressed));
  EXPECT_EQ(suppressed, 2u);
}

TEST(Logging, UnknownLevelIsAStartupError) {
  EXPECT_FALSE(parse_log_level("verbose"));
  EXPECT_TRUE(parse_log_level("debug"));
  EXPECT_THROW(init_logging("test", "loud"), std::invalid_argument);
}

struct ParsedArgs {
  std::vector<std::string> storage;
  std::vector<const char*> argv;
  explicit ParsedArgs(std::vector<std::string> args) : storage(std::move(args)) {
    for (const auto& s : storage) argv.push_back(s.c_str());
  }
};

TEST(Settings, FlagNamesMapToEnvironmentVariables) {
  EXPECT_EQ(Settings::env_name("heartbeat-endpoint"), "RMON_HEARTBEAT_ENDPOINT");
}

TEST(Settings, DefaultsHoldWithoutFlags) {
  Settings s("svc", "test");
  int shards = 64;
  s.add("shards", shards, "number of shards");
  ParsedArgs a({"svc"});
  EXPECT_FALSE(s.parse(static_cast<int>(a.argv.size()), a.argv.data()));
  EXPECT_EQ(shards, 64);
  EXPECT_EQ(s.log_level(), "info");
}

TEST(Settings, FlagBeatsConfigFileWhichBeatsEnvironment) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("rmon-settings-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto file = dir / "svc.toml";
  std::ofstream(file) << "shards = 8\nname = \"from-file\"\n";
  ::setenv("RMON_SHARDS", "4", 1);
  ::setenv("RMON_NAME", "from-env", 1);
  ::setenv("RMON_COLOR", "green", 1);
  Settings s("svc", "test");
  int shards = 64;
  std::string name = "default", color = "red";
  s.add("shards", shards, "");
  s.add("name", name, "");
  s.add("color", color, "");
  ParsedArgs a({"svc", "--config", file.string(), "--shards", "2"});
  EXPECT_FALSE(s.parse(static_cast<int>(a.argv.size()), a.argv.data()));
  EXPECT_EQ(shards, 2);
  EXPECT_EQ(name, "from-file");
  EXPECT_EQ(color, "green");
  ::unsetenv("RMON_SHARDS");
  ::unsetenv("RMON_NAME");
  ::unsetenv("RMON_COLOR");
  std::filesystem::remove_all(dir);
}

TEST(Settings, BadValueStopsWithAnErrorCode) {
  Settings s("svc", "test");
  int shards = 64;
  s.add("shards", shards, "");
  ParsedArgs a({"svc", "--shards", "many"});
  testing::internal::CaptureStderr();
  auto code = s.parse(static_cast<int>(a.argv.size()), a.argv.data());
  const std::string err = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(code);
  EXPECT_NE(*code, 0);
  EXPECT_NE(err.find("shards"), std::string::npos);
}

TEST(Settings, BadLogLevelIsRejected) {
  Settings s("svc", "test");
  ParsedArgs a({"svc", "--log-level", "loud"});
  testing::internal::CaptureStderr();
  auto code = s.parse(static_cast<int>(a.argv.size()), a.argv.data());
  testing::internal::GetCapturedStderr();
  ASSERT_TRUE(code);
  EXPECT_NE(*code, 0);
}

TEST(Settings, VersionPrintsTheProjectVersionAndStops) {
  Settings s("svc", "test");
  int shards = 64;
  s.add("shards", shards, "");
  ParsedArgs a({"svc", "--version"});
  testing::internal::CaptureStdout();
  auto code = s.parse(static_cast<int>(a.argv.size()), a.argv.data());
  const std::string out = testing::internal::GetCapturedStdout();
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 0);
  EXPECT_EQ(out, std::string("svc ") + RMON_VERSION + "\n");
}

}  // namespace
}  // namespace rmon
