#pragma once
// An eventfd: any thread can signal it; the thread that sleeps polls its
// fd() (zmq_poll or poll) next to its sockets, then drains it.

#include <cstdint>

namespace rmon {

class WakeSignal {
 public:
  WakeSignal();  // throws std::system_error when no eventfd can be made
  ~WakeSignal();
  WakeSignal(const WakeSignal&) = delete;
  WakeSignal& operator=(const WakeSignal&) = delete;
  void signal();  // thread-safe, never blocks
  void drain();   // clears pending signals
  int fd() const { return fd_; }

 private:
  int fd_;
};

}  // namespace rmon
