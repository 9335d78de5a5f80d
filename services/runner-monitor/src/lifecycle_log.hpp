#pragma once
// The monitor's per-runner lifecycle lines (runner added, state changed,
// removed) at INFO, rate limited so that a join storm (a monitor restart, a
// fleet rollout) neither floods the log nor slows ingest.
//
// Per kind of line, at most `burst` lines pass in each `period`; the rest are
// counted, and once the period is over one summary line says how many of each
// kind were held back. The summary is written by the next lifecycle line or
// by flush(), which the service calls a few times a second and on stop.
// The table calls this with no lock held (TableObserver's contract), so the
// lines are written outside every shard lock.
//
// Thread-safe.

#include <array>
#include <chrono>
#include <cstdint>
#include <string_view>

#include "annotated_mutex.hpp"
#include "rmon/clock.hpp"
#include "runner_table.hpp"

namespace rmon::monitor {

struct LifecycleLogOptions {
  int burst = 20;  // lines of each kind per period
  Millis period{1000};
};

class LifecycleLog final : public TableObserver {
 public:
  explicit LifecycleLog(const Clock& clock, LifecycleLogOptions opts = {});

  void on_added(std::string_view runner_id, std::string_view task_id, uint64_t attempt,
                RunnerState state) override;
  void on_state_changed(std::string_view runner_id, std::string_view task_id, uint64_t attempt,
                        RunnerState from, RunnerState to) override;
  void on_removed(std::string_view runner_id, bool expired) override;

  // Writes the summary of a period that is over, if anything was held back
  // in it; with `now_or_never`, whatever is held back so far (on stop).
  void flush(bool now_or_never = false);

  // Lines held back since construction, summarised or not.
  uint64_t held_back_total() const;

 private:
  enum Kind : uint8_t { kAdded, kStateChanged, kRemoved, kKinds };
  struct Summary {
    std::array<uint64_t, kKinds> held{};
    int64_t window_ms = 0;
    bool any() const { return held[kAdded] + held[kStateChanged] + held[kRemoved] > 0; }
  };
  // Whether a line of `kind` passes now; `closed` receives the held-back
  // counts of a period this call found over.
  bool admit(Kind kind, Summary& closed);
  // Takes the held-back counts (under mu_) into `out` and starts a new
  // period at `now` when the current one is over or `force`.
  void close_window(MonoTime now, bool force, Summary& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void write(const Summary& s);

  const Clock& clock_;
  const LifecycleLogOptions opts_;
  mutable Mutex mu_;
  MonoTime window_start_ ABSL_GUARDED_BY(mu_);
  std::array<int, kKinds> used_ ABSL_GUARDED_BY(mu_){};
  std::array<uint64_t, kKinds> held_ ABSL_GUARDED_BY(mu_){};
  uint64_t held_total_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace rmon::monitor
