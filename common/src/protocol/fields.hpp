#pragma once
// Internal to the codec: the field logic every decoder shares (required-key
// bookkeeping, RunnerInfo's keys, the heartbeat's keys), over msgpack objects.
// Both heartbeat routes (the event-parser fast path and the generic object
// decoder) go through heartbeat_field, so their verdicts agree by
// construction.

#include <msgpack.hpp>

#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "rmon/protocol/messages.hpp"
#include "rmon/protocol/result.hpp"

namespace rmon::protocol::fields {

using msgpack::object;

// Required-key bookkeeping: one bit per key a decoder insists on.
class Required {
 public:
  void see(uint32_t bit) { seen_ |= bit; }
  bool has(uint32_t bit) const { return (seen_ & bit) != 0; }
  // The first required key (in `names` order) that was not seen.
  template <std::size_t N>
  Status check(uint32_t required, const std::array<std::string_view, N>& names) const {
    for (std::size_t i = 0; i < N; ++i) {
      const uint32_t bit = 1u << i;
      if ((required & bit) && !(seen_ & bit)) return Rejection{Reason::kMissingField, names[i]};
    }
    return {};
  }

 private:
  uint32_t seen_ = 0;
};

// Bits for RunnerInfo's keys, shared by every message that carries a runner.
enum RunnerBit : uint32_t {
  kRunnerId = 1u << 0,
  kTaskId = 1u << 1,
  kAttempt = 1u << 2,
  kPool = 1u << 3,
  kPoolType = 1u << 4,
  kPid = 1u << 5,
  kContainerId = 1u << 6,
  kJobName = 1u << 7,
  kProgress = 1u << 8,
  kFirstFreeBit = 9,
};
constexpr uint32_t kRunnerRequired = kRunnerId | kTaskId | kPool | kPoolType;

// Names in bit order; messages append their own after kFirstFreeBit.
#define RMON_RUNNER_NAMES                                                                    \
  "runner_id", "task_id", "attempt", "pool", "pool_type", "pid", "container_id", "job_name", \
      "progress"

// The keys of RunnerInfo and of a heartbeat, resolved once per key with a
// switch on its length: the hot path compares each key at most twice.
enum class Key : uint8_t {
  kOther,
  kV,
  kRunnerId,
  kTaskId,
  kAttempt,
  kPool,
  kPoolType,
  kPid,
  kContainerId,
  kJobName,
  kProgress,
  kState,
  kSeq,
  kTimeoutMs,
  kIntervalMs,
  kSentAtMs,
};

// --- heartbeat ---
enum HeartbeatBit : uint32_t {
  kHbVersion = 1u << (kFirstFreeBit + 0),
  kHbState = 1u << (kFirstFreeBit + 1),
  kHbSeq = 1u << (kFirstFreeBit + 2),
  kHbTimeout = 1u << (kFirstFreeBit + 3),
  kHbInterval = 1u << (kFirstFreeBit + 4),
  kHbSentAt = 1u << (kFirstFreeBit + 5),
};

// `k` (already known to have the literal's length) spells `lit`: a
// fixed-size compare the compiler turns into a load or two, not a call.
template <std::size_t N>
bool is(std::string_view k, const char (&lit)[N]) {
  return std::memcmp(k.data(), lit, N - 1) == 0;
}
inline Key key_of(std::string_view k) {
  switch (k.size()) {
    case 1:
      return is(k, "v") ? Key::kV : Key::kOther;
    case 3:
      return is(k, "pid") ? Key::kPid : is(k, "seq") ? Key::kSeq : Key::kOther;
    case 4:
      return is(k, "pool") ? Key::kPool : Key::kOther;
    case 5:
      return is(k, "state") ? Key::kState : Key::kOther;
    case 7:
      return is(k, "task_id") ? Key::kTaskId : is(k, "attempt") ? Key::kAttempt : Key::kOther;
    case 8:
      return is(k, "job_name") ? Key::kJobName : is(k, "progress") ? Key::kProgress : Key::kOther;
    case 9:
      return is(k, "runner_id")   ? Key::kRunnerId
             : is(k, "pool_type") ? Key::kPoolType
                                  : Key::kOther;
    case 10:
      return is(k, "timeout_ms")   ? Key::kTimeoutMs
             : is(k, "sent_at_ms") ? Key::kSentAtMs
                                   : Key::kOther;
    case 11:
      return is(k, "interval_ms") ? Key::kIntervalMs : Key::kOther;
    case 12:
      return is(k, "container_id") ? Key::kContainerId : Key::kOther;
    default:
      return Key::kOther;
  }
}

// Handles `key` if it belongs to RunnerInfo. Sets `handled`.
Status runner_field(Key key, const object& val, RunnerInfo& r, Required& req, bool& handled);
// Optional RunnerInfo fields that were absent are cleared; attempt defaults to 1.
void reset_absent(const Required& req, RunnerInfo& r);
Status read_state(const object& val, RunnerState& out, bool allow_suspect);
Status expect_type(const object& val, std::string_view want);
// One top-level heartbeat field, in map order.
Status heartbeat_field(std::string_view name, const object& val, Heartbeat& hb, Required& req);
// After every field: required keys (`envelope`: v and seq too) and optionals
// of a reused struct cleared.
Status finish_heartbeat(const Required& req, bool envelope, Heartbeat& hb);
Status heartbeat_map(const object& map, bool envelope, Heartbeat& hb);
// The topic's checks, before the payload (frame and topic sizes, the prefix)
// and after it (the suffix names the payload's runner).
Status check_topic_prefix(std::string_view topic, std::string_view payload);
Status check_topic_runner(std::string_view topic, const Heartbeat& hb);
Status runner_view_map(const object& map, RunnerView& v);

}  // namespace rmon::protocol::fields
