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
// It holds at most `stall_max_hold` (default 30 s): an ingest that has not
// drained its socket for that long is not catching up (the machine cannot
// keep up with the fleet), holding longer would only make every real timeout
// later, and the guard cannot tell live runners from dead ones any better
// then. So it gives up with an ERROR (rmon_stall_hold_expired_total) and
// convicts runners past their deadline at once, without a grace: some may
// be alive, their heartbeats still unread. 30 s is fifteen times the
// default threshold, far longer than a real pause (a GC, a VM migration, a
// few seconds of overload), and half the default runner timeout. Until
// ingest has drained again, its lag alone starts no new stall (a late
// dispatch loop still does).
//
// Not thread-safe: used by the dispatch thread; they publish to MonitorStats.
// The one way in from another thread is the brake's BrakeReleaseRequest.

#include <atomic>
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
  Millis stall_max_hold{30'000};  // a stall holds at most this long (see StallGuard)
};

// An operator's request to release the storm brake: a mailbox of one flag,
// posted by the control thread, taken by the dispatch thread before its next
// sweep (StormBrake::hold). Requests posted before it is taken count once.
// Thread-safe.
class BrakeReleaseRequest {
 public:
  void post() { requested_.store(true, std::memory_order_release); }
  // True once per posted request (clears it).
  bool take() { return requested_.exchange(false, std::memory_order_acq_rel); }

 private:
  std::atomic<bool> requested_{false};
};

class StormBrake {
 public:
  StormBrake(const GuardOptions& opts, MonitorStats& stats) : opts_(opts), stats_(stats) {}
  // Decides for the next sweep, from the live runners' counts, after taking
  // an operator's release request. When heartbeats return it releases with a
  // grace on `table` (from `now`): a held runner whose heartbeat is merely
  // still on its way is not convicted.
  bool hold(uint64_t running, uint64_t suspect, MonoTime now, int64_t wall_ms, RunnerTable& table);
  // Where another thread (control) posts an operator's release; the brake
  // takes it at its next hold(). Lives as long as the brake.
  BrakeReleaseRequest& release_request() { return release_request_; }
  bool engaged() const { return engaged_; }

 private:
  // The operator's release, taken from release_request().
  void release();

  const GuardOptions opts_;
  MonitorStats& stats_;
  BrakeReleaseRequest release_request_;
  bool engaged_ = false;
  bool overridden_ = false;  // released by an operator, until the share falls back
};

class StallGuard {
 public:
  StallGuard(const GuardOptions& opts, MonitorStats& stats) : opts_(opts), stats_(stats) {}
  // Decides for the sweep at `now`. `planned` is when the dispatcher meant
  // to wake (nullopt when it did not sleep); `ingest_drained` when ingest
  // last found its socket empty (nullopt when no ingest loop runs). Grants
  // the grace on `table` when a stall ends; gives up after the max hold.
  bool hold(MonoTime now, std::optional<MonoTime> planned, std::optional<MonoTime> ingest_drained,
            RunnerTable& table);
  bool stalled() const { return stalled_; }

 private:
  const GuardOptions opts_;
  MonitorStats& stats_;
  bool stalled_ = false;
  MonoTime seen_at_{};
  bool gave_up_ = false;  // the last hold expired; ingest has not drained since
  MonoTime gave_up_at_{};
};

}  // namespace rmon::monitor
