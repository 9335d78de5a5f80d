#include "rmon/wake_signal.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace rmon {

WakeSignal::WakeSignal() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

WakeSignal::~WakeSignal() { ::close(fd_); }

void WakeSignal::signal() {
  const uint64_t one = 1;
  // EAGAIN only when the counter is saturated: a wake-up is pending anyway.
  (void)!::write(fd_, &one, sizeof one);
}

void WakeSignal::drain() {
  uint64_t count;
  (void)!::read(fd_, &count, sizeof count);
}

}  // namespace rmon
