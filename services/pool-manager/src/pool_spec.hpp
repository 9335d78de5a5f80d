#pragma once
// A configured pool: name, runner type and slot count, written on the command
// line as "name=type:slots" (e.g. "local=local-process:8").

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rmon/protocol/messages.hpp"

namespace rmon::pool {

inline constexpr uint32_t kMaxSlots = 100'000;

struct PoolSpec {
  std::string name;  // 1..kMaxIdBytes bytes
  protocol::PoolType type = protocol::PoolType::kLocalProcess;
  uint32_t slots = 0;  // 1..kMaxSlots

  bool operator==(const PoolSpec&) const = default;
};

// Parses "name=type:slots". On failure returns nullopt and says why in `error`.
std::optional<PoolSpec> parse_pool_spec(std::string_view text, std::string& error);

// Parses and checks a whole list: every entry valid, names unique, at least
// one pool. Returns an error message, empty when valid.
std::string parse_pool_specs(const std::vector<std::string>& texts, std::vector<PoolSpec>& out);

}  // namespace rmon::pool
