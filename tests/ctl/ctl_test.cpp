// rmon-ctl: tasks and runners, in tables and as JSON.

#include "ctl_test_support.hpp"

namespace rmon::ctl {
namespace {

TEST_F(CtlTest, TasksSubmitGetListCancelStats) {
  // Payload as a JSON argument, with every JSON type.
  const std::string json =
      R"({"cmd": "train", "n": 3, "x": 1.5, "ok": true, "none": null, "list": [1, -2, "three"], "s": "\u00e9"})";
  const std::string id1 =
      submit_ok(ctl({"tasks", "submit", "--payload-json", json, "--priority", "-7", "--pool",
                     "local", "--idempotency-key", "k1", "--max-attempts", "3"}));
  ASSERT_TRUE(id1.starts_with("t-")) << id1;
  // The service stored exactly that value (read with the runner library).
  runner::TaskQueueClient tq(ctx, stack.task_endpoint());
  auto t1 = tq.get(id1);
  ASSERT_TRUE(t1) << t1.error().to_string();
  EXPECT_EQ(protocol::to_json(t1->payload),
            R"({"cmd":"train","n":3,"x":1.5,"ok":true,"none":null,"list":[1,-2,"three"],"s":"é"})");
  EXPECT_EQ(t1->priority, -7);
  EXPECT_EQ(t1->max_attempts, 3u);
  EXPECT_EQ(t1->pool, "local");
  EXPECT_EQ(t1->idempotency_key, "k1");

  // The same key again: the same id, nothing new, said on stderr.
  Exec again = ctl({"tasks", "submit", "--payload-json", "1", "--idempotency-key", "k1"});
  EXPECT_EQ(submit_ok(again), id1);
  EXPECT_NE(again.err.find("already has this idempotency key"), std::string::npos) << again;

  // Payload from a JSON file, and from a MessagePack file.
  const std::string id2 =
      submit_ok(ctl({"tasks", "submit", "--payload-file",
                     write_file("p.json", "[\"from\",\n \"file\"]\n"), "--delay-ms", "60000"}));
  EXPECT_EQ(protocol::to_json(tq.get(id2)->payload), R"(["from","file"])");
  const std::string id3 =
      submit_ok(ctl({"tasks", "submit", "--payload-raw-file",
                     write_file("p.msgpack", MapBuilder().str("raw", "yes").finish())}));
  EXPECT_EQ(protocol::to_json(tq.get(id3)->payload), R"({"raw":"yes"})");

  // get: a field per line; --json: the reply.
  Exec get = ctl({"tasks", "get", id1});
  ASSERT_EQ(get.code, 0) << get;
  const auto gl = lines(get.out);
  ASSERT_GE(gl.size(), 10u) << get;
  EXPECT_EQ(words(gl[0]), (std::vector<std::string>{"task_id", id1}));
  EXPECT_TRUE(has_line(get.out, {"state", "queued"})) << get;
  EXPECT_TRUE(has_line(get.out, {"priority", "-7"})) << get;
  EXPECT_NE(get.out.find(R"("list":[1,-2,"three"])"), std::string::npos) << get;
  EXPECT_NE(get.out.find("Z)\n"), std::string::npos) << get;  // created_at_ms as a UTC time
  Exec getj = ctl({"--json", "tasks", "get", id1});
  ASSERT_EQ(getj.code, 0) << getj;
  {
    auto p = parse_json(getj.out);
    ASSERT_TRUE(p.map);
    std::optional<MapReader> task;
    ASSERT_TRUE(p.map->opt_map("task", task).ok() && task);
    runner::TaskInfo t;
    ASSERT_TRUE(runner::read_task(*task, t).ok());
    EXPECT_EQ(t.task_id, id1);
    EXPECT_EQ(t.state, "queued");
    EXPECT_EQ(t.priority, -7);
  }

  // list: an aligned table in submission order.
  Exec list = ctl({"tasks", "list"});
  ASSERT_EQ(list.code, 0) << list;
  auto ll = lines(list.out);
  ASSERT_EQ(ll.size(), 4u) << list;
  EXPECT_EQ(words(ll[0]), (std::vector<std::string>{"TASK", "STATE", "ATTEMPT", "PRIORITY", "POOL",
                                                    "RUNNER", "UPDATED"}));
  const auto row1 = words(ll[1]);
  ASSERT_EQ(row1.size(), 7u) << list;
  EXPECT_EQ(row1[0], id1);
  EXPECT_EQ(row1[1], "queued");
  EXPECT_EQ(row1[2], "0/3");
  EXPECT_EQ(row1[3], "-7");
  EXPECT_EQ(row1[4], "local");
  EXPECT_EQ(row1[5], "-");
  EXPECT_EQ(words(ll[2])[0], id2);
  EXPECT_EQ(words(ll[3])[0], id3);
  const auto state_col = ll[0].find("STATE");
  EXPECT_EQ(ll[1].find("queued"), state_col) << list;
  EXPECT_EQ(ll[3].find("queued"), state_col) << list;
  // The timestamp ("2026-...T...Z") starts under UPDATED. Checked at that column: a
  // generated task id may itself contain "20".
  const auto updated_col = ll[0].find("UPDATED");
  ASSERT_NE(updated_col, std::string::npos) << list;
  for (std::size_t i = 1; i < ll.size(); ++i) {
    ASSERT_GT(ll[i].size(), updated_col) << list;
    EXPECT_EQ(ll[i].substr(updated_col, 2), "20") << list;
    EXPECT_EQ(ll[i][updated_col - 1], ' ') << list;
    EXPECT_EQ(ll[i].find('T', updated_col), updated_col + 10) << list;
    EXPECT_EQ(ll[i].back(), 'Z') << list;
  }
  EXPECT_TRUE(list.err.empty()) << list;

  // --json parsed back.
  Exec listj = ctl({"tasks", "list", "--json"});
  ASSERT_EQ(listj.code, 0) << listj;
  {
    auto p = parse_json(listj.out);
    ASSERT_TRUE(p.map) << listj;
    std::vector<MapReader> tasks;
    ASSERT_TRUE(p.map->opt_maps("tasks", tasks).ok());
    ASSERT_EQ(tasks.size(), 3u);
    std::string id;
    ASSERT_TRUE(tasks[1].str("task_id", id).ok());
    EXPECT_EQ(id, id2);
    bool more = true;
    ASSERT_TRUE(p.map->boolean("more", more).ok());
    EXPECT_FALSE(more);
  }

  // Paging: --limit and the `more` hint, --after, --all, --max.
  Exec page1 = ctl({"tasks", "list", "--limit", "2"});
  ASSERT_EQ(page1.code, 0) << page1;
  EXPECT_EQ(lines(page1.out).size(), 3u) << page1;
  EXPECT_NE(page1.err.find("rmon-ctl tasks list --after " + id2), std::string::npos) << page1;
  Exec page2 = ctl({"tasks", "list", "--limit", "2", "--after", id2});
  ASSERT_EQ(page2.code, 0) << page2;
  ASSERT_EQ(lines(page2.out).size(), 2u) << page2;
  EXPECT_EQ(words(lines(page2.out)[1])[0], id3);
  EXPECT_TRUE(page2.err.empty()) << page2;
  Exec all = ctl({"tasks", "list", "--all", "--limit", "1"});
  ASSERT_EQ(all.code, 0) << all;
  EXPECT_EQ(all.out, list.out);
  EXPECT_TRUE(all.err.empty()) << all;
  Exec allj = ctl({"tasks", "list", "--all", "--limit", "1", "--json"});
  ASSERT_EQ(allj.code, 0) << allj;
  {
    auto p = parse_json(allj.out);
    ASSERT_TRUE(p.map) << allj;
    std::vector<MapReader> tasks;
    ASSERT_TRUE(p.map->opt_maps("tasks", tasks).ok());
    EXPECT_EQ(tasks.size(), 3u);
  }
  Exec capped = ctl({"tasks", "list", "--all", "--limit", "1", "--max", "2"});
  ASSERT_EQ(capped.code, 0) << capped;
  EXPECT_EQ(lines(capped.out).size(), 3u) << capped;
  EXPECT_NE(capped.err.find("stopped after 2 tasks (--max 2); more match: rmon-ctl tasks list "
                            "--all --after " +
                            id2),
            std::string::npos)
      << capped;

  // cancel, then the filters see it.
  Exec cancel = ctl({"tasks", "cancel", id3});
  ASSERT_EQ(cancel.code, 0) << cancel;
  EXPECT_EQ(cancel.out, id3 + " cancelled\n");
  Exec cancelled = ctl({"tasks", "list", "--state", "cancelled"});
  ASSERT_EQ(lines(cancelled.out).size(), 2u) << cancelled;
  EXPECT_EQ(words(lines(cancelled.out)[1])[0], id3);
  Exec local = ctl({"tasks", "list", "--pool", "local"});
  ASSERT_EQ(lines(local.out).size(), 2u) << local;

  // stats: a counter per line; --json parsed back.
  Exec stats = ctl({"tasks", "stats"});
  ASSERT_EQ(stats.code, 0) << stats;
  EXPECT_TRUE(has_line(stats.out, {"queued", "2"})) << stats;
  EXPECT_TRUE(has_line(stats.out, {"cancelled", "1"})) << stats;
  EXPECT_EQ(stats.out.find("ok "), std::string::npos) << stats;
  Exec statsj = ctl({"tasks", "stats", "--json"});
  auto p = parse_json(statsj.out);
  ASSERT_TRUE(p.map) << statsj;
  uint64_t queued = 0, cancelled_n = 0;
  ASSERT_TRUE(p.map->u64("queued", queued).ok());
  ASSERT_TRUE(p.map->u64("cancelled", cancelled_n).ok());
  EXPECT_EQ(queued, 2u);
  EXPECT_EQ(cancelled_n, 1u);
}

TEST_F(CtlTest, RunnersListGetCountStatsAfterHeartbeats) {
  auto pub = make_socket(ctx, zmq::socket_type::pub, SocketOptions{});
  pub.connect(stack.heartbeat_endpoint());
  protocol::Heartbeat a;
  a.runner.runner_id = "r-1";
  a.runner.task_id = "t-a";
  a.runner.attempt = 2;
  a.runner.pool = "local";
  a.timeout_ms = 60'000;
  heartbeat_until_known(pub, a);
  protocol::Heartbeat b = a;
  b.runner.runner_id = "r-2";
  b.runner.task_id = "t-b";
  b.runner.attempt = 1;
  b.runner.pool = "gpu";
  b.runner.pool_type = protocol::PoolType::kKubernetes;
  b.runner.job_name = "job-b";
  heartbeat_until_known(pub, b);

  Exec list = ctl({"runners", "list"});
  ASSERT_EQ(list.code, 0) << list;
  auto ll = lines(list.out);
  ASSERT_EQ(ll.size(), 3u) << list;
  EXPECT_EQ(words(ll[0]),
            (std::vector<std::string>{"RUNNER", "TASK", "ATTEMPT", "POOL", "STATE", "SILENCE_MS"}));
  const auto r1 = words(ll[1]);
  ASSERT_EQ(r1.size(), 6u) << list;
  EXPECT_EQ((std::vector<std::string>(r1.begin(), r1.end() - 1)),
            (std::vector<std::string>{"r-1", "t-a", "2", "local", "running"}));
  EXPECT_EQ(words(ll[2])[0], "r-2");
  EXPECT_EQ(ll[1].find("running"), ll[0].find("STATE"));
  // Numbers are right-aligned under their header's end.
  EXPECT_EQ(ll[1].find(" 2 ") + 1 + 1, ll[0].find("ATTEMPT") + std::string("ATTEMPT").size());

  Exec listj = ctl({"runners", "list", "--json"});
  ASSERT_EQ(listj.code, 0) << listj;
  {
    auto p = parse_json(listj.out);
    ASSERT_TRUE(p.map) << listj;
    std::vector<MapReader> rs;
    ASSERT_TRUE(p.map->opt_maps("runners", rs).ok());
    ASSERT_EQ(rs.size(), 2u);
    std::string job;
    ASSERT_TRUE(rs[1].str("job_name", job, 256).ok());
    EXPECT_EQ(job, "job-b");
  }
  Exec page = ctl({"runners", "list", "--limit", "1"});
  ASSERT_EQ(page.code, 0) << page;
  EXPECT_EQ(lines(page.out).size(), 2u);
  EXPECT_NE(page.err.find("rmon-ctl runners list --after r-1"), std::string::npos) << page;
  Exec rest = ctl({"runners", "list", "--after", "r-1"});
  ASSERT_EQ(lines(rest.out).size(), 2u) << rest;
  EXPECT_EQ(words(lines(rest.out)[1])[0], "r-2");
  Exec all = ctl({"runners", "list", "--all", "--limit", "1", "--json"});
  {
    auto p = parse_json(all.out);
    ASSERT_TRUE(p.map) << all;
    std::vector<MapReader> rs;
    ASSERT_TRUE(p.map->opt_maps("runners", rs).ok());
    EXPECT_EQ(rs.size(), 2u);
  }

  Exec get = ctl({"runners", "get", "r-2"});
  ASSERT_EQ(get.code, 0) << get;
  EXPECT_EQ(words(lines(get.out)[0]), (std::vector<std::string>{"runner_id", "r-2"}));
  EXPECT_NE(get.out.find("\njob_name "), std::string::npos) << get;
  EXPECT_NE(get.out.find("\nstate "), std::string::npos) << get;
  Exec getj = ctl({"runners", "get", "r-1", "--json"});
  {
    auto p = parse_json(getj.out);
    ASSERT_TRUE(p.map) << getj;
    std::optional<MapReader> r;
    ASSERT_TRUE(p.map->opt_map("runner", r).ok() && r);
    std::string task;
    uint64_t attempt = 0;
    ASSERT_TRUE(r->str("task_id", task).ok() && r->u64("attempt", attempt).ok());
    EXPECT_EQ(task, "t-a");
    EXPECT_EQ(attempt, 2u);
  }

  EXPECT_EQ(ctl({"runners", "count"}).out, "2\n");
  EXPECT_EQ(ctl({"runners", "count", "--pool", "gpu"}).out, "1\n");
  EXPECT_EQ(ctl({"runners", "count", "--state", "failed"}).out, "0\n");
  Exec set = ctl({"runners", "set-state", "r-2", "completed"});
  ASSERT_EQ(set.code, 0) << set;
  EXPECT_EQ(ctl({"runners", "count", "--state", "completed"}).out, "1\n");
  Exec countj = ctl({"--json", "runners", "count", "--state", "running"});
  {
    auto p = parse_json(countj.out);
    ASSERT_TRUE(p.map) << countj;
    uint64_t n = 0;
    ASSERT_TRUE(p.map->u64("count", n).ok());
    EXPECT_EQ(n, 1u);
  }

  Exec stats = ctl({"runners", "stats"});
  ASSERT_EQ(stats.code, 0) << stats;
  EXPECT_TRUE(has_line(stats.out, {"runners", "2"})) << stats;
  Exec statsj = ctl({"runners", "stats", "--json"});
  {
    auto p = parse_json(statsj.out);
    ASSERT_TRUE(p.map) << statsj;
    uint64_t hb = 0;
    ASSERT_TRUE(p.map->u64("heartbeats", hb).ok());
    EXPECT_GE(hb, 2u);
  }

  // The monitor's other control ops.
  Exec add = ctl({"runners", "add", "--runner-id", "r-3", "--task-id", "t-c", "--pool", "local",
                  "--runner-timeout-ms", "60000"});
  ASSERT_EQ(add.code, 0) << add;
  EXPECT_EQ(ctl({"runners", "count"}).out, "3\n");
  Exec exists =
      ctl({"runners", "add", "--runner-id", "r-3", "--task-id", "t-c", "--pool", "local"});
  EXPECT_EQ(exists.code, 1) << exists;
  EXPECT_NE(exists.err.find("exists"), std::string::npos) << exists;
  Exec rm = ctl({"runners", "remove", "r-3"});
  ASSERT_EQ(rm.code, 0) << rm;
  EXPECT_EQ(rm.out, "removed r-3\n");
  EXPECT_EQ(ctl({"runners", "remove", "r-3"}).out, "not known, nothing removed: r-3\n");
  EXPECT_EQ(ctl({"runners", "ping"}).code, 0);

  // lookup: one row per id, in order, an unknown one said so; --json the reply.
  Exec look = ctl({"runners", "lookup", "r-2", "nobody", "r-1"});
  ASSERT_EQ(look.code, 0) << look;
  const auto lk = lines(look.out);
  ASSERT_EQ(lk.size(), 4u) << look;
  EXPECT_EQ(words(lk[0]), (std::vector<std::string>{"RUNNER", "TASK", "ATTEMPT", "STATE",
                                                    "TIMED_OUT", "STATE_FOR_MS"}));
  const auto l2 = words(lk[1]);
  ASSERT_EQ(l2.size(), 6u) << look;
  EXPECT_EQ(std::vector<std::string>(l2.begin(), l2.begin() + 5),
            (std::vector<std::string>{"r-2", "t-b", "1", "completed", "no"}));
  EXPECT_EQ(words(lk[2]), (std::vector<std::string>{"nobody", "-", "-", "unknown", "-", "-"}));
  EXPECT_EQ(words(lk[3])[3], "running") << look;
  Exec lookj = ctl({"runners", "lookup", "--json", "r-1"});
  ASSERT_EQ(lookj.code, 0) << lookj;
  EXPECT_NE(lookj.out.find("\"state_for_ms\""), std::string::npos) << lookj;
  EXPECT_EQ(ctl({"runners", "lookup"}).code, 2);  // no ids: a usage error
  Exec bad = ctl({"runners", "lookup", std::string(129, 'r')});
  EXPECT_EQ(bad.code, 1) << bad;
  EXPECT_NE(bad.err.find("bad_request"), std::string::npos) << bad;

  // The storm brake: its state in stats, and an operator's release (answered
  // when it is not engaged too; the fault suite stages a real storm).
  EXPECT_TRUE(has_line(stats.out, {"brake_engaged", "0"})) << stats;
  Exec release = ctl({"runners", "release-brake"});
  ASSERT_EQ(release.code, 0) << release;
  EXPECT_NE(release.out.find("was not engaged"), std::string::npos) << release;
}

}  // namespace
}  // namespace rmon::ctl
