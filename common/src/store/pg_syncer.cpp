#include "rmon/store/pg_syncer.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <utility>

namespace rmon::store {

namespace {

PgDb::Options syncer_options() {
  PgDb::Options o;
  o.application_name = "rmon-syncer";
  return o;
}

// After a failed flush, the next try waits this long (new tickets gather).
constexpr auto kRetryEvery = std::chrono::milliseconds(100);

std::string server_start(PgDb& db) {
  return db.exec("SELECT pg_postmaster_start_time()::text")[0][0].c_str();
}

}  // namespace

PgSyncer::PgSyncer(PgDb& writer) : db_(writer.url(), syncer_options()) {
  server_start_ = server_start(db_);
  const std::string mode = db_.exec("SHOW synchronous_commit")[0][0].c_str();
  if (mode == "off") {
    spdlog::warn(
        "PostgreSQL's synchronous_commit is off for this database: a commit answered may be "
        "lost in a crash of the server store={}",
        redact_url(writer.url()));
  }
  writer.commit_without_flush();
  thread_ = std::thread([this] { run(); });
}

PgSyncer::~PgSyncer() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  done_cv_.notify_all();
  thread_.join();
}

uint64_t PgSyncer::commit() {
  uint64_t ticket;
  {
    std::lock_guard lock(mu_);
    ticket = ++requested_;
  }
  cv_.notify_one();
  return ticket;
}

std::vector<CommitSyncer::Settled> PgSyncer::take_settled() {
  std::lock_guard lock(mu_);
  std::vector<Settled> out(std::make_move_iterator(settled_.begin()),
                           std::make_move_iterator(settled_.end()));
  settled_.clear();
  return out;
}

void PgSyncer::wait(uint64_t ticket) {
  std::unique_lock lock(mu_);
  done_cv_.wait(lock, [&] { return settled_through_ >= ticket || stop_; });
}

std::string PgSyncer::flush() {
  try {
    // One round trip. txid_current() gives the transaction an id, so its
    // COMMIT writes a WAL record and, under synchronous_commit, flushes
    // the WAL through it before answering.
    const pqxx::result r =
        db_.exec("BEGIN; SELECT txid_current(); COMMIT; SELECT pg_postmaster_start_time()::text");
    std::string start = r[0][0].c_str();
    if (start != server_start_) {
      server_start_ = std::move(start);
      return "PostgreSQL restarted (up since " + server_start_ +
             ") before these commits were known to be flushed";
    }
    return {};
  } catch (const std::exception& e) {
    std::string why = e.what();
    // A statement that failed inside the transaction leaves it aborted.
    try {
      db_.exec("ROLLBACK");
    } catch (const std::exception&) {
    }
    while (!why.empty() && why.back() == '\n') why.pop_back();
    return why;
  }
}

void PgSyncer::run() {
  pthread_setname_np(pthread_self(), "rmon-pgsync");
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || requested_ > settled_through_; });
    if (stop_) break;
    // Every ticket taken so far was taken after its COMMIT returned.
    const uint64_t target = requested_;
    lock.unlock();
    const auto start = std::chrono::steady_clock::now();
    std::string why = flush();
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    lock.lock();
    const uint64_t covered = target - settled_through_;
    if (why.empty()) {
      stats_.syncs.fetch_add(1, std::memory_order_relaxed);
      stats_.tickets.fetch_add(covered, std::memory_order_relaxed);
      stats_.last_us.store(static_cast<uint64_t>(us), std::memory_order_relaxed);
    } else {
      stats_.lost.fetch_add(covered, std::memory_order_relaxed);
    }
    const bool lost = !why.empty();
    settled_.push_back({target, !lost, std::move(why)});
    settled_through_ = target;
    done_cv_.notify_all();
    wake_.signal();
    if (lost) cv_.wait_for(lock, kRetryEvery, [&] { return stop_; });
  }
}

}  // namespace rmon::store
