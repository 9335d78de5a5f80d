#include "persister.hpp"

#include <spdlog/spdlog.h>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

namespace rmon::monitor {

using protocol::RunnerState;

namespace {
constexpr int kSaveNice = 10;  // a tenth of a nice-0 thread's CPU share, under contention
}  // namespace

Persister::Persister(std::unique_ptr<TableStore> store, Millis interval, std::size_t max_dirty,
                     std::size_t rewrite_pass)
    : store_(std::move(store)),
      interval_(interval),
      max_dirty_(max_dirty),
      rewrite_pass_(std::max<std::size_t>(1, rewrite_pass)) {}

void Persister::mark(std::string_view runner_id) {
  std::lock_guard lock(mu_);
  if (rewrite_) return;
  if (dirty_.size() >= max_dirty_) {
    dirty_.release();  // the rewrite collects its own ids
    rewrite_ = true;
    return;
  }
  dirty_.add(runner_id);
}

void Persister::on_added(std::string_view runner_id, std::string_view, uint64_t, RunnerState) {
  mark(runner_id);
}

void Persister::on_state_changed(std::string_view runner_id, std::string_view, uint64_t,
                                 RunnerState from, RunnerState to) {
  const auto live = [](RunnerState s) {
    return s == RunnerState::kRunning || s == RunnerState::kSuspect;
  };
  if (live(from) && live(to)) return;  // restored as RUNNING either way
  mark(runner_id);
}

void Persister::on_removed(std::string_view runner_id, bool) { mark(runner_id); }

std::size_t Persister::save_now() {
  IdList ids;
  bool rewrite = false;
  {
    std::lock_guard lock(mu_);
    if (!rewrite_ && dirty_.empty()) return 0;  // no buffer swapped and reserved for nothing
    ids.swap(dirty_);
    std::swap(rewrite, rewrite_);
    // Keep the buffer's size on our side of the swap for next time (best
    // effort: the swapped-out ids are not in the try below yet).
    try {
      if (!rewrite) dirty_.reserve_bytes(ids.capacity_bytes());
    } catch (const std::bad_alloc&) {
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::size_t rows = 0;
  std::vector<uint32_t> order;
  try {
    SavedRunner row;  // one for every row: its strings keep their buffers
    // Written in key order: the table's B-tree then takes the rows page by
    // page, where ids in hash order would touch a random page each (at 1M
    // runners that was 5x slower; the page cache is a few MB).
    const auto write_rows = [&](TableStore::Writer& w) {
      for (const uint32_t at : order) {
        const std::string_view id = ids.at(at);
        if (table_->save(id, row)) {
          w.put(row);
          ++rows;
        } else if (!rewrite) {
          w.forget(id);  // one that left since it was noted
          ++rows;
        }
      }
    };
    if (!rewrite) {
      order = ids.sorted_unique();  // before the write: a failed one puts them back
      store_->write(write_rows);
    } else {
      // Range after range in key order, so the rows still come sorted. A
      // runner that joins a range already written was noted for the next
      // save (the observer), as during a one-pass rewrite.
      // At most kMaxRewritePasses: each pass scans the whole table.
      const std::size_t runners = table_->size();
      const std::size_t per_pass = std::max(rewrite_pass_, runners / kMaxRewritePasses + 1);
      const std::vector<std::string> splits = table_->split_ids(runners / per_pass + 1);
      uint64_t passes = 0;
      store_->rewrite([&](TableStore::Writer& w) {
        for (std::size_t k = 0; k <= splits.size(); ++k) {
          ids.clear();  // keeps its buffer for the next range
          table_->append_ids(ids, RunnerTable::IdRange::nth(splits, k));
          order = ids.sorted_unique();
          write_rows(w);
          ++passes;
        }
      });
      stats_.rewrites.fetch_add(1, std::memory_order_relaxed);
      stats_.rewrite_passes.fetch_add(passes, std::memory_order_relaxed);
    }
  } catch (...) {
    // Nothing of it was committed. Try again next time: put the ids back
    // (or ask for a rewrite).
    std::lock_guard lock(mu_);
    stats_.failures.fetch_add(1, std::memory_order_relaxed);
    const auto ask_rewrite = [&] {
      dirty_.release();
      rewrite_ = true;
    };
    if (rewrite || order.empty() || dirty_.size() + order.size() > max_dirty_) {
      ask_rewrite();
    } else {
      try {
        for (const uint32_t at : order) dirty_.add(ids.at(at));
      } catch (...) {
        ask_rewrite();
      }
    }
    throw;
  }
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
  stats_.saves.fetch_add(1, std::memory_order_relaxed);
  stats_.rows_written.fetch_add(rows, std::memory_order_relaxed);
  stats_.last_save_us.store(static_cast<uint64_t>(us.count()), std::memory_order_relaxed);
  return rows;
}

void Persister::wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_one();
}

void Persister::run(const std::atomic<bool>& stop) {
  // Saving yields to ingest when they share a core: a save can wait (the ids
  // stay noted, bounded), a heartbeat cannot. Linux nice values are per
  // thread; failing to lower ours only costs ingest a little.
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), kSaveNice);
  while (!stop.load(std::memory_order_relaxed)) {
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, interval_, [&] { return woken_; });
      woken_ = false;
    }
    try {
      save_now();
    } catch (const std::exception& e) {
      // The table stays in memory and the ids stay marked: a full disk that
      // frees up loses nothing. Until then a crash would lose these changes.
      spdlog::error("runner table could not be saved (will retry) error={}", e.what());
    }
  }
  save_now();
}

}  // namespace rmon::monitor
