#pragma once
// rmon-ctl tests: run the real executable as a child process against the
// real services in-process (tests/support/stack.hpp), and read its output.

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

using protocol::MapBuilder;
using protocol::MapReader;
using rmon::testing::wait_until;

struct Exec {
  int code = -1;
  std::string out, err;
  double seconds = 0;
};

inline std::ostream& operator<<(std::ostream& os, const Exec& r) {
  return os << "exit " << r.code << "\n--- stdout\n" << r.out << "--- stderr\n" << r.err;
}

// Runs rmon-ctl with `args` and an environment without any RMON_CTL_* or
// RMON_CONTROL_ENDPOINT of ours, plus `env`. Killed after 15 s.
inline Exec run_ctl(const std::vector<std::string>& args,
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

inline std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

inline std::vector<std::string> words(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// Some line of `text` has exactly these words.
inline bool has_line(const std::string& text, const std::vector<std::string>& w) {
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
inline Parsed parse_json(const std::string& text) {
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

inline std::string submit_ok(const Exec& r) {
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_EQ(lines(r.out).size(), 1u) << r;
  return r.out.empty() ? "" : r.out.substr(0, r.out.size() - 1);
}

}  // namespace rmon::ctl
