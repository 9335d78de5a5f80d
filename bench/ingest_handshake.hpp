#pragma once
// ingest_bench --handshake-storm N: N runners, each a CURVE socket of its own,
// connecting at once to a fresh CURVE monitor, against a raw CURVE SUB with
// no ZAP handler (see the modes at the top of ingest_bench.cpp).

#include "ingest_common.hpp"

namespace rmon::bench::ingest {

// `p.rounds` storms of `p.storm` runners against each side, alternating, each
// printed, then their medians. Forks the client processes; raises this
// process's open-file limit. Returns the process's exit code (1 when a
// runner was not admitted or known, or one was refused).
int storm_rounds(const Params& p);

}  // namespace rmon::bench::ingest
