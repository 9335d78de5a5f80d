#include "rmon/store/commit_syncer.hpp"

#include <pthread.h>

#include <chrono>
#include <iterator>
#include <utility>

namespace rmon::store {

CommitSyncer::~CommitSyncer() { stop(); }

void CommitSyncer::start(const char* thread_name) {
  thread_ = std::thread([this, thread_name] { run(thread_name); });
}

void CommitSyncer::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  done_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t CommitSyncer::commit() {
  uint64_t ticket;
  {
    std::lock_guard lock(mu_);
    ticket = ++requested_;
  }
  cv_.notify_one();
  return ticket;
}

std::vector<CommitSyncer::Settled> CommitSyncer::take_settled() {
  std::lock_guard lock(mu_);
  std::vector<Settled> out(std::make_move_iterator(settled_.begin()),
                           std::make_move_iterator(settled_.end()));
  settled_.clear();
  return out;
}

void CommitSyncer::wait(uint64_t ticket) {
  std::unique_lock lock(mu_);
  done_cv_.wait(lock, [&] { return settled_through_ >= ticket || failure_ || stop_; });
}

std::optional<std::string> CommitSyncer::failure() const {
  std::lock_guard lock(mu_);
  return failure_;
}

void CommitSyncer::run(const char* thread_name) {
  pthread_setname_np(pthread_self(), thread_name);
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] {
      return stop_ || requested_ > settled_through_ || !healthy_.load(std::memory_order_relaxed);
    });
    if (stop_) break;
    // Every ticket taken so far was taken after its commit returned.
    const uint64_t target = requested_;
    lock.unlock();
    const auto start = std::chrono::steady_clock::now();
    Flushed f = flush();
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    lock.lock();
    const uint64_t covered = target - settled_through_;
    if (f.outcome == Outcome::kFatal) {
      failure_ = std::move(f.why);
      healthy_.store(false, std::memory_order_release);
      done_cv_.notify_all();
      wake_.signal();
      break;
    }
    const bool durable = f.outcome == Outcome::kDurable;
    if (durable) {
      stats_.syncs.fetch_add(1, std::memory_order_relaxed);
      stats_.tickets.fetch_add(covered, std::memory_order_relaxed);
      stats_.last_us.store(static_cast<uint64_t>(us), std::memory_order_relaxed);
      durable_.store(target, std::memory_order_release);
    } else {
      stats_.lost.fetch_add(covered, std::memory_order_relaxed);
    }
    if (covered > 0) {
      settled_.push_back({target, durable, std::move(f.why)});
      settled_through_ = target;
      done_cv_.notify_all();
    }
    healthy_.store(durable, std::memory_order_release);
    wake_.signal();
    if (!durable) cv_.wait_for(lock, kRetryAfterLost, [&] { return stop_; });
  }
}

}  // namespace rmon::store
