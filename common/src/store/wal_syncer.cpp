#include "rmon/store/wal_syncer.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

namespace rmon::store {

namespace {

std::string errno_text(const char* what, const std::filesystem::path& path, int err) {
  return std::string(what) + " " + path.string() + ": " + std::strerror(err);
}

}  // namespace

WalSyncer::WalSyncer(Db& writer, SyncFn sync)
    : log_path_(writer.path().string() + "-wal"), sync_(std::move(sync)) {
  writer.exec("PRAGMA synchronous=NORMAL");
  thread_ = std::thread([this] { run(); });
}

WalSyncer::~WalSyncer() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (log_fd_ >= 0) ::close(log_fd_);
}

uint64_t WalSyncer::commit() {
  uint64_t ticket;
  {
    std::lock_guard lock(mu_);
    ticket = ++requested_;
  }
  cv_.notify_one();
  return ticket;
}

void WalSyncer::wait(uint64_t ticket) {
  std::unique_lock lock(mu_);
  done_cv_.wait(lock, [&] { return durable() >= ticket || failure_ || stop_; });
}

std::optional<std::string> WalSyncer::failure() const {
  std::lock_guard lock(mu_);
  return failure_;
}

std::string WalSyncer::sync_log() {
  struct stat st {};
  if (::stat(log_path_.c_str(), &st) != 0) {
    // No log: SQLite removes it only after copying all of it into the
    // database and syncing that (at close), or there never was one.
    if (errno == ENOENT) return {};
    return errno_text("stat", log_path_, errno);
  }
  if (log_fd_ < 0 || static_cast<uint64_t>(st.st_ino) != log_ino_) {
    if (log_fd_ >= 0) ::close(log_fd_);
    log_fd_ = ::open(log_path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (log_fd_ < 0) return errno_text("open", log_path_, errno);
    log_ino_ = static_cast<uint64_t>(st.st_ino);
    // A new file: its name must survive a power loss too.
    const auto dir =
        log_path_.parent_path().empty() ? std::filesystem::path(".") : log_path_.parent_path();
    const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) return errno_text("open", dir, errno);
    const int rc = ::fsync(dir_fd);
    const int err = errno;
    ::close(dir_fd);
    if (rc != 0) return errno_text("fsync", dir, err);
  }
  if (::fdatasync(log_fd_) != 0) return errno_text("fdatasync", log_path_, errno);
  return {};
}

void WalSyncer::run() {
  pthread_setname_np(pthread_self(), "rmon-walsync");
  std::unique_lock lock(mu_);
  uint64_t synced = 0;
  while (true) {
    cv_.wait(lock, [&] { return stop_ || requested_ > synced; });
    if (stop_) break;
    // Every ticket taken so far was taken after its commit wrote the log.
    const uint64_t target = requested_;
    lock.unlock();
    const auto start = std::chrono::steady_clock::now();
    std::string error = sync_ ? sync_() : sync_log();
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    lock.lock();
    if (!error.empty()) {
      failure_ = std::move(error);
      done_cv_.notify_all();
      wake_.signal();
      break;
    }
    stats_.syncs.fetch_add(1, std::memory_order_relaxed);
    stats_.tickets.fetch_add(target - synced, std::memory_order_relaxed);
    stats_.last_us.store(static_cast<uint64_t>(us), std::memory_order_relaxed);
    synced = target;
    durable_.store(target, std::memory_order_release);
    done_cv_.notify_all();
    wake_.signal();
  }
}

}  // namespace rmon::store
