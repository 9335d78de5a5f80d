#include "rmon/store/wal_syncer.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
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
  start("rmon-walsync");
}

WalSyncer::~WalSyncer() {
  stop();
  if (log_fd_ >= 0) ::close(log_fd_);
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

CommitSyncer::Flushed WalSyncer::flush() {
  std::string error = sync_ ? sync_() : sync_log();
  if (error.empty()) return {};
  return {Outcome::kFatal, std::move(error)};
}

}  // namespace rmon::store
