#pragma once
// Waiting on observable state in tests: polls `pred` until it holds or the
// deadline passes. Never a fixed sleep standing in for synchronisation.

#include <chrono>
#include <thread>

namespace rmon::testing {

template <class Pred>
bool wait_until(Pred&& pred, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace rmon::testing
