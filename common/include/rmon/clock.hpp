#pragma once
// Time as an injected dependency. Timeout, suspect, redelivery and retention
// logic read a Clock so tests can drive time by hand (see FakeClock).

#include <chrono>
#include <cstdint>

namespace rmon {

using MonoTime = std::chrono::steady_clock::time_point;
using Millis = std::chrono::milliseconds;

// Thread-safe in every implementation.
class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time: the only source for deadlines.
  virtual MonoTime now() const = 0;
  // Unix epoch milliseconds, for timestamps that go on the wire.
  virtual int64_t wall_ms() const = 0;
};

// The real clocks: steady_clock and system_clock.
class SystemClock final : public Clock {
 public:
  MonoTime now() const override { return std::chrono::steady_clock::now(); }
  int64_t wall_ms() const override {
    return std::chrono::duration_cast<Millis>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  // A process-wide instance, for services that take `const Clock&`.
  static const SystemClock& instance() {
    static const SystemClock clock;
    return clock;
  }
};

// Milliseconds between two monotonic instants (negative when b is before a).
inline int64_t ms_between(MonoTime a, MonoTime b) {
  return std::chrono::duration_cast<Millis>(b - a).count();
}

}  // namespace rmon
