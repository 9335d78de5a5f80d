#pragma once
// std::mutex with clang's thread-safety annotations (abseil's macros), so
// that -Wthread-safety checks what each lock guards.
//
// Why not absl::Mutex: the hot path keeps the lock it was measured with (a
// futex-based pthread mutex), and TSan models std::mutex natively, whereas
// Debian's abseil is built without TSan and its Mutex would be invisible to
// it (false races in `scripts/test.sh --tsan`).

#include <absl/base/thread_annotations.h>

#include <mutex>

namespace rmon::monitor {

class ABSL_LOCKABLE Mutex {
 public:
  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

 private:
  std::mutex mu_;
};

// Holds `mu` for its scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mu_;
};

}  // namespace rmon::monitor
