#pragma once
// Runner ids end to end in one buffer, each after its length: the persister's
// list of runners to save. One byte of overhead per id (ids are 1 to 128
// bytes, PROTOCOL.md; longer ones take three) and no allocation per id once
// the buffer is warm. Sorting yields offsets (4 bytes an id), not views
// (16), so a whole-table save of 1M runners with 36-byte ids holds 41 MB of
// ids rather than 56.
//
// Not thread-safe.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rmon::monitor {

class IdList {
 public:
  void add(std::string_view id);
  std::size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  std::size_t bytes() const { return blob_.size(); }
  std::size_t capacity_bytes() const { return blob_.capacity(); }
  void reserve_bytes(std::size_t n) { blob_.reserve(n); }
  void clear() {  // keeps the buffer
    blob_.clear();
    count_ = 0;
  }
  void release() {  // gives the buffer back
    std::string().swap(blob_);
    count_ = 0;
  }
  void swap(IdList& o) noexcept {
    blob_.swap(o.blob_);
    std::swap(count_, o.count_);
  }

  // Where each distinct id starts, in id order.
  std::vector<uint32_t> sorted_unique() const;
  // The id starting at `offset` (one from sorted_unique).
  std::string_view at(uint32_t offset) const;

 private:
  static constexpr unsigned char kLong = 0xff;  // a 2-byte length follows
  std::string blob_;
  std::size_t count_ = 0;
};

}  // namespace rmon::monitor
