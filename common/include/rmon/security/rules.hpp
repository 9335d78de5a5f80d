#pragma once
// Who may do what: the contract's role table (PROTOCOL.md "Security") as
// data, and two pure functions over it. No I/O, no state: thread-safe.
//
// Every bound socket has a ZAP domain; a request's op and subject come from
// the decoded message. Ops of the non-request sockets are named here:
//
//   domain           socket (bound by)            ops
//   hb               heartbeats SUB (monitor)     heartbeat   (subject: runner_id)
//   events.<group>   events PUSH (monitor)        receive     (subject: the domain's group)
//   acks             acks PULL (monitor)          ack         (subject: the ack's group)
//   control          control ROUTER (monitor)     ping get list count add remove set_state
//                                                 stats release_brake lookup
//   task-queue       API ROUTER (task-queue)      submit lease complete fail cancel get list
//                                                 stats ping
//   pool-manager     API ROUTER (pool-manager)    acquire release status stats ping
//
// The rules (one row of kRules each; anything no row allows is denied):
//
//   role       domain         ops                                     scope
//   runner     hb             heartbeat                               runner_id has P
//   runner     task-queue     lease complete fail                     runner_id has P (*)
//   runner     task-queue     ping                                    -
//   runner     pool-manager   acquire release                         runner_id has P
//   runner     pool-manager   ping                                    -
//   consumer   events.G'      receive                                 G' == G
//   consumer   acks           ack                                     ack's group == G
//   consumer   control        get lookup ping                         -
//   submitter  task-queue     submit get list cancel stats ping       -
//   reader     control        ping get list count stats lookup        -
//   reader     task-queue     ping get list stats                     -
//   reader     pool-manager   ping status stats                       -
//   admin      every domain   every op                                -
//
//   (*) complete/fail: the subject is the runner_id the task is leased to
//       (the task-queue reads it from its store), not a field of the request.
//
// A role is admitted to a domain at the handshake (ZAP) when some row names
// both (for events.G', only the consumer of group G'); so a runner never
// completes a handshake on `control`, nor a submitter on `hb`.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "rmon/security/principal.hpp"

namespace rmon::security {

enum class DomainKind : uint8_t { kHb, kEvents, kAcks, kControl, kTaskQueue, kPoolManager };
inline constexpr int kDomainKindCount = 6;

// A ZAP domain: "hb", "events.<group>", "acks", "control", "task-queue",
// "pool-manager".
struct Domain {
  DomainKind kind = DomainKind::kControl;
  std::string group;  // kEvents only, never empty there

  static Domain hb() { return {DomainKind::kHb, {}}; }
  static Domain events(std::string group) { return {DomainKind::kEvents, std::move(group)}; }
  static Domain acks() { return {DomainKind::kAcks, {}}; }
  static Domain control() { return {DomainKind::kControl, {}}; }
  static Domain task_queue() { return {DomainKind::kTaskQueue, {}}; }
  static Domain pool_manager() { return {DomainKind::kPoolManager, {}}; }

  // The ZAP domain string (ZMQ_ZAP_DOMAIN), and the inverse; parse() is
  // nullopt for anything else (including "events." with no group).
  std::string name() const;
  static std::optional<Domain> parse(std::string_view name);
  bool operator==(const Domain&) const = default;
};

// Op names of the sockets that carry no `op` field.
namespace ops {
inline constexpr std::string_view kHeartbeat = "heartbeat";
inline constexpr std::string_view kReceive = "receive";
inline constexpr std::string_view kAck = "ack";
}  // namespace ops

enum class Scope : uint8_t {
  kAny,           // no subject needed
  kRunnerPrefix,  // the subject (a runner_id) starts with the principal's runner_prefix
  kOwnGroup,      // the subject (a group; events: the domain's) is the principal's group
};

struct Rule {
  Role role;
  DomainKind domain;
  std::string_view ops;  // space-separated op names; "*" is every op
  Scope scope;
};

inline constexpr std::array<Rule, 18> kRules = {{
    {Role::kRunner, DomainKind::kHb, "heartbeat", Scope::kRunnerPrefix},
    {Role::kRunner, DomainKind::kTaskQueue, "lease complete fail", Scope::kRunnerPrefix},
    {Role::kRunner, DomainKind::kTaskQueue, "ping", Scope::kAny},
    {Role::kRunner, DomainKind::kPoolManager, "acquire release", Scope::kRunnerPrefix},
    {Role::kRunner, DomainKind::kPoolManager, "ping", Scope::kAny},
    {Role::kConsumer, DomainKind::kEvents, "receive", Scope::kOwnGroup},
    {Role::kConsumer, DomainKind::kAcks, "ack", Scope::kOwnGroup},
    {Role::kConsumer, DomainKind::kControl, "get lookup ping", Scope::kAny},
    {Role::kSubmitter, DomainKind::kTaskQueue, "submit get list cancel stats ping", Scope::kAny},
    {Role::kReader, DomainKind::kControl, "ping get list count stats lookup", Scope::kAny},
    {Role::kReader, DomainKind::kTaskQueue, "ping get list stats", Scope::kAny},
    {Role::kReader, DomainKind::kPoolManager, "ping status stats", Scope::kAny},
    {Role::kAdmin, DomainKind::kHb, "*", Scope::kAny},
    {Role::kAdmin, DomainKind::kEvents, "*", Scope::kAny},
    {Role::kAdmin, DomainKind::kAcks, "*", Scope::kAny},
    {Role::kAdmin, DomainKind::kControl, "*", Scope::kAny},
    {Role::kAdmin, DomainKind::kTaskQueue, "*", Scope::kAny},
    {Role::kAdmin, DomainKind::kPoolManager, "*", Scope::kAny},
}};

// Why something was refused. The names (deny_reason_name) are stable metric
// labels: rmon_authz_denied_total{endpoint,op,reason}.
enum class DenyReason : uint8_t {
  kNoIdentity,    // the message has no User-Id (not a CURVE connection)
  kUnknownKey,    // the key is not (or no longer) in the keyring
  kDomain,        // the role may not use this socket at all
  kOp,            // the role may not do this op here
  kRunnerPrefix,  // the runner_id is outside the runner's prefix
  kGroup,         // another consumer group
  kNoSubject,     // a scoped op without its runner_id or group
};
inline constexpr int kDenyReasonCount = 7;
std::string_view deny_reason_name(DenyReason reason);

struct [[nodiscard]] Decision {
  bool allowed = false;
  DenyReason reason = DenyReason::kOp;  // meaningful when !allowed
  std::string detail;  // when !allowed: names the principal and what it tried; never a secret

  static Decision allow() { return {true, DenyReason::kOp, {}}; }
  static Decision deny(DenyReason reason, std::string detail) {
    return {false, reason, std::move(detail)};
  }
  explicit operator bool() const { return allowed; }
};

// Whether `p` may complete a handshake on `domain` (the ZAP handler's test).
Decision admit(const Principal& p, const Domain& domain);

// Whether `p` may do `op` on `domain`. `subject` is the runner_id (runner
// rows) or the group (consumer rows; for events it defaults to the domain's
// group). `unowned`, with no subject: the request acts on nothing a runner
// owns now (a complete of a task not leased), so any runner may send it: the
// service can only refuse it (stale_attempt, conflict), and a runner late
// with its complete gets that answer, not `forbidden`. Allocates only when it
// denies.
Decision authorize(const Principal& p, const Domain& domain, std::string_view op,
                   std::optional<std::string_view> subject = std::nullopt, bool unowned = false);

}  // namespace rmon::security
