#pragma once
// The counters behind the overview's chart: sampled from the services'
// `stats` every --history-interval-ms into a ring that keeps the last
// --history-span-ms (an hour: 361 samples of 40 bytes). The page turns two
// neighbouring samples into a rate per minute. A counter a service did not
// answer for is -1 in that sample (a gap in the chart, not a drop to zero).
//
// Thread-safe: one sampling thread, any number of readers.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace rmon::console {

struct Sample {
  int64_t at_ms = 0;         // wall clock
  int64_t timeouts = -1;     // monitor: runners timed out
  int64_t reassigned = -1;   // task-queue: tasks requeued after a lost runner
  int64_t completed = -1;    // task-queue: tasks completed (ended, as counted now)
  int64_t slots_freed = -1;  // pool-manager: slots freed by timeout events
};

class History {
 public:
  using SampleFn = std::function<Sample()>;
  History(std::size_t capacity, uint64_t interval_ms, SampleFn sample);
  ~History();

  void start();  // samples at once, then every interval
  void stop();

  void add(const Sample& s);
  // {"interval_ms": N, "samples": [[at_ms, timeouts, reassigned, completed, slots_freed], ...]}
  std::string to_json() const;

 private:
  void run();

  const std::size_t capacity_;
  const uint64_t interval_ms_;
  const SampleFn sample_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Sample> samples_;  // guarded by mu_, oldest first, at most capacity_
  bool stopping_ = false;       // guarded by mu_
  std::thread thread_;
};

}  // namespace rmon::console
