#include "rmon/service/reconciler.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>

#include "rmon/protocol/codec.hpp"
#include "rmon/zmq_util.hpp"

namespace rmon {

std::string_view to_string(Verdict v) {
  static constexpr std::string_view kNames[kVerdictCount] = {"alive",     "settling", "ended",
                                                             "timed_out", "gone",     "undecided"};
  return kNames[static_cast<std::size_t>(v)];
}

Reconciler::Reconciler(zmq::context_t& ctx, std::vector<std::string> monitors,
                       ReconcileOptions options, std::optional<security::ClientKeys> keys)
    : options_(options) {
  SocketOptions o;
  o.send_hwm = 4;
  o.recv_hwm = 4;
  peers_.reserve(monitors.size());
  for (std::string& m : monitors) {
    auto socket =
        std::make_unique<security::ClientSocket>(ctx, zmq::socket_type::dealer, o, m, keys);
    peers_.push_back(Peer{std::move(m), std::move(socket), false, {}, std::nullopt});
  }
}

std::optional<ReconcileCursor> Reconciler::wants_page(MonoTime now) const {
  if (in_flight_ || peers_.empty()) return std::nullopt;
  if (round_active_) return cursor_;
  if (now < next_round_) return std::nullopt;
  return ReconcileCursor{};
}

void Reconciler::give_page(CandidatePage page, MonoTime now) {
  if (!round_active_) {
    round_active_ = true;
    round_started_ = now;
    ++counters_.rounds;
  }
  cursor_ = std::move(page.next);
  cursor_.start = false;
  last_page_ = page.last || page.keys.empty();
  page_ = std::move(page.keys);
  // No candidates (a round with none, or a replica that does not reconcile
  // now): a `ping` instead, so that whether each monitor answers is known
  // all the same (readiness).
  pinging_ = page_.empty();
  protocol::ControlRequest req;
  req.op = pinging_ ? protocol::Op::kPing : protocol::Op::kLookup;
  if (!pinging_) {
    req.runner_ids.emplace();
    req.runner_ids->reserve(page_.size());
    for (const LeaseKey& k : page_) req.runner_ids->push_back(k.runner_id);
  }
  const std::string frame = protocol::encode_control_request(req);
  for (Peer& p : peers_) {
    p.answer.reset();
    p.sent_at = now;
    // A full pipe (monitor away) is the same as no answer, seen at the timeout.
    p.waiting = true;
    if (!pinging_) ++counters_.lookups;
    (void)send_frames(p.socket->socket(), {frame});
  }
  in_flight_ = true;
}

std::size_t Reconciler::answering(MonoTime now) const {
  // Answered within the last two rounds (and a timeout): one missed answer
  // is not yet "unreachable".
  const Millis window = 2 * options_.interval + options_.monitor_timeout;
  return static_cast<std::size_t>(std::count_if(peers_.begin(), peers_.end(), [&](const Peer& p) {
    return p.answered && now - p.answered_at <= window;
  }));
}

MonoTime Reconciler::next_due() const {
  if (!in_flight_) return round_active_ ? MonoTime{} : next_round_;
  MonoTime due = MonoTime::max();
  for (const Peer& p : peers_) {
    if (p.waiting) due = std::min(due, p.sent_at + options_.monitor_timeout);
  }
  return due;
}

void Reconciler::poll(MonoTime now, std::vector<Judged>& out) {
  // A monitor that refused our key: logged, and its socket replaced with
  // backoff (a lookup in flight on it then ends at the timeout).
  for (Peer& p : peers_) (void)p.socket->maintain();
  if (!in_flight_) return;
  for (Peer& p : peers_) {
    if (!p.waiting) continue;
    zmq::message_t reply;
    while (p.waiting && p.socket->socket().recv(reply, zmq::recv_flags::dontwait)) {
      p.waiting = false;
      if (pinging_) {
        auto r = protocol::decode_control_reply(reply.to_string_view());
        if (r && r->ok) {
          p.answered = true;
          p.answered_at = now;
        }
        continue;
      }
      auto r = protocol::decode_lookup_reply(reply.to_string_view());
      if (r && r->ok && r->runners.size() == page_.size()) {
        p.answer = Answer{std::move(r->runners), r->uptime_ms.value_or(UINT64_MAX)};
        p.answered = true;
        p.answered_at = now;
      } else {
        ++counters_.lookups_unanswered;
        spdlog::warn("monitor gave an unusable answer to lookup monitor={} reason={}", p.endpoint,
                     !r ? r.error().to_string()
                        : (r->ok ? "wrong number of runners" : r->error + ": " + r->detail));
      }
    }
    if (p.waiting && now - p.sent_at >= options_.monitor_timeout) {
      // No answer in time: a fresh socket drops whatever late reply is still
      // on its way.
      p.waiting = false;
      if (!pinging_) ++counters_.lookups_unanswered;
      p.socket->reconnect();
    }
  }
  if (std::none_of(peers_.begin(), peers_.end(), [](const Peer& p) { return p.waiting; })) {
    finish_page(out, now);
  }
}

void Reconciler::finish_page(std::vector<Judged>& out, MonoTime now) {
  for (std::size_t i = 0; i < page_.size(); ++i) out.push_back(judge(i));
  page_.clear();
  in_flight_ = false;
  if (last_page_) {
    round_active_ = false;
    next_round_ = round_started_ + options_.interval;
    if (next_round_ < now) next_round_ = now;  // a round longer than the interval
  }
}

Judged Reconciler::judge(std::size_t i) const {
  const LeaseKey& key = page_[i];
  bool alive = false, timed_out = false, settling = false, unanswered = false;
  std::optional<protocol::RunnerState> ended;
  const auto settle = static_cast<uint64_t>(options_.end_settle.count());
  const auto min_uptime = static_cast<uint64_t>(options_.min_monitor_uptime.count());
  for (const Peer& p : peers_) {
    if (!p.answer) {
      unanswered = true;
      continue;
    }
    assert(p.answer->runners.size() == page_.size());  // checked at receipt
    const auto& e = p.answer->runners[i];
    if (!e) {
      // Unknown: believed only from a monitor up long enough to have heard
      // every live runner.
      if (p.answer->uptime_ms < min_uptime) unanswered = true;
      continue;
    }
    if (e->task_id != key.task_id || e->attempt != key.attempt) continue;  // moved on
    switch (e->state) {
      case protocol::RunnerState::kRunning:
      case protocol::RunnerState::kSuspect:
        alive = true;
        break;
      case protocol::RunnerState::kCompleted:
      case protocol::RunnerState::kFailed:
        if (e->timed_out) {
          timed_out = true;
        } else if (e->state_for_ms >= settle) {
          ended = e->state;
        } else {
          settling = true;
        }
        break;
    }
  }
  Judged j{key, Verdict::kUndecided, {}};
  if (alive) {
    j.verdict = Verdict::kAlive;
  } else if (timed_out) {
    j.verdict = Verdict::kTimedOut;
    j.why = "runner " + key.runner_id + " timed out (found by reconciliation)";
  } else if (ended) {
    j.verdict = Verdict::kEnded;
    j.why = "runner " + key.runner_id + " ended (" + std::string(protocol::to_string(*ended)) +
            ") without completing the task";
  } else if (settling) {
    j.verdict = Verdict::kSettling;
  } else if (!unanswered) {
    j.verdict = Verdict::kGone;
    j.why = "runner " + key.runner_id + " lost: no monitor knows it on this attempt";
  }
  return j;
}

}  // namespace rmon
