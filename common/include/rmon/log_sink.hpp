#pragma once
// Logging that never blocks a service thread (spdlog's async logger with a
// bounded queue, dropping the oldest line when it is full) and never blocks
// its own writer thread for long either: FdSink writes to a file descriptor
// (stderr) without blocking; when the reader stops reading (a stuck pipe or
// logging driver), it waits once for a short grace, then drops lines until the
// descriptor is writable again. Both kinds of loss are counted.

#include <spdlog/sinks/base_sink.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>

namespace rmon {

class FdSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  // Does not own `fd`.
  explicit FdSink(int fd, std::chrono::milliseconds stall_grace = std::chrono::milliseconds(50));
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override {}

 private:
  // Writes all of `data`, waiting at most `wait` for the fd to take it.
  bool write_all(const char* data, std::size_t size, std::chrono::milliseconds wait);

  const int fd_;
  const std::chrono::milliseconds grace_;
  bool stalled_ = false;  // guarded by base_sink's mutex
  std::atomic<uint64_t> dropped_{0};
};

// Log lines lost so far: dropped from the full queue (a burst faster than the
// writer) plus dropped by a stalled stderr. Zero before init_logging().
uint64_t log_lines_dropped();

}  // namespace rmon
