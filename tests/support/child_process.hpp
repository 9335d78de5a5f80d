#pragma once
// The one way tests start a process (a service executable, rmon-ctl,
// rmon-event-sink): posix_spawn with everything the child needs (argv, envp,
// the log file or the pipes) prepared by the parent, so no code of this
// multithreaded process runs between fork and exec (glibc's posix_spawn is a
// vfork-style clone that only applies the file actions and execs). The child
// starts with no blocked signals and every handler at its default.
//
// stdout and stderr go either to a log file (appended, shared across
// restarts) or to pipes this object reads into out() and err(). The
// destructor SIGKILLs a child still running and reaps it. Not thread-safe: a
// ChildProcess belongs to one thread.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "wait.hpp"

extern char** environ;

namespace rmon::testing {

// A child's environment: this process's, without the entries that start with
// any of `drop` (matched against "NAME=value", so "RMON_CTL_" drops a family
// and "RMON_CONTROL_ENDPOINT=" one variable), plus `set` (replacing a
// variable of the same name).
struct ChildEnv {
  std::vector<std::string> drop;
  std::map<std::string, std::string> set;
};

// Tag: capture stdout and stderr instead of writing them to a file.
struct Capture {};
inline constexpr Capture kCapture{};

class ChildProcess {
 public:
  // stdout and stderr appended to the file at `log_path` (created 0644).
  ChildProcess(const std::string& exe, const std::vector<std::string>& args,
               const std::string& log_path, const ChildEnv& env = {}) {
    spawn(exe, args, env, &log_path);
  }
  // stdout and stderr captured: out() and err() hold what has been read, all
  // of it once wait() has returned a status.
  ChildProcess(const std::string& exe, const std::vector<std::string>& args, Capture,
               const ChildEnv& env = {}) {
    spawn(exe, args, env, nullptr);
  }
  ~ChildProcess() {
    if (running()) {
      ::kill(pid_, SIGKILL);
      (void)wait(std::chrono::seconds(10));
    }
    close_pipes();
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Started and not yet seen to exit (by wait()).
  bool running() const { return !status_; }
  void signal(int sig) const {
    if (running()) ::kill(pid_, sig);  // not reaped: the pid is still ours
  }
  // The exit status, or 128 + the signal that ended it, once it has exited
  // within `timeout`; nullopt while it runs. Reads captured output meanwhile.
  std::optional<int> wait(std::chrono::milliseconds timeout) {
    if (!status_) {
      (void)wait_until(
          [&] {
            pump();
            return reap();
          },
          timeout);
    }
    if (status_) {
      // Its writes are all in the pipes and its ends closed: read to the end
      // (a grandchild still holding a pipe loses the rest).
      pump();
      close_pipes();
    }
    return status_;
  }
  pid_t pid() const { return pid_; }
  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

 private:
  // `log_path` null: capture.
  void spawn(const std::string& exe, const std::vector<std::string>& args, const ChildEnv& env,
             const std::string* log_path) {
    std::vector<std::string> argv_s{exe};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<std::string> env_s = environment(env);
    std::vector<char*> argv, envp;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env_s) envp.push_back(e.data());
    envp.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    ::posix_spawnattr_setsigmask(&attr, &none);
    ::posix_spawnattr_setsigdefault(&attr, &all);
    ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
    int rc = 0;
    if (log_path != nullptr) {
      ::posix_spawn_file_actions_addopen(&actions, 1, log_path->c_str(),
                                         O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::posix_spawn_file_actions_adddup2(&actions, 1, 2);
    } else if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
      rc = errno;
    } else {
      // The copies on 1 and 2 stay open across exec; the originals close.
      ::posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
      ::posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
    }
    if (rc == 0) rc = ::posix_spawn(&pid_, argv[0], &actions, &attr, argv.data(), envp.data());
    ::posix_spawn_file_actions_destroy(&actions);
    ::posix_spawnattr_destroy(&attr);
    for (int fd : {out_pipe[1], err_pipe[1]}) {
      if (fd >= 0) ::close(fd);
    }
    out_fd_ = out_pipe[0];
    err_fd_ = err_pipe[0];
    if (rc != 0) {
      close_pipes();
      throw std::system_error(rc, std::generic_category(), "cannot start " + exe);
    }
    for (int fd : {out_fd_, err_fd_}) {
      if (fd >= 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    }
  }

  static std::vector<std::string> environment(const ChildEnv& env) {
    std::vector<std::string> out;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string_view kv(*e);
      bool keep = true;
      for (const std::string& p : env.drop) keep = keep && !kv.starts_with(p);
      if (keep && env.set.count(std::string(kv.substr(0, kv.find('='))))) keep = false;
      if (keep) out.emplace_back(kv);
    }
    for (const auto& [k, v] : env.set) out.push_back(k + "=" + v);
    return out;
  }

  // Reads whatever the pipes hold now; closes each at its end.
  void pump() {
    read_available(out_fd_, out_);
    read_available(err_fd_, err_);
  }
  static void read_available(int& fd, std::string& sink) {
    char buf[4096];
    while (fd >= 0) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) {
        sink.append(buf, static_cast<std::size_t>(n));
      } else if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        if (errno == EAGAIN) return;  // nothing more for now
      } else {
        ::close(fd);  // the end, or an error
        fd = -1;
      }
    }
  }
  bool reap() {
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) != pid_) return false;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return true;
  }
  void close_pipes() {
    for (int* fd : {&out_fd_, &err_fd_}) {
      if (*fd >= 0) ::close(*fd);
      *fd = -1;
    }
  }

  pid_t pid_ = -1;
  std::optional<int> status_;
  int out_fd_ = -1, err_fd_ = -1;  // read ends of the capture pipes; -1 when closed
  std::string out_, err_;
};

// A run to completion: the exit status (128 + signal when killed, -1 if it
// could not be reaped), the output, and how long it took.
struct Completed {
  int code = -1;
  std::string out, err;
  double seconds = 0;
};

inline std::ostream& operator<<(std::ostream& os, const Completed& r) {
  return os << "exit " << r.code << "\n--- stdout\n" << r.out << "--- stderr\n" << r.err;
}

// Runs `exe` with its output captured until it exits; SIGKILLed once
// `limit` has passed (the code is then 128 + SIGKILL).
inline Completed run_to_completion(const std::string& exe, const std::vector<std::string>& args,
                                   const ChildEnv& env = {},
                                   std::chrono::milliseconds limit = std::chrono::seconds(15)) {
  const auto t0 = std::chrono::steady_clock::now();
  ChildProcess child(exe, args, kCapture, env);
  std::optional<int> code = child.wait(limit);
  if (!code) {
    child.signal(SIGKILL);
    code = child.wait(std::chrono::seconds(10));
  }
  Completed r;
  r.code = code.value_or(-1);
  r.out = child.out();
  r.err = child.err();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace rmon::testing
