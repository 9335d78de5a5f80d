#include "rmon/security/keyring_watcher.hpp"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace rmon::security {
namespace {

constexpr uint32_t kWatchMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                IN_CREATE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

KeyringWatcher::KeyringWatcher(Keyring& keyring, OnReload on_reload,
                               std::chrono::milliseconds debounce)
    : keyring_(keyring), on_reload_(std::move(on_reload)), debounce_(debounce) {
  inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (inotify_fd_ < 0 || wake_fd_ < 0 || !arm_watch()) {
    const std::error_code ec(errno, std::generic_category());
    close_fd(inotify_fd_);
    close_fd(wake_fd_);
    throw std::system_error(ec, "cannot watch " + keyring_.dir().string());
  }
  thread_ = std::thread([this] { run(); });
}

KeyringWatcher::~KeyringWatcher() {
  stopping_.store(true, std::memory_order_release);
  trigger();
  thread_.join();
  close_fd(inotify_fd_);
  close_fd(wake_fd_);
}

void KeyringWatcher::trigger() {
  const uint64_t one = 1;
  // Cannot fail short of a counter overflow; nothing to do about it here.
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

bool KeyringWatcher::arm_watch() {
  watch_ = ::inotify_add_watch(inotify_fd_, keyring_.dir().c_str(), kWatchMask);
  return watch_ >= 0;
}

void KeyringWatcher::run() {
  using Clock = std::chrono::steady_clock;
  // When a debounced reload is due; max() when none is. (Not an optional:
  // GCC 12 warns, wrongly, that it may be read uninitialised.)
  static constexpr Clock::time_point kNone = Clock::time_point::max();
  Clock::time_point due = kNone;
  const auto reload = [this, &due](std::string_view cause) {
    due = kNone;
    if (watch_ < 0) arm_watch();  // the directory was replaced: watch the new one
    const ReloadResult result = keyring_.reload();
    if (on_reload_) {
      on_reload_(result, cause);
    } else {
      log_reload(keyring_, result, cause);
    }
    reloads_.fetch_add(1, std::memory_order_release);
  };
  std::array<pollfd, 2> fds{{{inotify_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}}};
  alignas(inotify_event) char buf[4096];
  while (true) {
    int timeout = -1;
    if (due != kNone) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(due - Clock::now());
      timeout = static_cast<int>(std::max<int64_t>(0, left.count()));
    }
    if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) {
      spdlog::error("keyring watcher stopped: poll: {}", std::strerror(errno));
      return;
    }
    if (fds[1].revents & POLLIN) {
      uint64_t count = 0;
      [[maybe_unused]] const ssize_t n = ::read(wake_fd_, &count, sizeof count);
      if (stopping_.load(std::memory_order_acquire)) return;
      reload("trigger");
    }
    if (fds[0].revents & POLLIN) {
      ssize_t n;
      while ((n = ::read(inotify_fd_, buf, sizeof buf)) > 0) {
        for (char* p = buf; p < buf + n;) {
          const auto* ev = reinterpret_cast<const inotify_event*>(p);
          // The directory went away (or moved): watch its path again at the
          // next reload. An old watch's IN_IGNORED has an old wd.
          if (ev->wd == watch_ && (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF))) {
            if (watch_ >= 0) ::inotify_rm_watch(inotify_fd_, watch_);
            watch_ = -1;
          }
          p += sizeof(inotify_event) + ev->len;
        }
      }
      due = Clock::now() + debounce_;
    }
    if (due != kNone && Clock::now() >= due) reload("directory changed");
  }
}

}  // namespace rmon::security
