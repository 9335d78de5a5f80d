#include "deadline_index.hpp"

namespace rmon::monitor {

void DeadlineIndex::arm(TimedNode* node, int64_t due_ns) {
  node->due_ns = due_ns;
  if (node->armed()) {
    const uint32_t pos = node->heap_pos;
    const int64_t old = heap_[pos].due_ns;
    heap_[pos].due_ns = due_ns;
    if (due_ns < old) {
      sift_up(pos);
    } else {
      sift_down(pos);
    }
    return;
  }
  heap_.push_back({due_ns, node});
  node->heap_pos = static_cast<uint32_t>(heap_.size() - 1);
  sift_up(node->heap_pos);
}

void DeadlineIndex::disarm(TimedNode* node) {
  if (node->armed()) erase_at(node->heap_pos);
}

TimedNode* DeadlineIndex::pop_due(int64_t now_ns) {
  if (heap_.empty() || heap_.front().due_ns > now_ns) return nullptr;
  TimedNode* n = heap_.front().node;
  erase_at(0);
  return n;
}

void DeadlineIndex::erase_at(uint32_t pos) {
  TimedNode* victim = heap_[pos].node;
  const Entry last = heap_.back();
  heap_.pop_back();
  victim->heap_pos = TimedNode::kNotArmed;
  if (pos == heap_.size()) return;  // it was the last element
  place(pos, last);
  if (pos > 0 && last.due_ns < heap_[(pos - 1) / 2].due_ns) {
    sift_up(pos);
  } else {
    sift_down(pos);
  }
}

void DeadlineIndex::sift_up(uint32_t pos) {
  const Entry e = heap_[pos];
  while (pos > 0) {
    const uint32_t parent = (pos - 1) / 2;
    if (heap_[parent].due_ns <= e.due_ns) break;
    place(pos, heap_[parent]);
    pos = parent;
  }
  place(pos, e);
}

void DeadlineIndex::sift_down(uint32_t pos) {
  const Entry e = heap_[pos];
  const auto size = static_cast<uint32_t>(heap_.size());
  while (true) {
    uint32_t child = 2 * pos + 1;
    if (child >= size) break;
    if (child + 1 < size && heap_[child + 1].due_ns < heap_[child].due_ns) ++child;
    if (e.due_ns <= heap_[child].due_ns) break;
    place(pos, heap_[child]);
    pos = child;
  }
  place(pos, e);
}

}  // namespace rmon::monitor
