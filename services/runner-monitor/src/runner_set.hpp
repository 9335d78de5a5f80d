#pragma once
// The runners of one shard, indexed by id. Each runner is one allocation: its
// fixed fields, then its id and its task id (see Runner). A flat hash set of
// pointers finds them: a slot costs 8 bytes plus a control byte, and a lookup
// compares the id inside the node it already has to touch.
//
// Measured (bench/scale_bench, 1M runners, 36-byte runner and task ids, pid
// and interval_ms): 211 B per runner, against 483 B with the
// absl::node_hash_map<std::string, Runner> this replaced, where each id past
// 15 bytes was an allocation of its own and interval_ms lived out of line.
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
 public:
  RunnerSet() = default;
  ~RunnerSet();
  RunnerSet(const RunnerSet&) = delete;
  RunnerSet& operator=(const RunnerSet&) = delete;

  // The runner with this id, or nullptr.
  Runner* find(const HashedId& key) const {
    auto it = set_.find(key);
    return it == set_.end() ? nullptr : *it;
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
  auto begin() const { return set_.begin(); }
  auto end() const { return set_.end(); }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(const Runner* r) const { return std::hash<std::string_view>{}(r->id()); }
    std::size_t operator()(const HashedId& h) const { return h.hash; }
  };
  struct Eq {
    using is_transparent = void;
    static std::string_view view(const Runner* r) { return r->id(); }
    static std::string_view view(const HashedId& h) { return h.id; }
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      return view(a) == view(b);
    }
  };
  static Runner* allocate(std::string_view id, std::size_t task_capacity);
  static void destroy(Runner* r);

  absl::flat_hash_set<Runner*, Hash, Eq> set_;  // owns the runners
};

}  // namespace rmon::monitor
