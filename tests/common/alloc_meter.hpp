#pragma once
// Counts every heap block requested by the calling thread while armed, at
// malloc level (msgpack's zone takes its chunks straight from malloc). Only
// for the hostile_input_test binary: it replaces the process's malloc.

#include <cstddef>

namespace alloc_meter {
extern thread_local bool armed;
extern thread_local std::size_t bytes;
// False where no meter could be installed (then size tests skip).
bool available();

// Bytes allocated on this thread while `fn` runs.
template <class Fn>
std::size_t bytes_allocated_by(Fn&& fn) {
  bytes = 0;
  armed = true;
  fn();
  armed = false;
  return bytes;
}
}  // namespace alloc_meter

#define SKIP_WITHOUT_ALLOC_METER() \
  if (!alloc_meter::available()) GTEST_SKIP() << "no allocation meter on this platform"
