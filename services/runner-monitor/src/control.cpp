#include "control.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "rmon/protocol/codec.hpp"

namespace rmon::monitor {

using protocol::ControlReply;
using protocol::ControlRequest;
using protocol::Op;

namespace {

ControlReply from_error(ControlError e, const std::string& runner_id) {
  switch (e) {
    case ControlError::kNone:
      return ControlReply{};
    case ControlError::kNotFound:
      return ControlReply::failure("not_found", "no runner '" + runner_id + "'");
    case ControlError::kExists:
      return ControlReply::failure("exists", "runner '" + runner_id + "' is live");
    case ControlError::kConflict:
      return ControlReply::failure(
          "conflict", "runner '" + runner_id + "' timed out for this attempt; it stays failed");
    case ControlError::kBadRequest:
      break;
  }
  return ControlReply::failure("bad_request", "state must be running, completed or failed");
}

}  // namespace

std::string ControlHandler::handle(std::string_view request, const OpCheck& check) {
  stats_.control_requests.fetch_add(1, std::memory_order_relaxed);
  auto req = protocol::decode_control_request(request);
  ControlReply reply;
  if (!req) {
    const auto& err = req.error();
    std::string detail = err.to_string();
    if (err.field == "runner_ids") {
      detail += fmt::format(" (a lookup takes 1 to {} runner ids, each a string of 1 to {} bytes)",
                            protocol::kMaxLookupIds, protocol::kMaxIdBytes);
    }
    reply = ControlReply::failure(
        err.reason == protocol::Reason::kUnknownOp ? "unknown_op" : "bad_request",
        std::move(detail));
    uint64_t suppressed = 0;
    if (warn_limit_.allow("control", clock_.now(), suppressed)) {
      spdlog::warn("control request rejected reason={} suppressed={}", err.to_string(), suppressed);
    }
  } else if (auto refused = check ? check(req->op) : std::nullopt) {
    reply = ControlReply::failure("forbidden", std::move(*refused));
  } else {
    try {
      reply = handle(req.value());
    } catch (const std::exception& e) {
      // A bug, not bad input: answer and keep serving.
      reply = ControlReply::failure("internal", e.what());
    }
  }
  if (!reply.ok) stats_.control_errors.fetch_add(1, std::memory_order_relaxed);
  return protocol::encode_control_reply(reply);
}

ControlReply ControlHandler::handle(const ControlRequest& req) {
  ControlReply reply;
  const MonoTime now = clock_.now();
  switch (req.op) {
    case Op::kPing:
      reply.version = protocol::kVersion;
      break;
    case Op::kGet: {
      auto v = table_.get(*req.runner_id, now);
      if (!v) return from_error(ControlError::kNotFound, *req.runner_id);
      reply.runner = std::move(*v);
      break;
    }
    case Op::kList: {
      const std::size_t limit =
          std::min<uint64_t>(req.limit.value_or(kDefaultListLimit), kMaxListLimit);
      // Bounded in bytes as well as count: a reply of full-sized runners
      // stays well within what a client accepts (kMaxReplyFrame).
      auto page =
          table_.list({req.state, req.pool}, limit, now, req.after, protocol::kMaxListReplyBytes);
      reply.runners = std::move(page.runners);
      reply.more = page.more;
      break;
    }
    case Op::kCount:
      reply.count = table_.count({req.state, req.pool});
      break;
    case Op::kAdd: {
      if (auto e = table_.add(*req.runner, now, clock_.wall_ms()); e != ControlError::kNone) {
        return from_error(e, req.runner->runner.runner_id);
      }
      break;
    }
    case Op::kRemove:
      reply.removed = table_.remove(*req.runner_id);
      break;
    case Op::kSetState: {
      auto e = table_.set_state(*req.runner_id, *req.state, now, clock_.wall_ms());
      if (e != ControlError::kNone) return from_error(e, *req.runner_id);
      break;
    }
    case Op::kStats:
      return stats_reply();
    case Op::kLookup:
      // The decoder enforces this; a request built in process may not.
      if (!req.runner_ids || req.runner_ids->empty() ||
          req.runner_ids->size() > protocol::kMaxLookupIds) {
        return ControlReply::failure(
            "bad_request",
            "a lookup takes 1 to " + std::to_string(protocol::kMaxLookupIds) + " runner ids");
      }
      reply.lookup = table_.lookup(*req.runner_ids, now);
      reply.uptime_ms = static_cast<uint64_t>(std::max<int64_t>(0, ms_between(started_, now)));
      stats_.lookups.fetch_add(1, std::memory_order_relaxed);
      stats_.lookup_ids.fetch_add(req.runner_ids->size(), std::memory_order_relaxed);
      break;
    case Op::kReleaseBrake: {
      // Taken by the dispatch thread before its next sweep.
      const bool engaged = stats_.brake_engaged.load(std::memory_order_relaxed);
      brake_release_.post();
      spdlog::warn("storm brake release requested by an operator engaged={} held={}", engaged,
                   stats_.brake_held.load(std::memory_order_relaxed));
      reply.stats = {{"brake_engaged", engaged ? 1 : 0},
                     {"brake_held", stats_.brake_held.load(std::memory_order_relaxed)}};
      break;
    }
  }
  return reply;
}

ControlReply ControlHandler::stats_reply() const {
  const TableCounters t = table_.counters();
  auto load = [](const auto& a) {
    return static_cast<uint64_t>(a.load(std::memory_order_relaxed));
  };
  uint64_t pending = 0, redeliveries = 0, acks = 0, unreadable = 0;
  for (std::size_t g = 0; g < stats_.groups.size(); ++g) {
    pending += load(stats_.per_group[g].pending);
    redeliveries += load(stats_.per_group[g].redeliveries);
    acks += load(stats_.per_group[g].acks);
    unreadable += load(stats_.per_group[g].unreadable);
  }
  ControlReply r;
  r.stats = {
      {"heartbeats", t.accepted},
      {"rejected", stats_.rejected_total()},
      {"duplicates", t.duplicates},
      {"late", t.late},
      {"stale_attempts", t.stale_attempts},
      {"timeouts", t.timeouts},
      {"runners", table_.size()},
      {"running", static_cast<uint64_t>(t.by_state[0])},
      {"suspect", static_cast<uint64_t>(t.by_state[1])},
      {"completed", static_cast<uint64_t>(t.by_state[2])},
      {"failed", static_cast<uint64_t>(t.by_state[3])},
      {"events_pending", pending},
      {"redeliveries", redeliveries},
      {"acks", acks},
      {"outbox_unreadable", unreadable},
      {"brake_engaged", load(stats_.brake_engaged)},
      {"brake_held", load(stats_.brake_held)},
      {"brake_since_ms", load(stats_.brake_since_ms)},
      {"brake_engagements", load(stats_.brake_engagements)},
      {"stalled", load(stats_.stalled)},
      {"stalls", load(stats_.stalls)},
      {"stall_hold_expired", load(stats_.stall_hold_expired)},
      {"backlog_alerts", load(stats_.backlog_alerts)},
      {"lookups", load(stats_.lookups)},
  };
  // Each group's backlog: its unacknowledged events (on disk).
  for (std::size_t g = 0; g < stats_.groups.size(); ++g) {
    r.stats.emplace_back("pending_" + stats_.groups[g], load(stats_.per_group[g].pending));
  }
  return r;
}

}  // namespace rmon::monitor
