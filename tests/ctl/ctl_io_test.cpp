// rmon-ctl: pools, exit codes, ping, and its own endpoint variables.

#include "ctl_test_support.hpp"

namespace rmon::ctl {
namespace {

TEST_F(CtlTest, PoolsStatusShowsHolders) {
  runner::PoolManagerClient pm(ctx, stack.pool_endpoint());
  auto slot = pm.acquire("local", "r-9", "t-9", 4);
  ASSERT_TRUE(slot) << slot.error().to_string();

  Exec status = ctl({"pools", "status"});
  ASSERT_EQ(status.code, 0) << status;
  const auto sl = lines(status.out);
  ASSERT_EQ(sl.size(), 6u) << status;
  EXPECT_EQ(words(sl[0]), (std::vector<std::string>{"POOL", "TYPE", "SLOTS", "IN_USE"}));
  EXPECT_EQ(words(sl[1]), (std::vector<std::string>{"local", "local-process", "2", "1"}));
  EXPECT_EQ(words(sl[2]), (std::vector<std::string>{"gpu", "kubernetes", "1", "0"}));
  EXPECT_EQ(sl[3], "");
  EXPECT_EQ(words(sl[4]),
            (std::vector<std::string>{"POOL", "SLOT", "RUNNER", "TASK", "ATTEMPT", "SINCE"}));
  const auto h = words(sl[5]);
  ASSERT_EQ(h.size(), 6u) << status;
  EXPECT_EQ((std::vector<std::string>(h.begin(), h.end() - 1)),
            (std::vector<std::string>{"local", std::to_string(slot.value()), "r-9", "t-9", "4"}));

  Exec gpu = ctl({"pools", "status", "--pool", "gpu"});
  ASSERT_EQ(gpu.code, 0) << gpu;
  EXPECT_EQ(lines(gpu.out).size(), 2u) << gpu;  // no holders, no second table

  Exec json = ctl({"pools", "status", "--json", "--pool", "local"});
  ASSERT_EQ(json.code, 0) << json;
  auto p = parse_json(json.out);
  ASSERT_TRUE(p.map) << json;
  std::vector<MapReader> pools, holders;
  ASSERT_TRUE(p.map->opt_maps("pools", pools).ok());
  ASSERT_EQ(pools.size(), 1u);
  ASSERT_TRUE(pools[0].opt_maps("holders", holders).ok());
  ASSERT_EQ(holders.size(), 1u);
  std::string runner_id;
  ASSERT_TRUE(holders[0].str("runner_id", runner_id).ok());
  EXPECT_EQ(runner_id, "r-9");

  Exec stats = ctl({"pools", "stats"});
  ASSERT_EQ(stats.code, 0) << stats;
  EXPECT_NE(stats.out.find("acquired "), std::string::npos) << stats;

  Exec unknown = ctl({"pools", "status", "--pool", "nope"});
  EXPECT_EQ(unknown.code, 1) << unknown;
  EXPECT_NE(unknown.err.find("pool-manager error not_found"), std::string::npos) << unknown;
}

TEST_F(CtlTest, ExitCodes) {
  // 1: the service answered an error; code and detail on stderr.
  Exec missing = ctl({"tasks", "get", "t-nope-1"});
  EXPECT_EQ(missing.code, 1) << missing;
  EXPECT_TRUE(missing.out.empty()) << missing;
  EXPECT_NE(missing.err.find("task-queue error not_found: "), std::string::npos) << missing;
  Exec runner = ctl({"runners", "get", "nobody"});
  EXPECT_EQ(runner.code, 1) << runner;
  EXPECT_NE(runner.err.find("monitor error not_found: "), std::string::npos) << runner;
  Exec conflict = ctl({"tasks", "cancel", "t-nope-2"});
  EXPECT_EQ(conflict.code, 1) << conflict;

  // 2: usage: bad JSON, files, flags; nothing is sent.
  Exec bad = ctl({"tasks", "submit", "--payload-json", "{\"a\": }"});
  EXPECT_EQ(bad.code, 2) << bad;
  EXPECT_NE(bad.err.find("bad JSON in --payload-json: line 1, column 7: unexpected '}'"),
            std::string::npos)
      << bad;
  Exec bad_file = ctl({"tasks", "submit", "--payload-file", write_file("bad.json", "[1,\n2,,]")});
  EXPECT_EQ(bad_file.code, 2) << bad_file;
  EXPECT_NE(bad_file.err.find("line 2, column 3"), std::string::npos) << bad_file;
  EXPECT_EQ(ctl({"tasks", "submit", "--payload-file", "/nonexistent/p.json"}).code, 2);
  Exec raw = ctl({"tasks", "submit", "--payload-raw-file", write_file("two.bin", "\x01\x02")});
  EXPECT_EQ(raw.code, 2) << raw;
  EXPECT_NE(raw.err.find("1 bytes after its first MessagePack value"), std::string::npos) << raw;
  Exec none = ctl({"tasks", "submit"});
  EXPECT_EQ(none.code, 2) << none;
  EXPECT_NE(none.err.find("exactly one of --payload-json"), std::string::npos) << none;
  Exec both = ctl({"tasks", "submit", "--payload-json", "1", "--payload-file", "x"});
  EXPECT_EQ(both.code, 2) << both;
  Exec big = ctl({"tasks", "submit", "--payload-json", "\"" + std::string(70'000, 'x') + "\""});
  EXPECT_EQ(big.code, 2) << big;
  EXPECT_NE(big.err.find("at most 65536"), std::string::npos) << big;
  EXPECT_EQ(ctl({"tasks", "list", "--state", "sleeping"}).code, 2);
  EXPECT_EQ(ctl({"tasks", "frobnicate"}).code, 2);
  EXPECT_EQ(ctl({"--no-such-flag", "ping"}).code, 2);
  EXPECT_EQ(ctl({}).code, 2);
  EXPECT_EQ(run_ctl({"--task-queue", "not an endpoint", "tasks", "stats"}).code, 2);
  EXPECT_EQ(ctl({"tasks", "stats"}).code, 0);  // and nothing was submitted by the above
  EXPECT_TRUE(has_line(ctl({"tasks", "stats"}).out, {"queued", "0"}));

  // 3: no answer in time (nothing listens on these paths).
  for (const std::vector<std::string>& cmd : {std::vector<std::string>{"tasks", "list"},
                                              {"runners", "list"},
                                              {"pools", "status"},
                                              {"runners", "count"}}) {
    Exec r = run_ctl({"--monitor", nowhere("m"), "--task-queue", nowhere("t"), "--pool-manager",
                      nowhere("p"), "--timeout-ms", "200", cmd[0], cmd[1]});
    EXPECT_EQ(r.code, 3) << cmd[0] << " " << cmd[1] << ": " << r;
    EXPECT_NE(r.err.find("did not answer: no reply from ipc://"), std::string::npos) << r;
    EXPECT_LT(r.seconds, 5.0);
  }

  // --help and --version exit 0.
  Exec help = run_ctl({"--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("3  a service did not answer within --timeout-ms"), std::string::npos)
      << help;
  Exec version = run_ctl({"--version"});
  EXPECT_EQ(version.code, 0);
  EXPECT_EQ(version.out, std::string("rmon-ctl ") + RMON_VERSION + "\n");
}

TEST_F(CtlTest, PingAllServicesOrOne) {
  Exec all = ctl({"ping"});
  ASSERT_EQ(all.code, 0) << all;
  auto pl = lines(all.out);
  ASSERT_EQ(pl.size(), 4u) << all;
  EXPECT_EQ(words(pl[1])[0], "monitor");
  EXPECT_EQ(words(pl[2])[0], "task-queue");
  EXPECT_EQ(words(pl[3])[0], "pool-manager");
  EXPECT_EQ(words(pl[1])[2], "ok,") << all;
  EXPECT_EQ(words(pl[2])[2], "ok,") << all;
  // The pool-manager answers ping with unknown_op today (docs/PROTOCOL.md says
  // it answers ping): an error reply still proves it up, and is shown.
  EXPECT_TRUE(words(pl[3])[2] == "ok," || words(pl[3])[2] == "answered") << all;

  // One service down: the others still answer; exit 3 says someone did not.
  Exec down = run_ctl({"--monitor", stack.monitor_endpoint(), "--task-queue", nowhere("t"),
                       "--pool-manager", stack.pool_endpoint(), "--timeout-ms", "200", "ping"});
  EXPECT_EQ(down.code, 3) << down;
  pl = lines(down.out);
  ASSERT_EQ(pl.size(), 4u) << down;
  EXPECT_EQ(words(pl[1])[2], "ok,") << down;
  EXPECT_EQ(words(pl[2])[2], "none") << down;
  EXPECT_NE(words(pl[3])[2], "none") << down;
  EXPECT_LT(down.seconds, 5.0);  // asked at once, not one after another

  // --service: one at a time, for health checks; --timeout-ms after the command too.
  EXPECT_EQ(run_ctl({"--monitor", stack.monitor_endpoint(), "--task-queue", nowhere("t"), "ping",
                     "--service", "monitor"})
                .code,
            0);
  Exec tq = run_ctl(
      {"--task-queue", nowhere("t"), "ping", "--service", "task-queue", "--timeout-ms", "200"});
  EXPECT_EQ(tq.code, 3) << tq;
  EXPECT_EQ(lines(tq.out).size(), 2u) << tq;
  EXPECT_EQ(ctl({"ping", "--service", "pool-manager", "--json"}).code, 0);
  EXPECT_EQ(ctl({"ping", "--service", "nope"}).code, 2);

  Exec json = ctl({"--json", "ping"});
  ASSERT_EQ(json.code, 0) << json;
  auto p = parse_json(json.out);
  ASSERT_TRUE(p.map) << json;
  bool answered = false;
  ASSERT_TRUE(p.map->boolean("answered", answered).ok());
  EXPECT_TRUE(answered);
  std::vector<MapReader> services;
  ASSERT_TRUE(p.map->opt_maps("services", services).ok());
  ASSERT_EQ(services.size(), 3u);
  std::string name;
  ASSERT_TRUE(services[2].str("service", name).ok());
  EXPECT_EQ(name, "pool-manager");
  uint64_t version = 0;
  ASSERT_TRUE(services[0].u64("version", version).ok());
  EXPECT_EQ(version, 1u);
}

TEST_F(CtlTest, EndpointsFromItsOwnVariablesOnly) {
  const std::map<std::string, std::string> env{{"RMON_CTL_MONITOR", stack.monitor_endpoint()},
                                               {"RMON_CTL_TASK_QUEUE", stack.task_endpoint()},
                                               {"RMON_CTL_POOL_MANAGER", stack.pool_endpoint()}};
  Exec ping = run_ctl({"ping"}, env);
  EXPECT_EQ(ping.code, 0) << ping;
  EXPECT_NE(ping.out.find(stack.task_endpoint()), std::string::npos) << ping;
  EXPECT_EQ(run_ctl({"tasks", "stats"}, env).code, 0);
  EXPECT_EQ(run_ctl({"pools", "status"}, env).code, 0);

  // RMON_CONTROL_ENDPOINT (the monitor's own bind variable) is not read.
  Exec ignored = run_ctl(
      {"--timeout-ms", "200", "runners", "count"},
      {{"RMON_CONTROL_ENDPOINT", stack.monitor_endpoint()}, {"RMON_CTL_MONITOR", nowhere("m")}});
  EXPECT_EQ(ignored.code, 3) << ignored;
  Exec default_ep = run_ctl({"--timeout-ms", "200", "ping", "--service", "monitor"},
                            {{"RMON_CONTROL_ENDPOINT", stack.monitor_endpoint()}});
  EXPECT_NE(default_ep.out.find("tcp://127.0.0.1:5559"), std::string::npos) << default_ep;

  // A flag wins over the variable.
  Exec flag = run_ctl({"--monitor", stack.monitor_endpoint(), "runners", "count"},
                      {{"RMON_CTL_MONITOR", nowhere("m")}});
  EXPECT_EQ(flag.code, 0) << flag;
  EXPECT_EQ(flag.out, "0\n");
}

}  // namespace
}  // namespace rmon::ctl
