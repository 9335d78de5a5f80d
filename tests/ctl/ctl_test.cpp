// rmon-ctl, the real executable run as a child process, against the real
// monitor, task-queue and pool-manager in-process: every command group's
// tables and --json (parsed back), paging, exit codes 1/2/3, and endpoints
// from its own RMON_CTL_* variables only.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "../support/stack.hpp"
#include "../support/wait.hpp"
#include "ctl/json.hpp"
#include "rmon/protocol/codec.hpp"
#include "rmon/protocol/msgmap.hpp"
#include "rmon/runner/pool_manager_client.hpp"
#include "rmon/runner/task_queue_client.hpp"
#include "rmon/version.hpp"
#include "rmon/zmq_util.hpp"

extern char** environ;

namespace rmon::ctl {
namespace {

using protocol::MapBuilder;
using protocol::MapReader;
using rmon::testing::wait_until;

struct Exec {
  int code = -1;
  std::string out, err;
  double seconds = 0;
};

std::ostream& operator<<(std::ostream& os, const Exec& r) {
  return os << "exit " << r.code << "\n--- stdout\n" << r.out << "--- stderr\n" << r.err;
}

// Runs rmon-ctl with `args` and an environment without any RMON_CTL_* or
// RMON_CONTROL_ENDPOINT of ours, plus `env`. Killed after 15 s.
Exec run_ctl(const std::vector<std::string>& args,
             const std::map<std::string, std::string>& env = {}) {
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) {
    const std::string_view kv(*e);
    if (kv.starts_with("RMON_CTL_") || kv.starts_with("RMON_CONTROL_ENDPOINT=")) continue;
    envs.emplace_back(kv);
  }
  for (const auto& [k, v] : env) envs.push_back(k + "=" + v);
  std::vector<std::string> argv_s{RMON_CTL_EXE};
  argv_s.insert(argv_s.end(), args.begin(), args.end());

  // Everything the child needs is built before fork(): after it, only
  // async-signal-safe calls (other threads of this process may hold locks).
  std::vector<char*> argv, envp;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) return {};
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  Exec r;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open = 2;
  const auto deadline = t0 + std::chrono::seconds(15);
  while (open > 0 && std::chrono::steady_clock::now() < deadline) {
    if (::poll(fds, 2, 100) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
      char buf[4096];
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(n));
      } else {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      }
    }
  }
  if (open > 0) ::kill(pid, SIGKILL);
  for (auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::vector<std::string> words(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// Some line of `text` has exactly these words.
bool has_line(const std::string& text, const std::vector<std::string>& w) {
  for (const auto& l : lines(text)) {
    if (words(l) == w) return true;
  }
  return false;
}

// `--json` output parsed back: JSON -> MessagePack -> a MapReader. The
// encoded map is kept in `bytes` (MapReader refers to it).
struct Parsed {
  std::string bytes;
  std::optional<MapReader> map;
};
Parsed parse_json(const std::string& text) {
  Parsed p;
  p.bytes = json_to_msgpack(text);
  auto m = MapReader::parse(p.bytes, protocol::kMaxReplyFrame);
  if (m) p.map = m.value();
  return p;
}

class CtlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack.pools.pools = {"local=local-process:2", "gpu=kubernetes:1"};
    stack.start();
  }
  std::vector<std::string> endpoints() const {
    return {"--monitor",           stack.monitor_endpoint(), "--task-queue",
            stack.task_endpoint(), "--pool-manager",         stack.pool_endpoint()};
  }
  // rmon-ctl with the stack's endpoints as flags.
  Exec ctl(std::vector<std::string> args) {
    auto all = endpoints();
    all.insert(all.end(), args.begin(), args.end());
    return run_ctl(all);
  }
  std::string nowhere(const std::string& name) const {
    return "ipc://" + (stack.dir.path() / (name + ".sock")).string();
  }
  std::string write_file(const std::string& name, const std::string& data) {
    const auto path = stack.dir.path() / name;
    std::ofstream(path, std::ios::binary) << data;
    return path.string();
  }
  void heartbeat_until_known(zmq::socket_t& pub, protocol::Heartbeat hb) {
    const std::string topic = protocol::heartbeat_topic(hb.runner.runner_id);
    ASSERT_TRUE(wait_until([&] {
      ++hb.seq;
      (void)send_frames(pub, {topic, protocol::encode_heartbeat(hb)});
      return stack.monitor_svc->table()
          .get(hb.runner.runner_id, SystemClock::instance().now())
          .has_value();
    }));
  }

  rmon::testing::Stack stack;
  zmq::context_t ctx;
};

std::string submit_ok(const Exec& r) {
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_EQ(lines(r.out).size(), 1u) << r;
  return r.out.empty() ? "" : r.out.substr(0, r.out.size() - 1);
}

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
  EXPECT_EQ(ll[0].find("UPDATED"), ll[2].find("20")) << list;  // "2026-..." starts there
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
}

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
