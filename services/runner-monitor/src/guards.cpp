#include "guards.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

namespace rmon::monitor {

bool StormBrake::hold(uint64_t running, uint64_t suspect, MonoTime now, int64_t wall_ms,
                      RunnerTable& table) {
  if (release_request_.take()) release();
  const uint64_t live = running + suspect;
  const bool storm = live >= opts_.storm_min_runners && live > 0 &&
                     static_cast<double>(suspect) > opts_.storm_share * static_cast<double>(live);
  if (overridden_) {
    if (!storm) overridden_ = false;  // back to normal: the brake works again
    return false;
  }
  if (storm && !engaged_) {
    engaged_ = true;
    stats_.brake_engagements.fetch_add(1, std::memory_order_relaxed);
    stats_.brake_since_ms.store(wall_ms, std::memory_order_relaxed);
    spdlog::error(
        "storm brake engaged: {} of {} live runners are silent (share above {}); holding their "
        "timeouts, suspecting this monitor or its network rather than the runners. It releases "
        "when heartbeats return, or with `rmon-ctl runners release-brake`",
        suspect, live, opts_.storm_share);
  } else if (!storm && engaged_) {
    engaged_ = false;
    stats_.brake_since_ms.store(0, std::memory_order_relaxed);
    table.grant_grace(now);
    spdlog::warn(
        "storm brake released: heartbeats returned ({} of {} live runners still silent); those "
        "still silent after a grace of their own timeout are convicted",
        suspect, live);
  }
  stats_.brake_engaged.store(engaged_, std::memory_order_relaxed);
  return engaged_;
}

void StormBrake::release() {
  stats_.brake_operator_releases.fetch_add(1, std::memory_order_relaxed);
  if (engaged_) {
    spdlog::warn("storm brake released by an operator: held runners are convicted now");
  } else {
    spdlog::info(
        "storm brake release requested while not engaged: it stays off until the "
        "silent share falls back");
  }
  engaged_ = false;
  overridden_ = true;
  stats_.brake_engaged.store(false, std::memory_order_relaxed);
  stats_.brake_since_ms.store(0, std::memory_order_relaxed);
}

bool StallGuard::hold(MonoTime now, std::optional<MonoTime> planned,
                      std::optional<MonoTime> drained, RunnerTable& table) {
  const MonoTime ingest_drained = drained.value_or(now);
  const Millis dispatch_lag =
      planned && now > *planned ? std::chrono::duration_cast<Millis>(now - *planned) : Millis(0);
  const Millis ingest_lag =
      now > ingest_drained ? std::chrono::duration_cast<Millis>(now - ingest_drained) : Millis(0);
  const bool ingest_late = ingest_lag > opts_.stall_threshold;
  if (gave_up_ && ingest_drained >= gave_up_at_ && !ingest_late) {
    gave_up_ = false;
    spdlog::warn("monitor stall over: ingest caught up after the stall guard gave up holding");
  }
  // After a hold expired, ingest still behind is not a new stall: only a
  // late dispatch loop is, until ingest has drained.
  if (!stalled_ && (dispatch_lag > opts_.stall_threshold || (ingest_late && !gave_up_))) {
    stalled_ = true;
    seen_at_ = now;
    const Millis lag = std::max(dispatch_lag, ingest_lag);
    stats_.stalls.fetch_add(1, std::memory_order_relaxed);
    stats_.last_stall_ms.store(static_cast<uint64_t>(lag.count()), std::memory_order_relaxed);
    stats_.stalled.store(true, std::memory_order_relaxed);
    spdlog::error(
        "monitor stalled: {} ({} ms, threshold {} ms); convicting nobody until ingest has read "
        "what queued meanwhile, then every runner gets a grace of its own timeout",
        dispatch_lag >= ingest_lag ? "the dispatch loop ran late (process paused or machine "
                                     "overloaded)"
                                   : "ingest has not caught up with its socket (backlog or "
                                     "paused)",
        lag.count(), opts_.stall_threshold.count());
  }
  if (!stalled_) return false;
  if (ingest_drained < seen_at_ || ingest_late) {
    if (now - seen_at_ < opts_.stall_max_hold) return true;
    stalled_ = false;
    gave_up_ = true;
    gave_up_at_ = now;
    stats_.stalled.store(false, std::memory_order_relaxed);
    stats_.stall_hold_expired.fetch_add(1, std::memory_order_relaxed);
    spdlog::error(
        "monitor stall hold expired: ingest has not caught up for {} ms (limit {} ms, "
        "--stall-max-hold-ms); convicting runners past their deadline now, without a grace: some "
        "may be alive with their heartbeats still unread",
        std::chrono::duration_cast<Millis>(now - seen_at_).count(), opts_.stall_max_hold.count());
    return false;
  }
  stalled_ = false;
  stats_.stalled.store(false, std::memory_order_relaxed);
  table.grant_grace(now);
  spdlog::warn(
      "monitor stall over: ingest caught up; runners silent since before now get a grace of their "
      "own timeout");
  return false;
}

}  // namespace rmon::monitor
