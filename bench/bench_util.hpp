#pragma once
// Helpers for the whole-process benchmarks: a publisher child process made
// with fork() before the parent creates any ZeroMQ context, pipes to pass it
// endpoints and start signals, and percentiles.

#include <poll.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "monitor_config.hpp"

namespace rmon::bench {

// A monitor on loopback wildcard ports with /metrics off: what the
// whole-process benchmarks run against.
inline monitor::MonitorConfig loopback_monitor_config() {
  monitor::MonitorConfig c;
  c.heartbeat_endpoint = "tcp://127.0.0.1:*";
  c.groups = {"task-queue=tcp://127.0.0.1:*", "pool-manager=tcp://127.0.0.1:*"};
  c.ack_endpoint = "tcp://127.0.0.1:*";
  c.control_endpoint = "tcp://127.0.0.1:*";
  c.metrics_address = "";
  c.data_dir.clear();  // in memory unless a benchmark sets a folder
  return c;
}

// A one-way pipe carrying short text lines.
class Pipe {
 public:
  Pipe() {
    if (::pipe(fds_) != 0) throw std::runtime_error("pipe failed");
  }
  ~Pipe() {
    close_read();
    close_write();
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;

  void write_line(const std::string& s) {
    const std::string line = s + "\n";
    if (::write(fds_[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      throw std::runtime_error("pipe write failed");
    }
  }
  // Blocks until a whole line arrives; empty on EOF.
  std::string read_line() {
    std::string out;
    char c;
    while (::read(fds_[0], &c, 1) == 1) {
      if (c == '\n') return out;
      out += c;
    }
    return out;
  }
  // True when a line (or EOF) can be read within `timeout_ms`.
  bool readable(int timeout_ms) {
    pollfd p{fds_[0], POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) > 0;
  }
  void close_read() {
    if (fds_[0] >= 0) ::close(fds_[0]);
    fds_[0] = -1;
  }
  void close_write() {
    if (fds_[1] >= 0) ::close(fds_[1]);
    fds_[1] = -1;
  }

 private:
  int fds_[2] = {-1, -1};
};

// Restricts the calling thread (and threads it starts later) to one CPU.
// Returns false when the machine has no such CPU.
inline bool pin_to_cpu(int cpu) {
  if (cpu < 0 || cpu >= static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN))) return false;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return ::sched_setaffinity(0, sizeof set, &set) == 0;
}

// Runs `fn` in a child process, which exits with fn's return value.
inline pid_t fork_child(const std::function<int()>& fn) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) std::_Exit(fn());
  return pid;
}

inline int wait_child(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

// Nearest-rank percentile of `v` (sorted in place), q in [0, 100].
inline double percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(q / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(rank, v.size() - 1)];
}

// CPU seconds used by each thread of this process, by thread id, with its name.
struct ThreadCpu {
  std::string name;
  double seconds = 0;
};
inline std::map<int, ThreadCpu> thread_cpu() {
  std::map<int, ThreadCpu> out;
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  DIR* d = ::opendir("/proc/self/task");
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream f(std::string("/proc/self/task/") + e->d_name + "/stat");
    std::string line;
    std::getline(f, line);
    const auto open = line.find('('), close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) utime = std::stod(field);
      if (i == 15) stime = std::stod(field);
    }
    out[std::atoi(e->d_name)] = {line.substr(open + 1, close - open - 1), (utime + stime) / tick};
  }
  ::closedir(d);
  return out;
}

// Prints each thread's CPU use between two thread_cpu() snapshots.
inline void print_thread_cpu(const std::map<int, ThreadCpu>& before,
                             const std::map<int, ThreadCpu>& after, double wall_seconds) {
  for (const auto& [tid, t] : after) {
    auto it = before.find(tid);
    const double used = t.seconds - (it == before.end() ? 0 : it->second.seconds);
    if (used > 0) {
      std::printf("    thread %-16s %6.0f%% of a core\n", t.name.c_str(),
                  100.0 * used / wall_seconds);
    }
  }
}

inline double median(std::vector<double> v) { return percentile(v, 50); }

}  // namespace rmon::bench
