#pragma once
// Which slots of one pool are in use: a bitmap that finds the lowest free
// slot by scanning 64 slots per step (100,000 slots: ~1,600 words).
// Not thread-safe.

#include <cstdint>
#include <optional>
#include <vector>

namespace rmon::pool {

class SlotBitmap {
 public:
  explicit SlotBitmap(uint32_t slots) : size_(slots), words_((slots + 63) / 64, 0) {}

  uint32_t size() const { return size_; }
  uint32_t used() const { return used_; }
  // The lowest free slot index, or nullopt when every slot is in use.
  std::optional<uint32_t> lowest_free() const;
  bool test(uint32_t slot) const;
  // Out-of-range slots are ignored (holdings kept from a larger pool).
  void set(uint32_t slot);
  void clear(uint32_t slot);
  void clear_all();

 private:
  uint32_t size_;
  uint32_t used_ = 0;
  std::vector<uint64_t> words_;
};

}  // namespace rmon::pool
