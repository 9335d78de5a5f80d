#pragma once
// The per-shard deadline index: an intrusive, indexed binary min-heap of
// timed nodes.
//
// Why a heap and not a timing wheel: deadlines are re-armed lazily (a
// heartbeat only moves the runner's `last heard` time; the node is re-armed
// when its old due time pops), so the index sees one operation per runner per
// check period rather than one per heartbeat, and a sweep costs
// O(expired * log n) with exact due times, which the detection-lateness target
// (p99 < 5 ms) needs. bench/table_bench compares it with a full scan.
//
// Not thread-safe: each shard guards its index with the shard's mutex.

#include <cstdint>
#include <limits>
#include <vector>

namespace rmon::monitor {

// Embedded in anything the index times. `heap_pos` is owned by the index.
struct TimedNode {
  static constexpr uint32_t kNotArmed = std::numeric_limits<uint32_t>::max();
  int64_t due_ns = 0;  // monotonic nanoseconds
  uint32_t heap_pos = kNotArmed;
  bool armed() const { return heap_pos != kNotArmed; }
};

class DeadlineIndex {
 public:
  // Arms `node` at `due_ns`, or moves it there if already armed. The node must
  // outlive its membership (disarm it before destroying it).
  void arm(TimedNode* node, int64_t due_ns);
  // Removes `node` if armed; no-op otherwise.
  void disarm(TimedNode* node);
  // `to` has taken `from`'s place (a copy of it, `from` about to be freed):
  // the entry that pointed at `from`, if any, points at `to`.
  void relocate(TimedNode* from, TimedNode* to) {
    if (from->armed()) heap_[from->heap_pos].node = to;
    to->heap_pos = from->heap_pos;
    from->heap_pos = TimedNode::kNotArmed;
  }
  // The earliest node, or nullptr when empty.
  TimedNode* top() const { return heap_.empty() ? nullptr : heap_.front().node; }
  // The earliest due time; the index must not be empty.
  int64_t top_due_ns() const { return heap_.front().due_ns; }
  // Removes and returns the earliest node if it is due at `now_ns`.
  TimedNode* pop_due(int64_t now_ns);
  std::size_t size() const { return heap_.size(); }
  bool empty() const { return heap_.empty(); }

 private:
  // Each entry carries its due time, so sifting compares within the array
  // and touches a node only to record its new position (a store, not a
  // dependent load): at 1M runners this halves the cost of a re-arm.
  struct Entry {
    int64_t due_ns;
    TimedNode* node;
  };
  void place(uint32_t pos, Entry e) {
    heap_[pos] = e;
    e.node->heap_pos = pos;
  }
  void sift_up(uint32_t pos);
  void sift_down(uint32_t pos);
  void erase_at(uint32_t pos);

  std::vector<Entry> heap_;
};

}  // namespace rmon::monitor
