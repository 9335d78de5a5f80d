#include "rmon/service/domain.hpp"

#include <spdlog/spdlog.h>

#include "rmon/protocol/codec.hpp"

namespace rmon {

void Notes::flush() {
  for (const Line& l : lines_) spdlog::log(l.level, "{}", l.text);
  lines_.clear();
}

Reply error(std::string_view code, std::string_view detail) {
  const std::size_t i = outcome_index(code);
  return {protocol::error_reply(code, detail), kOutcomes[i == 0 ? kOutcomes.size() - 1 : i]};
}

std::size_t outcome_index(std::string_view error) {
  if (error.empty() || error == kOutcomes[0]) return 0;
  for (std::size_t i = 1; i < kOutcomes.size(); ++i) {
    if (kOutcomes[i] == error) return i;
  }
  return kOutcomes.size() - 1;  // other
}

RequestScope runner_id_scope(const protocol::MapReader& m) {
  RequestScope scope;
  std::string id;
  if (m.str("runner_id", id)) scope.runner_id = std::move(id);
  return scope;
}

uint64_t ServiceStats::rejected_requests() const {
  uint64_t n = 0;
  for (const auto& row : requests) {
    n += row[outcome_index("bad_request")].load(std::memory_order_relaxed) +
         row[outcome_index("unknown_op")].load(std::memory_order_relaxed);
  }
  return n;
}

}  // namespace rmon
