// The allocation meter behind hostile_input tests (see alloc_meter.hpp).

#include "alloc_meter.hpp"

// --- Allocation meter ---------------------------------------------------------
// Counts every heap block requested by the calling thread while armed. It sits
// at malloc level, not operator new: msgpack's zone takes its chunks straight
// from malloc, so an operator-new counter could never see the allocations this
// file is about. Sanitizer builds own malloc, so there the meter uses their
// allocation hooks; elsewhere it interposes glibc's malloc.
namespace alloc_meter {
namespace {
// Kept inside this file: extern thread_local variables shared across files
// trip UBSan's null checks on their access wrappers under GCC.
thread_local bool armed = false;
thread_local std::size_t bytes = 0;
}  // namespace
inline void note(std::size_t n) {
  if (armed) bytes += n;
}
}  // namespace alloc_meter

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define RMON_SANITIZER_MALLOC 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RMON_SANITIZER_MALLOC 1
#endif

#if defined(RMON_SANITIZER_MALLOC)
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*,
                                                                             std::size_t),
                                                         void (*free_hook)(const volatile void*));
namespace {
void on_malloc(const volatile void*, std::size_t size) { alloc_meter::note(size); }
void on_free(const volatile void*) {}
[[maybe_unused]] const bool kHooksInstalled =
    __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free) != 0;
}  // namespace
#define RMON_ALLOC_METER 1
#elif defined(__GLIBC__)
// Every replaced function forwards to glibc's own allocator, so blocks from
// functions left alone (memalign, ...) are still freed correctly.
extern "C" {
void* __libc_malloc(std::size_t size) noexcept;
void* __libc_calloc(std::size_t count, std::size_t size) noexcept;
void* __libc_realloc(void* p, std::size_t size) noexcept;
void __libc_free(void* p) noexcept;
void* malloc(std::size_t size) noexcept {
  alloc_meter::note(size);
  return __libc_malloc(size);
}
void* calloc(std::size_t count, std::size_t size) noexcept {
  alloc_meter::note(count * size);
  return __libc_calloc(count, size);
}
void* realloc(void* p, std::size_t size) noexcept {
  alloc_meter::note(size);
  return __libc_realloc(p, size);
}
void free(void* p) noexcept { __libc_free(p); }
}
#define RMON_ALLOC_METER 1
#endif

namespace alloc_meter {
void arm() {
  bytes = 0;
  armed = true;
}

std::size_t disarm() {
  armed = false;
  return bytes;
}

bool available() {
#if defined(RMON_ALLOC_METER)
  return true;
#else
  return false;
#endif
}
}  // namespace alloc_meter
