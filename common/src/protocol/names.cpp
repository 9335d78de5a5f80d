// Wire names of enums and rejection reasons.

#include <array>
#include <string>

#include "rmon/protocol/messages.hpp"
#include "rmon/protocol/result.hpp"

namespace rmon::protocol {
namespace {

template <class E, std::size_t N>
std::optional<E> lookup(const std::array<std::string_view, N>& names, std::string_view s) {
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == s) return static_cast<E>(i);
  }
  return std::nullopt;
}

constexpr std::array<std::string_view, 3> kPoolTypes = {"local-process", "docker", "kubernetes"};
constexpr std::array<std::string_view, 4> kStates = {"running", "suspect", "completed", "failed"};
constexpr std::array<std::string_view, 10> kOps = {"ping",          "get",    "list",      "count",
                                                   "add",           "remove", "set_state", "stats",
                                                   "release_brake", "lookup"};
constexpr std::array<std::string_view, kReasonCount> kReasons = {
    "malformed",  "too_large", "bad_version",    "missing_field",
    "wrong_type", "bad_value", "topic_mismatch", "unknown_op"};

}  // namespace

std::string_view to_string(PoolType t) { return kPoolTypes[static_cast<std::size_t>(t)]; }
std::string_view to_string(RunnerState s) { return kStates[static_cast<std::size_t>(s)]; }
std::string_view to_string(Op op) { return kOps[static_cast<std::size_t>(op)]; }
std::string_view reason_name(Reason r) { return kReasons[static_cast<std::size_t>(r)]; }

std::optional<PoolType> parse_pool_type(std::string_view s) {
  return lookup<PoolType>(kPoolTypes, s);
}
std::optional<RunnerState> parse_runner_state(std::string_view s) {
  return lookup<RunnerState>(kStates, s);
}
std::optional<Op> parse_op(std::string_view s) { return lookup<Op>(kOps, s); }

std::string Rejection::to_string() const {
  std::string out(reason_name(reason));
  if (!field.empty()) {
    out += ": ";
    out += field;
  }
  return out;
}

}  // namespace rmon::protocol
