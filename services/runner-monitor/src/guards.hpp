#pragma once
// The monitor's guards against convicting live runners because of its own
// trouble. The dispatcher asks both before every sweep; while either holds,
// the sweep convicts nobody (runners past their deadline stay SUSPECT and are
// looked at again a check later).
//
// StormBrake: when more than `share` of the live runners (and at least
// `min_runners` of them) are suspect, i.e. silent for more than the suspect
// ratio of their timeout, the monitor suspects itself or its network, not
// the runners: a real fleet does not lose half its members at once, a cut
// network or a stuck switch does. It releases when heartbeats return (the
// suspect share falls back to `share` or below; runners that came back are
// RUNNING again, and the rest get a grace of their own timeout, since their
// heartbeats may still be on the way; those still silent after it are
// convicted), or when an operator releases it, which convicts the held
// runners at once and keeps the brake off until the share has fallen back.
//
// StallGuard: when the dispatch loop woke more than `threshold` after it
// planned to, or ingest has not found its socket empty for that long
// (process paused, machine overloaded, ingest backlog), heartbeats that were
// sent may be waiting unread. It holds until ingest has drained its socket
// after the stall was seen, then gives every runner a grace of its own
// timeout (RunnerTable::grant_grace) before anyone can be convicted.
//
// Not thread-safe: used by the dispatch thread; they publish to MonitorStats.

#include <cstdint>
#include <optional>

#include "monitor_stats.hpp"
#include "rmon/clock.hpp"
#include "runner_table.hpp"

namespace rmon::monitor {

struct GuardOptions {
  double storm_share = 0.5;
  uint64_t storm_min_runners = 100;
  Millis stall_threshold{2000};
};

class StormBrake {
 public:
  StormBrake(const GuardOptions& opts, MonitorStats& stats) : opts_(opts), stats_(stats) {}
  // Decides for the next sweep, from the live runners' counts. When
  // heartbeats return it releases with a grace on `table` (from `now`): a
  // held runner whose heartbeat is merely still on its way is not convicted.
  bool hold(uint64_t running, uint64_t suspect, MonoTime now, int64_t wall_ms, RunnerTable& table);
  // The operator's release (takes effect at the next hold()).
  void release();
  bool engaged() const { return engaged_; }

 private:
  const GuardOptions opts_;
  MonitorStats& stats_;
  bool engaged_ = false;
  bool overridden_ = false;  // released by an operator, until the share falls back
};

class StallGuard {
 public:
  StallGuard(const GuardOptions& opts, MonitorStats& stats) : opts_(opts), stats_(stats) {}
  // Decides for the sweep at `now`. `planned` is when the dispatcher meant
  // to wake (nullopt when it did not sleep); `ingest_drained` when ingest
  // last found its socket empty. Grants the grace on `table` when a stall
  // ends.
  // (nullopt when no ingest loop runs).
  bool hold(MonoTime now, std::optional<MonoTime> planned, std::optional<MonoTime> ingest_drained,
            RunnerTable& table);
  bool stalled() const { return stalled_; }

 private:
  const GuardOptions opts_;
  MonitorStats& stats_;
  bool stalled_ = false;
  MonoTime seen_at_{};
};

}  // namespace rmon::monitor
