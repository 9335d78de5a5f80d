#include "rmon/store/wal_syncer.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace rmon::store {

namespace {

std::string errno_text(const char* what, const std::filesystem::path& path, int err) {
  return std::string(what) + " " + path.string() + ": " + std::strerror(err);
}

}  // namespace

WalSyncer::WalSyncer(Db& writer, SyncFn sync)
    : log_path_(sqlite3_filename_wal(sqlite3_db_filename(writer.raw(), "main"))),
      sync_(std::move(sync)) {
  writer.exec("PRAGMA synchronous=FULL; PRAGMA wal_checkpoint(TRUNCATE)");
  writer.exec("PRAGMA synchronous=NORMAL");
  if (!sync_) {
    if (std::string error = open_log(); !error.empty()) {
      throw std::runtime_error("cannot sync the database log: " + error);
    }
  }
  thread_ = std::thread([this] { run(); });
}

WalSyncer::~WalSyncer() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  done_cv_.notify_all();
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

std::vector<CommitSyncer::Settled> WalSyncer::take_settled() {
  const uint64_t d = durable();
  if (d <= reported_) return {};
  reported_ = d;
  return {Settled{d, true, {}}};
}

void WalSyncer::wait(uint64_t ticket) {
  std::unique_lock lock(mu_);
  done_cv_.wait(lock, [&] { return durable() >= ticket || failure_ || stop_; });
}

std::optional<std::string> WalSyncer::failure() const {
  std::lock_guard lock(mu_);
  return failure_;
}

std::string WalSyncer::open_log() {
  const int fd = ::open(log_path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_text("open", log_path_, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return errno_text("fstat", log_path_, err);
  }
  if (log_fd_ >= 0) ::close(log_fd_);
  log_fd_ = fd;
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
  return {};
}

std::string WalSyncer::sync_log() {
  // SQLite keeps its log file while the database is open (it truncates it
  // in place); a new file (another inode) is opened and synced as well.
  struct stat st {};
  if (::stat(log_path_.c_str(), &st) != 0) return errno_text("stat", log_path_, errno);
  if (log_fd_ < 0 || static_cast<uint64_t>(st.st_ino) != log_ino_) {
    if (std::string error = open_log(); !error.empty()) return error;
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
