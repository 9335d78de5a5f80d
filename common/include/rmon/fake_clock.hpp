#pragma once
// A clock that only moves when told to. For tests; thread-safe.

#include <atomic>

#include "rmon/clock.hpp"

namespace rmon {

class FakeClock final : public Clock {
 public:
  // Starts at an arbitrary non-zero monotonic instant and wall time.
  explicit FakeClock(int64_t wall_start_ms = 1'700'000'000'000)
      : mono_ns_(1'000'000'000), wall_start_ms_(wall_start_ms) {}

  MonoTime now() const override {
    return MonoTime(std::chrono::nanoseconds(mono_ns_.load(std::memory_order_acquire)));
  }
  // Wall time advances together with monotonic time.
  int64_t wall_ms() const override {
    return wall_start_ms_ + (mono_ns_.load(std::memory_order_acquire) - 1'000'000'000) / 1'000'000;
  }
  void advance(std::chrono::nanoseconds d) {
    mono_ns_.fetch_add(d.count(), std::memory_order_acq_rel);
  }
  void advance_ms(int64_t ms) { advance(std::chrono::milliseconds(ms)); }

 private:
  std::atomic<int64_t> mono_ns_;
  const int64_t wall_start_ms_;
};

}  // namespace rmon
