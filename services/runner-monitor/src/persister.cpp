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

// The ids in `blob` (each ending at `ends[i]`), sorted, each once.
std::vector<std::string_view> sorted_ids(const std::string& blob,
                                         const std::vector<uint32_t>& ends) {
  std::vector<std::string_view> ids;
  ids.reserve(ends.size());
  for (std::size_t i = 0, begin = 0; i < ends.size(); begin = ends[i++]) {
    ids.push_back(std::string_view(blob).substr(begin, ends[i] - begin));
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}
}  // namespace

Persister::Persister(std::unique_ptr<TableStore> store, Millis interval, std::size_t max_dirty)
    : store_(std::move(store)), interval_(interval), max_dirty_(max_dirty) {}

void Persister::mark(std::string_view runner_id) {
  std::lock_guard lock(mu_);
  if (rewrite_) return;
  if (dirty_ends_.size() >= max_dirty_) {
    dirty_ids_.clear();
    dirty_ends_.clear();
    rewrite_ = true;
    return;
  }
  dirty_ids_.append(runner_id);
  dirty_ends_.push_back(static_cast<uint32_t>(dirty_ids_.size()));
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
  std::string blob;
  std::vector<uint32_t> ends;
  bool rewrite = false;
  {
    std::lock_guard lock(mu_);
    blob.swap(dirty_ids_);
    ends.swap(dirty_ends_);
    std::swap(rewrite, rewrite_);
    // Keep the buffers' capacity on our side of the swap for next time.
    dirty_ids_.reserve(blob.capacity());
    dirty_ends_.reserve(ends.capacity());
  }
  if (!rewrite && ends.empty()) return 0;
  const auto t0 = std::chrono::steady_clock::now();
  // Written in key order: the table's B-tree then takes the rows page by
  // page, where ids in hash order would touch a random page each (at 1M
  // runners that was 5x slower; the page cache is a few MB).
  std::string all_blob;
  std::vector<uint32_t> all_ends;
  if (rewrite) table_->append_ids(all_blob, all_ends);
  const std::vector<std::string_view> ids =
      rewrite ? sorted_ids(all_blob, all_ends) : sorted_ids(blob, ends);
  std::size_t rows = 0;
  try {
    if (rewrite) {
      store_->rewrite([&](const std::function<void(const SavedRunner&)>& put) {
        for (std::string_view id : ids) {
          // One that left since its id was read is not written.
          if (auto r = table_->save(id)) {
            put(*r);
            ++rows;
          }
        }
      });
      stats_.rewrites.fetch_add(1, std::memory_order_relaxed);
    } else {
      std::vector<SavedRunner> upserts;
      std::vector<std::string> removed;
      upserts.reserve(ids.size());
      for (std::string_view id : ids) {
        if (auto r = table_->save(id)) {
          upserts.push_back(std::move(*r));
        } else {
          removed.emplace_back(id);
        }
      }
      store_->write(upserts, removed);
      rows = upserts.size() + removed.size();
    }
  } catch (...) {
    // Try again next time: put the ids back (or ask for a rewrite).
    std::lock_guard lock(mu_);
    if (rewrite || dirty_ends_.size() + ids.size() > max_dirty_) {
      dirty_ids_.clear();
      dirty_ends_.clear();
      rewrite_ = true;
    } else {
      for (std::string_view id : ids) {
        dirty_ids_.append(id);
        dirty_ends_.push_back(static_cast<uint32_t>(dirty_ids_.size()));
      }
    }
    stats_.failures.fetch_add(1, std::memory_order_relaxed);
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
