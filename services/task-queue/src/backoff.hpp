#pragma once
// Requeue delay after a lost or failed attempt: the delay before attempt n+1
// is uniform in [d/2, d] with d = min(cap, base * factor^(n-1)) (the
// contract's exponential backoff with jitter). Pure; the random source is the
// caller's, so tests can seed it.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>

namespace rmon::tq {

struct BackoffPolicy {
  uint64_t base_ms = 500;
  double factor = 2.0;
  uint64_t cap_ms = 60'000;

  // The upper bound d for the delay after attempt `n` (n >= 1) ended.
  uint64_t ceiling_ms(uint64_t n) const {
    const double d = static_cast<double>(base_ms) *
                     std::pow(factor, static_cast<double>(std::max<uint64_t>(n, 1) - 1));
    if (!(d < static_cast<double>(cap_ms))) return cap_ms;  // also catches inf and nan
    return static_cast<uint64_t>(d);
  }
  template <class Rng>
  uint64_t delay_ms(uint64_t n, Rng& rng) const {
    const uint64_t d = ceiling_ms(n);
    std::uniform_int_distribution<uint64_t> dist(d / 2, d);
    return dist(rng);
  }
};

}  // namespace rmon::tq
