#pragma once
// The runners of one shard, indexed by id. Each runner is one allocation: its
// fixed fields, then its id and its task id (see Runner). A flat hash set of
// (hash, pointer) slots finds them: a lookup compares the id inside the node
// it has to touch anyway, and growing the set moves slots without touching
// the runners.
//
// Measured at 1M runners with 36-byte runner and task ids, pid and
// interval_ms: 229 B per runner (bench/scale_bench) against 483 B with the
// absl::node_hash_map<std::string, Runner> this replaced, where each id past
// 15 bytes was an allocation of its own and interval_ms lived out of line.
// Slots of a bare pointer would save 17 B per runner, but growing the set
// must then re-hash every runner's id through a cache miss: the table's work
// per join was twice as much (1.2 against 0.58 us), while a known runner's
// heartbeat cost about 10% less (0.47 against 0.52 us).
//
// Runners stay put (the deadline index points at them) except in set_task,
// which moves a runner whose new task id does not fit and tells the index.
// Not thread-safe: guarded by the shard's mutex.

#include <absl/container/flat_hash_set.h>

#include <cstddef>
#include <functional>
#include <string_view>

#include "deadline_index.hpp"
#include "runner.hpp"

namespace rmon::monitor {

// A runner id with its hash, computed once per operation: it picks the shard
// and is reused by the shard's set (heterogeneous lookup).
struct HashedId {
  std::string_view id;
  std::size_t hash;
  explicit HashedId(std::string_view s) : id(s), hash(std::hash<std::string_view>{}(s)) {}
};

class RunnerSet {
 private:
  // A runner with its id's hash: growing the set moves slots without
  // touching the runners.
  struct Slot {
    std::size_t hash;
    Runner* runner;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(const Slot& s) const { return s.hash; }
    std::size_t operator()(const HashedId& h) const { return h.hash; }
  };
  struct Eq {
    using is_transparent = void;
    bool operator()(const Slot& a, const Slot& b) const {
      return a.hash == b.hash && a.runner->id() == b.runner->id();
    }
    bool operator()(const Slot& a, const HashedId& b) const {
      return a.hash == b.hash && a.runner->id() == b.id;
    }
    bool operator()(const HashedId& a, const Slot& b) const { return (*this)(b, a); }
  };
  using Set = absl::flat_hash_set<Slot, Hash, Eq>;

 public:
  // Iterates the runners (in no order).
  class const_iterator {
   public:
    explicit const_iterator(Set::const_iterator it) : it_(it) {}
    Runner* operator*() const { return it_->runner; }
    const_iterator& operator++() {
      ++it_;
      return *this;
    }
    bool operator==(const const_iterator& o) const { return it_ == o.it_; }

   private:
    Set::const_iterator it_;
  };

  RunnerSet() = default;
  ~RunnerSet();
  RunnerSet(const RunnerSet&) = delete;
  RunnerSet& operator=(const RunnerSet&) = delete;

  // The runner with this id, or nullptr.
  Runner* find(const HashedId& key) const {
    auto it = set_.find(key);
    return it == set_.end() ? nullptr : it->runner;
  }
  // A new runner with `key`'s id (absent until now), no task yet, and room for
  // a task id of `task_capacity` bytes.
  Runner* emplace(const HashedId& key, std::size_t task_capacity);
  // Gives `r` the task id `task`. When it does not fit, `r` moves to a larger
  // allocation (its entry in `index` follows) and is freed: use the returned
  // pointer from then on.
  Runner* set_task(Runner* r, std::string_view task, DeadlineIndex& index);
  // Forgets and frees `r`, which must not be armed.
  void erase(Runner* r);

  std::size_t size() const { return set_.size(); }
  const_iterator begin() const { return const_iterator(set_.begin()); }
  const_iterator end() const { return const_iterator(set_.end()); }

 private:
  static Runner* allocate(std::string_view id, std::size_t task_capacity);
  static void destroy(Runner* r);

  Set set_;  // owns the runners
};

}  // namespace rmon::monitor
