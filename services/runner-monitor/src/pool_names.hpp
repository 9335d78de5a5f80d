#pragma once
// Pool names interned per shard and counted by the runners that use them.
// A name no runner uses any more is freed and its slot reused, so a sender
// that invents pool names cannot grow memory beyond the runners it has.
// Lookups are one hash probe. Not thread-safe: guarded by the shard's mutex.

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <absl/container/flat_hash_map.h>

namespace rmon::monitor {

class PoolNames {
 public:
  static constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();

  // The id of `name`, with one more user.
  uint32_t acquire(std::string_view name) {
    if (auto it = index_.find(name); it != index_.end()) {
      ++refs_[it->second];
      return it->second;
    }
    uint32_t id;
    if (!free_.empty()) {
      id = free_.back();
      free_.pop_back();
      names_[id].assign(name);
      refs_[id] = 1;
    } else {
      id = static_cast<uint32_t>(names_.size());
      names_.emplace_back(name);
      refs_.push_back(1);
    }
    index_.emplace(names_[id], id);
    return id;
  }

  // One user fewer; the name is freed with its last user. kNone is ignored.
  void release(uint32_t id) {
    if (id == kNone || --refs_[id] > 0) return;
    index_.erase(names_[id]);
    names_[id].clear();
    names_[id].shrink_to_fit();
    free_.push_back(id);
  }

  const std::string& name(uint32_t id) const { return names_[id]; }
  std::size_t live() const { return index_.size(); }

 private:
  std::vector<std::string> names_;
  std::vector<uint32_t> refs_;
  std::vector<uint32_t> free_;
  // Transparent, so a lookup by string_view builds no string.
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Eq {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const { return a == b; }
  };
  absl::flat_hash_map<std::string, uint32_t, Hash, Eq> index_;  // live names only
};

}  // namespace rmon::monitor
