#pragma once
// ingest_bench --joins: join storms. R runners with UUID ids (and pid and
// interval_ms) join a fresh monitor, then send one heartbeat each as known
// runners; a round measures both rates and what the monitor process grew by.
// Each call forks a publisher process and runs a monitor in this one.

#include <cstddef>

#include "ingest_common.hpp"

namespace rmon::bench::ingest {

struct JoinRound {
  double joins_per_s = 0;
  double known_per_s = 0;
  double rss_per_runner = 0;   // bytes the monitor process grew by, per runner joined
  double heap_per_runner = 0;  // the same, counted by malloc
  double peak_per_runner = 0;  // peak RSS over the whole round (saves included) above the start
  std::size_t runners = 0;     // tracked after the round
};

// One join storm against a fresh runner-monitor service (all threads).
JoinRound join_round(const Params& p);

// `p.rounds` join storms, each printed, then their medians against the
// targets. Returns the process's exit code.
int join_rounds(const Params& p);

}  // namespace rmon::bench::ingest
