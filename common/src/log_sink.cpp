#include "rmon/log_sink.hpp"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

namespace rmon {

FdSink::FdSink(int fd, std::chrono::milliseconds stall_grace) : fd_(fd), grace_(stall_grace) {}

// The descriptor stays blocking (it may be shared with stdout, whose writers
// expect that): each chunk of at most PIPE_BUF bytes is written only once
// poll() says the descriptor is writable, which for a pipe means a free
// buffer that takes the whole chunk without blocking.
bool FdSink::write_all(const char* data, std::size_t size, std::chrono::milliseconds wait) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (size > 0) {
    pollfd p{fd_, POLLOUT, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    const int ready = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left.count())));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0 || (p.revents & (POLLERR | POLLHUP | POLLNVAL))) return false;
    const ssize_t n = ::write(fd_, data, std::min<std::size_t>(size, PIPE_BUF));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

void FdSink::sink_it_(const spdlog::details::log_msg& msg) {
  spdlog::memory_buf_t line;
  formatter_->format(msg, line);
  // Stalled: try without waiting; a line that does not fit is dropped whole
  // (part of a line may have gone out: it ends in a newline regardless).
  const bool ok =
      write_all(line.data(), line.size(), stalled_ ? std::chrono::milliseconds(0) : grace_);
  if (ok) {
    stalled_ = false;
    return;
  }
  stalled_ = true;
  dropped_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace rmon
