#include "pool_spec.hpp"

#include <charconv>
#include <set>

#include "rmon/protocol/limits.hpp"

namespace rmon::pool {

std::optional<PoolSpec> parse_pool_spec(std::string_view text, std::string& error) {
  const std::string quoted = "pool '" + std::string(text) + "'";
  const auto eq = text.find('=');
  const auto colon = text.rfind(':');
  if (eq == std::string_view::npos || colon == std::string_view::npos || colon < eq) {
    error = quoted + " is not name=type:slots";
    return std::nullopt;
  }
  PoolSpec spec;
  spec.name = std::string(text.substr(0, eq));
  if (spec.name.empty() || spec.name.size() > protocol::kMaxIdBytes) {
    error = quoted + ": the name must be 1 to " + std::to_string(protocol::kMaxIdBytes) + " bytes";
    return std::nullopt;
  }
  const std::string_view type = text.substr(eq + 1, colon - eq - 1);
  const auto parsed_type = protocol::parse_pool_type(type);
  if (!parsed_type) {
    error =
        quoted + ": unknown type '" + std::string(type) + "' (local-process, docker or kubernetes)";
    return std::nullopt;
  }
  spec.type = *parsed_type;
  const std::string_view slots = text.substr(colon + 1);
  uint64_t n = 0;
  const auto [end, ec] = std::from_chars(slots.data(), slots.data() + slots.size(), n);
  if (ec != std::errc() || end != slots.data() + slots.size() || slots.empty() || n < 1 ||
      n > kMaxSlots) {
    error = quoted + ": slots must be a number from 1 to " + std::to_string(kMaxSlots);
    return std::nullopt;
  }
  spec.slots = static_cast<uint32_t>(n);
  return spec;
}

std::string parse_pool_specs(const std::vector<std::string>& texts, std::vector<PoolSpec>& out) {
  out.clear();
  if (texts.empty()) return "at least one --pool is needed";
  std::set<std::string, std::less<>> names;
  for (const std::string& t : texts) {
    std::string error;
    auto spec = parse_pool_spec(t, error);
    if (!spec) return error;
    if (!names.insert(spec->name).second) return "pool '" + spec->name + "' is repeated";
    out.push_back(std::move(*spec));
  }
  return {};
}

}  // namespace rmon::pool
