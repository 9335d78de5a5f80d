#include "files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

namespace rmon::security::detail {
namespace {

// Closes the descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::filesystem::path temp_name(const std::filesystem::path& file) {
  static std::atomic<uint64_t> counter{0};
  std::filesystem::path tmp = file;
  tmp += ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
  return tmp;
}

}  // namespace

Error errno_error(const std::filesystem::path& file, std::string_view what) {
  return Error{file.string() + ": " + std::string(what) + ": " + std::strerror(errno)};
}

Expected<std::string> read_small_file(const std::filesystem::path& file, std::size_t max_bytes) {
  // O_NONBLOCK: a FIFO named like a key must not hang a reload.
  Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) return errno_error(file, "cannot open");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error(file, "cannot stat");
  if (!S_ISREG(st.st_mode)) return Error{file.string() + ": not a regular file"};
  if (static_cast<std::size_t>(st.st_size) > max_bytes) {
    return Error{file.string() + ": larger than " + std::to_string(max_bytes) +
                 " bytes, not a certificate"};
  }
  std::string out(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < out.size()) {
    const ssize_t n = ::read(fd.get(), out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error(file, "cannot read");
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  out.resize(got);
  return out;
}

Status write_file_atomic(const std::filesystem::path& file, std::string_view content, mode_t mode,
                         bool overwrite) {
  const std::filesystem::path tmp = temp_name(file);
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (fd.get() < 0) return errno_error(tmp, "cannot create");
  // The umask may only have narrowed `mode`; set it exactly.
  const bool written = ::fchmod(fd.get(), mode) == 0 && write_all(fd.get(), content) &&
                       ::fsync(fd.get()) == 0 && ::close(fd.release()) == 0;
  if (!written) {
    Error e = errno_error(tmp, "cannot write");
    ::unlink(tmp.c_str());
    return e;
  }
  if (overwrite) {
    if (::rename(tmp.c_str(), file.c_str()) != 0) {
      Error e = errno_error(file, "cannot rename into place");
      ::unlink(tmp.c_str());
      return e;
    }
    return {};
  }
  // link() fails with EEXIST rather than replace: no-clobber, atomically.
  const int rc = ::link(tmp.c_str(), file.c_str());
  const int link_errno = errno;
  ::unlink(tmp.c_str());
  if (rc != 0) {
    errno = link_errno;
    if (link_errno == EEXIST) return Error{file.string() + ": exists (not overwritten)"};
    return errno_error(file, "cannot create");
  }
  return {};
}

}  // namespace rmon::security::detail
