#pragma once
// Plain types for every message of the wire protocol (docs/PROTOCOL.md).
// Values only: no I/O, no validation (the codec validates).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rmon::protocol {

enum class PoolType : uint8_t { kLocalProcess, kDocker, kKubernetes };
// kSuspect never travels in a heartbeat; it is the monitor's own view.
enum class RunnerState : uint8_t { kRunning, kSuspect, kCompleted, kFailed };

std::string_view to_string(PoolType t);
std::string_view to_string(RunnerState s);
std::optional<PoolType> parse_pool_type(std::string_view s);
std::optional<RunnerState> parse_runner_state(std::string_view s);

// Who a runner is and what it runs: the part every message repeats.
struct RunnerInfo {
  std::string runner_id;
  std::string task_id;
  uint64_t attempt = 1;
  std::string pool;
  PoolType pool_type = PoolType::kLocalProcess;
  std::optional<uint64_t> pid;              // local-process
  std::optional<std::string> container_id;  // docker
  std::optional<std::string> job_name;      // kubernetes
  std::optional<std::string> progress;      // raw MessagePack bytes of any value

  bool operator==(const RunnerInfo&) const = default;
};

// Runner -> monitor. Also the `runner` of a control `add` (seq unused there).
struct Heartbeat {
  RunnerInfo runner;
  RunnerState state = RunnerState::kRunning;  // running, completed or failed
  uint64_t seq = 0;
  std::optional<uint64_t> timeout_ms;
  std::optional<uint64_t> interval_ms;
  std::optional<int64_t> sent_at_ms;

  bool operator==(const Heartbeat&) const = default;
};

// Monitor -> each consumer group.
struct TimeoutEvent {
  std::string event_id;
  RunnerInfo runner;
  uint64_t last_seq = 0;
  int64_t last_heartbeat_ms = 0;
  int64_t detected_at_ms = 0;
  uint64_t timeout_ms = 0;
  uint64_t delivery = 1;

  bool operator==(const TimeoutEvent&) const = default;
};

// Consumer -> monitor.
struct Ack {
  std::string group;
  std::string event_id;

  bool operator==(const Ack&) const = default;
};

// The monitor's view of one runner, as returned by `get` and `list`.
struct RunnerView {
  RunnerInfo runner;
  RunnerState state = RunnerState::kRunning;
  uint64_t last_seq = 0;
  int64_t last_heartbeat_ms = 0;
  uint64_t silence_ms = 0;
  uint64_t timeout_ms = 0;
  int64_t added_at_ms = 0;
  std::optional<uint64_t> interval_ms;

  bool operator==(const RunnerView&) const = default;
};

enum class Op : uint8_t {
  kPing,
  kGet,
  kList,
  kCount,
  kAdd,
  kRemove,
  kSetState,
  kStats,
  kReleaseBrake,  // an operator releases the monitor's storm brake
  kLookup,        // reconciliation: the short state of up to kMaxLookupIds runners
};
std::string_view to_string(Op op);
std::optional<Op> parse_op(std::string_view s);

// Client -> monitor. Which optional fields are set depends on `op`; the
// decoder enforces the required ones.
struct ControlRequest {
  Op op = Op::kPing;
  std::optional<std::string> runner_id;  // get, remove, set_state
  std::optional<RunnerState> state;      // list, count (filter); set_state
  std::optional<std::string> pool;       // list, count (filter)
  std::optional<uint64_t> limit;         // list
  std::optional<std::string> after;      // list: only runner ids sorting after this one
  std::optional<Heartbeat> runner;       // add
  std::optional<std::vector<std::string>> runner_ids;  // lookup: 1 to kMaxLookupIds ids

  bool operator==(const ControlRequest&) const = default;
};

// One runner's short state in a `lookup` reply: what reconciliation needs to
// tell alive, ended, timed out and gone apart (docs/PROTOCOL.md).
struct LookupEntry {
  std::string task_id;
  uint64_t attempt = 1;
  RunnerState state = RunnerState::kRunning;
  bool timed_out = false;     // FAILED because this attempt timed out
  uint64_t state_for_ms = 0;  // how long it has been in `state`

  bool operator==(const LookupEntry&) const = default;
};

// Monitor -> client. `ok == false` carries `error` and `detail` only.
struct ControlReply {
  bool ok = true;
  std::string error;  // not_found, bad_request, unknown_op, ...
  std::string detail;
  std::optional<uint64_t> version;                 // ping
  std::optional<RunnerView> runner;                // get
  std::optional<std::vector<RunnerView>> runners;  // list
  std::optional<bool> more;       // list: more runners match (page on with `after`)
  std::optional<uint64_t> count;  // count
  std::optional<bool> removed;    // remove
  std::vector<std::pair<std::string, uint64_t>> stats;  // stats: top-level counters
  // lookup, encoded under `runners`: one per requested id, in order; nullopt
  // (nil) for a runner the monitor does not know.
  std::optional<std::vector<std::optional<LookupEntry>>> lookup;
  // lookup (a key this project adds): how long this monitor has been serving,
  // so a caller can tell a nil from a monitor too young to have heard every
  // live runner.
  std::optional<uint64_t> uptime_ms;

  static ControlReply failure(std::string error, std::string detail) {
    ControlReply r;
    r.ok = false;
    r.error = std::move(error);
    r.detail = std::move(detail);
    return r;
  }
  bool operator==(const ControlReply&) const = default;
};

// A `lookup` reply as a client reads it (decode_lookup_reply): the monitor's
// refusal (`ok == false`: `error`, `detail`) is an answer, not a broken frame.
struct LookupReply {
  bool ok = true;
  std::string error;
  std::string detail;
  std::vector<std::optional<LookupEntry>> runners;  // when ok: one per requested id
  std::optional<uint64_t> uptime_ms;  // how long the monitor has been up, when it says

  bool operator==(const LookupReply&) const = default;
};

}  // namespace rmon::protocol
