#pragma once
// Counts every heap block requested by the calling thread while armed, at
// malloc level (msgpack's zone takes its chunks straight from malloc). Only
// for the hostile_input_test binary: it replaces the process's malloc.

#include <cstddef>

namespace alloc_meter {
// False where no meter could be installed (then size tests skip).
bool available();
// Starts counting this thread's allocations from zero.
void arm();
// Stops counting; returns the bytes counted since arm().
std::size_t disarm();

// Bytes allocated on this thread while `fn` runs.
template <class Fn>
std::size_t bytes_allocated_by(Fn&& fn) {
  arm();
  fn();
  return disarm();
}
}  // namespace alloc_meter

#define SKIP_WITHOUT_ALLOC_METER() \
  if (!alloc_meter::available()) GTEST_SKIP() << "no allocation meter on this platform"
