#include "slot_bitmap.hpp"

#include <algorithm>
#include <bit>

namespace rmon::pool {

std::optional<uint32_t> SlotBitmap::lowest_free() const {
  if (used_ >= size_) return std::nullopt;
  for (std::size_t i = 0; i < words_.size(); ++i) {
    const uint64_t free_bits = ~words_[i];
    if (free_bits == 0) continue;
    const auto slot =
        static_cast<uint32_t>(i * 64 + static_cast<std::size_t>(std::countr_zero(free_bits)));
    return slot < size_ ? std::optional<uint32_t>(slot) : std::nullopt;
  }
  return std::nullopt;
}

bool SlotBitmap::test(uint32_t slot) const {
  return slot < size_ && (words_[slot / 64] >> (slot % 64) & 1U) != 0;
}

void SlotBitmap::set(uint32_t slot) {
  if (slot >= size_ || test(slot)) return;
  words_[slot / 64] |= uint64_t{1} << (slot % 64);
  ++used_;
}

void SlotBitmap::clear(uint32_t slot) {
  if (!test(slot)) return;
  words_[slot / 64] &= ~(uint64_t{1} << (slot % 64));
  --used_;
}

void SlotBitmap::clear_all() {
  std::fill(words_.begin(), words_.end(), 0);
  used_ = 0;
}

}  // namespace rmon::pool
