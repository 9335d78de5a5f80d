#include "id_list.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>

namespace rmon::monitor {

void IdList::add(std::string_view id) {
  // Offsets are 4 bytes: past 4 GiB of ids (over 30M runners of 128-byte
  // ids) the list refuses, and the persister reports its save as failed.
  if (blob_.size() + id.size() + 3 > std::numeric_limits<uint32_t>::max()) {
    throw std::length_error("runner id list over 4 GiB");
  }
  if (id.size() < kLong) {
    blob_.push_back(static_cast<char>(id.size()));
  } else {
    const std::size_t n = std::min<std::size_t>(id.size(), 0xffff);  // RunnerSet's own bound
    blob_.push_back(static_cast<char>(kLong));
    blob_.push_back(static_cast<char>(n >> 8));
    blob_.push_back(static_cast<char>(n & 0xff));
    id = id.substr(0, n);
  }
  blob_.append(id);
  ++count_;
}

std::string_view IdList::at(uint32_t offset) const {
  const auto* p = reinterpret_cast<const unsigned char*>(blob_.data()) + offset;
  if (p[0] != kLong) return {blob_.data() + offset + 1, p[0]};
  return {blob_.data() + offset + 3, static_cast<std::size_t>(p[1]) << 8 | p[2]};
}

std::vector<uint32_t> IdList::sorted_unique() const {
  std::vector<uint32_t> out;
  out.reserve(count_);
  for (std::size_t at_ = 0; at_ < blob_.size();) {
    out.push_back(static_cast<uint32_t>(at_));
    const std::string_view id = at(static_cast<uint32_t>(at_));
    at_ = static_cast<std::size_t>(id.data() - blob_.data()) + id.size();
  }
  std::sort(out.begin(), out.end(), [this](uint32_t a, uint32_t b) { return at(a) < at(b); });
  out.erase(std::unique(out.begin(), out.end(),
                        [this](uint32_t a, uint32_t b) { return at(a) == at(b); }),
            out.end());
  return out;
}

}  // namespace rmon::monitor
