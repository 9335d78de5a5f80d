#pragma once
// Standing reconciliation (docs/PROTOCOL.md, "Reconciliation"): every
// interval, each lease or holding older than the first-heartbeat grace is
// looked up at every monitor (`lookup`, up to `batch` runner ids a request)
// and judged:
//
//   verdict    | when                                                 | effect
//   alive      | some monitor: running/suspect on (task, attempt)     | kept
//   timed out  | some monitor: failed by timeout on (task, attempt)   | taken back
//   ended      | some monitor: completed/failed on it >= end-settle   | taken back
//   settling   | ended, but for less than end-settle                  | kept, asked again
//   gone       | every monitor answered, none knows it on that        | taken back
//              | (task, attempt)                                      |
//   undecided  | none of the above and some monitor did not answer    | kept, asked again
//
// A monitor that has been up for less than `min_monitor_uptime` (the
// first-heartbeat grace: live runners have not all heartbeated to it yet)
// cannot say "unknown": its nil counts as no answer. A monitor that knows
// the runner on another task or attempt is believed at any age.
//
// A round with no candidates sends each monitor a `ping` instead, so that
// answering() knows which monitors answer (the service's readiness) even
// when there is nothing to look up.
//
// Batched and paced: one page of candidates at a time (the caller reads it
// from its store from a cursor, see wants_page), one request per monitor per
// page, never more than one in flight per monitor; a request unanswered
// within `monitor_timeout` counts as no answer and its socket is replaced, so
// a late reply can never be matched to the wrong page. A round ends after
// the last page; the next starts `interval` after the last one started.
//
// Not thread-safe: owned by the service's loop thread.

#include <zmq.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rmon/clock.hpp"
#include "rmon/protocol/limits.hpp"
#include "rmon/protocol/messages.hpp"
#include "rmon/security/client.hpp"

namespace rmon {

// A lease (task-queue) or a holding (pool-manager): who holds it for what.
struct LeaseKey {
  std::string runner_id;
  std::string task_id;
  uint64_t attempt = 0;
  auto operator<=>(const LeaseKey&) const = default;
};

enum class Verdict : uint8_t { kAlive, kSettling, kEnded, kTimedOut, kGone, kUndecided };
inline constexpr std::size_t kVerdictCount = 6;
std::string_view to_string(Verdict v);
// Ended, timed out and gone take the lease or holding back.
inline bool takes_back(Verdict v) {
  return v == Verdict::kEnded || v == Verdict::kTimedOut || v == Verdict::kGone;
}

struct Judged {
  LeaseKey key;
  Verdict verdict = Verdict::kUndecided;
  std::string why;  // for last_error and logs, when it takes back
};

// Where a page of candidates starts: the domain's own position (a task's
// seq; a holding's pool and slot). Empty at the start of a round.
struct ReconcileCursor {
  std::string text;
  int64_t num = 0;
  bool start = true;
};

struct CandidatePage {
  std::vector<LeaseKey> keys;
  ReconcileCursor next;
  bool last = true;  // no candidates after this page
};

struct ReconcileOptions {
  Millis interval{10'000};
  Millis end_settle{10'000};
  Millis monitor_timeout{2'000};
  Millis min_monitor_uptime{30'000};
  std::size_t batch = protocol::kMaxLookupIds;
};

struct ReconcileCounters {
  uint64_t rounds = 0;
  uint64_t lookups = 0;             // requests sent
  uint64_t lookups_unanswered = 0;  // timed out or unusable
};

class Reconciler {
 public:
  // Connects one DEALER per monitor control endpoint, a CURVE client with
  // `keys` (--security curve). The first round may start at once.
  Reconciler(zmq::context_t& ctx, std::vector<std::string> monitors, ReconcileOptions options,
             std::optional<security::ClientKeys> keys = std::nullopt);

  // The cursor to read the next page of candidates from, when one is wanted
  // now (a round is due or under way, and no page is in flight).
  std::optional<ReconcileCursor> wants_page(MonoTime now) const;
  // The page read from that cursor; sends it to every monitor.
  void give_page(CandidatePage page, MonoTime now);

  std::size_t monitor_count() const { return peers_.size(); }
  zmq::socket_t& socket(std::size_t i) { return peers_[i].socket->socket(); }

  // Reads replies, expires requests past the timeout; when every monitor
  // has answered (or not in time) the page's verdicts are appended to `out`.
  // Call when a socket is readable and at least at next_due().
  void poll(MonoTime now, std::vector<Judged>& out);
  // When poll() or wants_page() next has work.
  MonoTime next_due() const;

  // Monitors that answered (a lookup or, with no candidates, a ping) within
  // the last two intervals and a timeout.
  std::size_t answering(MonoTime now) const;

  const ReconcileCounters& counters() const { return counters_; }
  const ReconcileOptions& options() const { return options_; }

 private:
  struct Answer {
    std::vector<std::optional<protocol::LookupEntry>> runners;
    uint64_t uptime_ms = UINT64_MAX;  // a monitor that does not say is taken as old
  };
  struct Peer {
    std::string endpoint;
    std::unique_ptr<security::ClientSocket> socket;
    bool waiting = false;
    MonoTime sent_at{};
    std::optional<Answer> answer;
    bool answered = false;  // ever
    MonoTime answered_at{};
  };
  Judged judge(std::size_t i) const;
  void finish_page(std::vector<Judged>& out, MonoTime now);

  const ReconcileOptions options_;
  std::vector<Peer> peers_;
  std::vector<LeaseKey> page_;  // in flight
  bool in_flight_ = false;
  bool pinging_ = false;  // the request in flight is a ping (no candidates)
  bool round_active_ = false;
  bool last_page_ = true;
  ReconcileCursor cursor_;
  MonoTime round_started_{};
  MonoTime next_round_{};  // epoch: the first round starts at once
  ReconcileCounters counters_;
};

}  // namespace rmon
