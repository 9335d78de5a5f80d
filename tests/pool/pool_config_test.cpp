// pool-manager settings: the pool list from flags, environment and config
// file, its validation, and the defaults.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>

#include "../support/temp_dir.hpp"
#include "pool_config.hpp"

namespace rmon::pool {
namespace {

std::optional<PoolSpec> parse(const std::string& text) {
  std::string error;
  auto spec = parse_pool_spec(text, error);
  EXPECT_EQ(spec.has_value(), error.empty()) << error;
  return spec;
}

TEST(PoolSpec, ParsesNameTypeAndSlots) {
  EXPECT_EQ(parse("local=local-process:8"),
            (PoolSpec{"local", protocol::PoolType::kLocalProcess, 8}));
  EXPECT_EQ(parse("k8s=kubernetes:100000"),
            (PoolSpec{"k8s", protocol::PoolType::kKubernetes, 100'000}));
  EXPECT_EQ(parse("a:b=docker:1"), (PoolSpec{"a:b", protocol::PoolType::kDocker, 1}));
}

TEST(PoolSpec, RejectsWhatIsNotAValidPool) {
  for (const std::string& bad : std::vector<std::string>{
           "", "local", "local=docker", "=docker:1", "x=vm:1", "x=docker:0", "x=docker:100001",
           "x=docker:-1", "x=docker:1x", "x=docker:", std::string(129, 'n') + "=docker:1"}) {
    std::string error;
    EXPECT_FALSE(parse_pool_spec(bad, error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
  EXPECT_TRUE(parse(std::string(128, 'n') + "=docker:1"));
}

TEST(PoolSpec, ListNeedsUniqueNames) {
  std::vector<PoolSpec> out;
  EXPECT_EQ(parse_pool_specs({"a=docker:1", "b=docker:2"}, out), "");
  EXPECT_EQ(out.size(), 2u);
  EXPECT_NE(parse_pool_specs({"a=docker:1", "a=kubernetes:2"}, out), "");
  EXPECT_NE(parse_pool_specs({}, out), "");
}

TEST(PoolConfig, DefaultsAreThreePoolsOfEightAndThePortsOfTheProtocol) {
  PoolConfig c;
  EXPECT_EQ(c.validate(), "");
  EXPECT_EQ(c.pool_specs(),
            (std::vector<PoolSpec>{{"local", protocol::PoolType::kLocalProcess, 8},
                                   {"docker", protocol::PoolType::kDocker, 8},
                                   {"kubernetes", protocol::PoolType::kKubernetes, 8}}));
  EXPECT_EQ(c.api_endpoint, "tcp://127.0.0.1:5561");
  EXPECT_EQ(c.events_endpoints.at(0), "tcp://127.0.0.1:5557");
  EXPECT_EQ(c.metrics_address, "127.0.0.1:9466");
  EXPECT_EQ(c.first_heartbeat_grace_ms, 30'000u);
}

std::vector<std::string> pools_from(std::vector<const char*> args) {
  PoolConfig c;
  Settings s("pool-manager", "test");
  c.register_settings(s);
  args.insert(args.begin(), "pool-manager");
  EXPECT_FALSE(s.parse(static_cast<int>(args.size()), args.data()));
  EXPECT_EQ(c.validate(), "");
  return c.pools;
}

TEST(PoolConfig, PoolsComeFromRepeatedFlagsEnvironmentOrConfigFile) {
  EXPECT_EQ(pools_from({"--pool", "local=local-process:8", "--pool", "k8s=kubernetes:16"}),
            (std::vector<std::string>{"local=local-process:8", "k8s=kubernetes:16"}));

  ::setenv("RMON_POOL", "a=docker:4,b=kubernetes:2", 1);
  EXPECT_EQ(pools_from({}), (std::vector<std::string>{"a=docker:4", "b=kubernetes:2"}));
  EXPECT_EQ(pools_from({"--pool", "c=docker:1"}), (std::vector<std::string>{"c=docker:1"}));
  ::unsetenv("RMON_POOL");

  rmon::testing::TempDir dir;
  const std::string file = (dir.path() / "pm.toml").string();
  std::ofstream(file) << "pool = [\"x=docker:3\", \"y=local-process:5\"]\nsync = \"normal\"\n";
  EXPECT_EQ(pools_from({"--config", file.c_str()}),
            (std::vector<std::string>{"x=docker:3", "y=local-process:5"}));
}

TEST(PoolConfig, ValidateNamesTheBadPool) {
  PoolConfig c;
  c.pools = {"local=local-process:8", "gpu=vm:2"};
  EXPECT_NE(c.validate().find("gpu=vm:2"), std::string::npos) << c.validate();
  c.pools = {"local=local-process:8"};
  c.event_retention_ms = 5;
  EXPECT_NE(c.validate(), "");
}

}  // namespace
}  // namespace rmon::pool
