#include "ack_writer.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "rmon/protocol/codec.hpp"
#include "rmon/zmq_util.hpp"

namespace rmon::monitor {

AckWriter::AckWriter(OutboxStore& store, AckMailbox& mailbox, MonitorStats& stats,
                     const Clock& clock, AckWriterOptions opts, std::function<void()> on_posted)
    : store_(store),
      mailbox_(mailbox),
      stats_(stats),
      clock_(clock),
      opts_(opts),
      on_posted_(std::move(on_posted)) {}

void AckWriter::apply(const std::vector<std::string_view>& frames, const AckPermit& permit) {
  acks_.clear();
  uint64_t suppressed = 0;
  const auto& groups = store_.groups();
  for (std::size_t i = 0; i < frames.size(); ++i) {
    auto ack = protocol::decode_ack(frames[i]);
    if (!ack) {
      stats_.ack_frames_rejected.fetch_add(1, std::memory_order_relaxed);
      if (warn_limit_.allow("ack", clock_.now(), suppressed)) {
        spdlog::warn("ack rejected reason={} suppressed={}", ack.error().to_string(), suppressed);
      }
      continue;
    }
    if (permit && !permit(i, ack->group)) continue;
    const auto g = std::find(groups.begin(), groups.end(), ack->group) - groups.begin();
    if (static_cast<std::size_t>(g) == groups.size()) {
      stats_.acks_unknown.fetch_add(1, std::memory_order_relaxed);
      if (warn_limit_.allow("ack_unknown", clock_.now(), suppressed)) {
        spdlog::warn("ack for unknown group group={} event_id={} suppressed={}", ack->group,
                     ack->event_id, suppressed);
      }
      continue;
    }
    acks_.emplace_back(static_cast<std::size_t>(g), std::move(ack->event_id));
  }
  for (std::size_t from = 0; from < acks_.size(); from += opts_.chunk) {
    commit(from, std::min(acks_.size(), from + opts_.chunk));
  }
}

void AckWriter::commit(std::size_t from, std::size_t to) {
  chunk_.assign(std::make_move_iterator(acks_.begin() + static_cast<std::ptrdiff_t>(from)),
                std::make_move_iterator(acks_.begin() + static_cast<std::ptrdiff_t>(to)));
  mailbox_.begin();
  try {
    store_.ack(chunk_, clock_.wall_ms(), acked_);
  } catch (...) {
    mailbox_.abandon();
    throw;  // a storage error stops the monitor (MonitorService's thread guard)
  }
  posted_.clear();
  uint64_t suppressed = 0;
  const auto& groups = store_.groups();
  for (std::size_t i = 0; i < chunk_.size(); ++i) {
    auto& [g, event_id] = chunk_[i];
    if (acked_[i]) {
      stats_.per_group[g].acks.fetch_add(1, std::memory_order_relaxed);
      spdlog::debug("event acknowledged group={} event_id={}", groups[g], event_id);
      posted_.push_back({g, std::move(event_id)});
      continue;
    }
    // A repeated ack, or one for an event this monitor never sent: harmless.
    stats_.acks_unknown.fetch_add(1, std::memory_order_relaxed);
    if (warn_limit_.allow("ack_unknown", clock_.now(), suppressed)) {
      spdlog::warn("ack for unknown event group={} event_id={} suppressed={}", groups[g], event_id,
                   suppressed);
    }
  }
  mailbox_.post(posted_);
  if (on_posted_) on_posted_();
}

std::size_t AckWriter::prune_chunk(int64_t wall_ms) {
  const std::size_t n =
      store_.prune(wall_ms - opts_.tombstone_retention.count(), opts_.prune_chunk);
  stats_.outbox_pruned.fetch_add(n, std::memory_order_relaxed);
  return n;
}

void AckWriter::run(zmq::socket_t& acks, const std::atomic<bool>& stop, MessageGate* gate) {
  std::vector<zmq::message_t> frames;
  std::vector<zmq::message_t> batch;
  std::vector<std::string_view> views;
  AckPermit permit;
  if (gate != nullptr) {
    permit = [&](std::size_t i, std::string_view group) {
      return gate->allow(batch[i], security::ops::kAck, group);
    };
  }
  zmq::pollitem_t item{acks.handle(), 0, ZMQ_POLLIN, 0};
  MonoTime next_prune = clock_.now();  // at start too: a long downtime leaves many
  bool pruning = false;                // a prune is under way: one chunk per turn
  int64_t prune_wall_ms = 0;
  while (!stop.load(std::memory_order_relaxed)) {
    const MonoTime now = clock_.now();
    if (!pruning && now >= next_prune) {
      pruning = true;
      prune_wall_ms = clock_.wall_ms();
      next_prune = now + opts_.prune_every;
    }
    // While pruning, only look whether acks wait; otherwise sleep on them.
    const auto wait =
        pruning ? Millis(0)
                : std::clamp(std::chrono::ceil<Millis>(next_prune - now), Millis(0), Millis(100));
    if (zmq::poll(&item, 1, wait) > 0) {
      batch.clear();
      while (batch.size() < opts_.batch && recv_frames(acks, frames, zmq::recv_flags::dontwait)) {
        if (frames.size() != 1) {
          stats_.ack_frames_rejected.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        batch.push_back(std::move(frames[0]));
      }
      views.clear();
      for (const auto& m : batch) views.push_back(m.to_string_view());
      apply(views, permit);
    }
    if (pruning) pruning = prune_chunk(prune_wall_ms) == opts_.prune_chunk;
  }
}

}  // namespace rmon::monitor
