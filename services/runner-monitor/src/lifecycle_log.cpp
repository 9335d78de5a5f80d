#include "lifecycle_log.hpp"

#include <spdlog/spdlog.h>

namespace rmon::monitor {

LifecycleLog::LifecycleLog(const Clock& clock, LifecycleLogOptions opts)
    : clock_(clock), opts_(opts), window_start_(clock.now()) {}

void LifecycleLog::close_window(MonoTime now, bool force, Summary& out) {
  const bool over = now - window_start_ >= opts_.period;
  if (!over && !force) return;
  out.held = held_;
  out.window_ms = ms_between(window_start_, now);
  held_ = {};
  if (over) {
    used_ = {};
    window_start_ = now;
  }
}

bool LifecycleLog::admit(Kind kind, Summary& closed) {
  const MonoTime now = clock_.now();
  MutexLock lock(mu_);
  close_window(now, false, closed);
  if (used_[kind] < opts_.burst) {
    ++used_[kind];
    return true;
  }
  ++held_[kind];
  ++held_total_;
  return false;
}

void LifecycleLog::write(const Summary& s) {
  spdlog::info(
      "runner lifecycle lines held back (rate limited) added={} state_changed={} removed={} "
      "window_ms={}",
      s.held[kAdded], s.held[kStateChanged], s.held[kRemoved], s.window_ms);
}

void LifecycleLog::flush(bool now_or_never) {
  Summary closed;
  {
    MutexLock lock(mu_);
    close_window(clock_.now(), now_or_never, closed);
  }
  if (closed.any()) write(closed);
}

uint64_t LifecycleLog::held_back_total() const {
  MutexLock lock(mu_);
  return held_total_;
}

void LifecycleLog::on_added(std::string_view runner_id, std::string_view task_id, uint64_t attempt,
                            RunnerState state) {
  if (!spdlog::should_log(spdlog::level::info)) return;
  Summary closed;
  const bool pass = admit(kAdded, closed);
  if (closed.any()) write(closed);
  if (!pass) return;
  spdlog::info("runner added runner_id={} task_id={} attempt={} state={}", runner_id, task_id,
               attempt, protocol::to_string(state));
}

void LifecycleLog::on_state_changed(std::string_view runner_id, std::string_view task_id,
                                    uint64_t attempt, RunnerState from, RunnerState to) {
  if (!spdlog::should_log(spdlog::level::info)) return;
  Summary closed;
  const bool pass = admit(kStateChanged, closed);
  if (closed.any()) write(closed);
  if (!pass) return;
  spdlog::info("runner state changed runner_id={} task_id={} attempt={} from={} to={}", runner_id,
               task_id, attempt, protocol::to_string(from), protocol::to_string(to));
}

void LifecycleLog::on_removed(std::string_view runner_id, bool expired) {
  if (!spdlog::should_log(spdlog::level::info)) return;
  Summary closed;
  const bool pass = admit(kRemoved, closed);
  if (closed.any()) write(closed);
  if (!pass) return;
  spdlog::info("runner removed runner_id={} reason={}", runner_id,
               expired ? "retention" : "control");
}

}  // namespace rmon::monitor
