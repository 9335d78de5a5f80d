// The contract's role table (PROTOCOL.md "Security"), row by row: what each
// role may do on each socket, and what it is refused with which reason.

#include <gtest/gtest.h>

#include <algorithm>

#include "rmon/security/rules.hpp"

namespace rmon::security {
namespace {

Principal principal(Role role, std::string scope = {}) {
  Principal p{std::string(role_name(role)), KeyPair::generate().public_key, {}, role, {}, {}};
  if (role == Role::kRunner) p.runner_prefix = scope;
  if (role == Role::kConsumer) p.group = scope;
  return p;
}

const Principal kRunner = principal(Role::kRunner, "eu1-");
const Principal kConsumer = principal(Role::kConsumer, "task-queue");
const Principal kSubmitter = principal(Role::kSubmitter);
const Principal kReader = principal(Role::kReader);
const Principal kAdmin = principal(Role::kAdmin);

const Domain kHb = Domain::hb(), kAcks = Domain::acks(), kControl = Domain::control(),
             kTasks = Domain::task_queue(), kPools = Domain::pool_manager(),
             kTqEvents = Domain::events("task-queue"), kPmEvents = Domain::events("pool-manager");

struct Case {
  const Principal* who;
  Domain domain;
  std::string op;
  std::optional<std::string> subject;
  std::optional<DenyReason> denied;  // nullopt: allowed
};

std::string describe(const Case& c) {
  return c.who->describe() + " " + c.op + " on " + c.domain.name() + " for " +
         c.subject.value_or("(none)");
}

void check(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    std::optional<std::string_view> subject;
    if (c.subject) subject = *c.subject;
    const Decision d = authorize(*c.who, c.domain, c.op, subject);
    if (!c.denied) {
      EXPECT_TRUE(d.allowed) << describe(c) << ": " << d.detail;
      continue;
    }
    EXPECT_FALSE(d.allowed) << describe(c);
    if (d.allowed) continue;
    EXPECT_EQ(deny_reason_name(d.reason), deny_reason_name(*c.denied)) << describe(c);
    EXPECT_NE(d.detail.find(c.who->name), std::string::npos) << d.detail;
  }
}

constexpr auto kPrefix = DenyReason::kRunnerPrefix;
constexpr auto kOp = DenyReason::kOp;
constexpr auto kDomainDenied = DenyReason::kDomain;
constexpr auto kGroup = DenyReason::kGroup;
constexpr auto kNoSubject = DenyReason::kNoSubject;

// runner (prefix P): heartbeat runner ids starting with P; lease for such a
// runner id; complete/fail tasks leased to such a runner; acquire/release for
// such a runner id; ping.
TEST(Rules, ARunnerActsOnlyForRunnerIdsOfItsPrefix) {
  check({
      {&kRunner, kHb, "heartbeat", "eu1-7", {}},
      {&kRunner, kHb, "heartbeat", "us2-7", kPrefix},
      {&kRunner, kHb, "heartbeat", "eu1", kPrefix},  // shorter than the prefix
      {&kRunner, kHb, "heartbeat", {}, kNoSubject},
      {&kRunner, kTasks, "lease", "eu1-7", {}},
      {&kRunner, kTasks, "lease", "us2-7", kPrefix},
      {&kRunner, kTasks, "complete", "eu1-7", {}},
      {&kRunner, kTasks, "complete", "us2-7", kPrefix},
      {&kRunner, kTasks, "fail", "eu1-7", {}},
      {&kRunner, kTasks, "fail", "us2-7", kPrefix},
      {&kRunner, kTasks, "ping", {}, {}},
      {&kRunner, kTasks, "submit", {}, kOp},
      {&kRunner, kTasks, "cancel", "eu1-7", kOp},
      {&kRunner, kTasks, "list", {}, kOp},
      {&kRunner, kPools, "acquire", "eu1-7", {}},
      {&kRunner, kPools, "acquire", "us2-7", kPrefix},
      {&kRunner, kPools, "release", "eu1-7", {}},
      {&kRunner, kPools, "release", "us2-7", kPrefix},
      {&kRunner, kPools, "ping", {}, {}},
      {&kRunner, kPools, "status", {}, kOp},
      {&kRunner, kControl, "ping", {}, kDomainDenied},
      {&kRunner, kControl, "remove", "eu1-7", kDomainDenied},
      {&kRunner, kTqEvents, "receive", {}, kDomainDenied},
      {&kRunner, kAcks, "ack", "task-queue", kDomainDenied},
  });
}

TEST(Rules, AnEmptyRunnerPrefixCoversEveryRunnerId) {
  const Principal all = principal(Role::kRunner, "");
  check({{&all, kHb, "heartbeat", "anything", {}}, {&all, kTasks, "complete", "", {}}});
}

// consumer (group G): receive group G's events (no other group's event socket
// admits it); ack only group G; monitor get, lookup, ping.
TEST(Rules, AConsumerHasItsOwnGroupsEventsAndAcksAndMonitorReads) {
  check({
      {&kConsumer, kTqEvents, "receive", {}, {}},
      {&kConsumer, kPmEvents, "receive", {}, kGroup},
      {&kConsumer, kAcks, "ack", "task-queue", {}},
      {&kConsumer, kAcks, "ack", "pool-manager", kGroup},
      {&kConsumer, kAcks, "ack", {}, kNoSubject},
      {&kConsumer, kControl, "get", {}, {}},
      {&kConsumer, kControl, "lookup", {}, {}},
      {&kConsumer, kControl, "ping", {}, {}},
      {&kConsumer, kControl, "list", {}, kOp},
      {&kConsumer, kControl, "remove", {}, kOp},
      {&kConsumer, kControl, "release_brake", {}, kOp},
      {&kConsumer, kHb, "heartbeat", "eu1-7", kDomainDenied},
      {&kConsumer, kTasks, "get", {}, kDomainDenied},
      {&kConsumer, kPools, "status", {}, kDomainDenied},
  });
}

// submitter: task-queue submit, get, list, cancel, stats, ping.
TEST(Rules, ASubmitterUsesOnlyTheTaskQueueApi) {
  check({
      {&kSubmitter, kTasks, "submit", {}, {}},
      {&kSubmitter, kTasks, "get", {}, {}},
      {&kSubmitter, kTasks, "list", {}, {}},
      {&kSubmitter, kTasks, "cancel", {}, {}},
      {&kSubmitter, kTasks, "stats", {}, {}},
      {&kSubmitter, kTasks, "ping", {}, {}},
      {&kSubmitter, kTasks, "lease", "eu1-7", kOp},
      {&kSubmitter, kTasks, "complete", "eu1-7", kOp},
      {&kSubmitter, kTasks, "fail", "eu1-7", kOp},
      {&kSubmitter, kControl, "ping", {}, kDomainDenied},
      {&kSubmitter, kPools, "ping", {}, kDomainDenied},
      {&kSubmitter, kHb, "heartbeat", "eu1-7", kDomainDenied},
  });
}

// reader: every read: ping, get, list, count, stats, lookup, status.
TEST(Rules, AReaderMayReadEverythingAndChangeNothing) {
  std::vector<Case> cases;
  for (const char* op : {"ping", "get", "list", "count", "stats", "lookup"}) {
    cases.push_back({&kReader, kControl, op, {}, {}});
  }
  for (const char* op : {"ping", "get", "list", "stats"})
    cases.push_back({&kReader, kTasks, op, {}, {}});
  for (const char* op : {"ping", "status", "stats"})
    cases.push_back({&kReader, kPools, op, {}, {}});
  for (const char* op : {"add", "remove", "set_state", "release_brake"}) {
    cases.push_back({&kReader, kControl, op, {}, kOp});
  }
  for (const char* op : {"submit", "cancel", "lease", "complete", "fail"}) {
    cases.push_back({&kReader, kTasks, op, {}, kOp});
  }
  for (const char* op : {"acquire", "release"}) cases.push_back({&kReader, kPools, op, {}, kOp});
  cases.push_back({&kReader, kHb, "heartbeat", "eu1-7", kDomainDenied});
  cases.push_back({&kReader, kTqEvents, "receive", {}, kDomainDenied});
  cases.push_back({&kReader, kAcks, "ack", "task-queue", kDomainDenied});
  check(cases);
}

// admin: everything, including monitor add, remove, set_state, release_brake.
TEST(Rules, AnAdminMayDoEverything) {
  check({
      {&kAdmin, kControl, "add", {}, {}},
      {&kAdmin, kControl, "remove", "us2-7", {}},
      {&kAdmin, kControl, "set_state", {}, {}},
      {&kAdmin, kControl, "release_brake", {}, {}},
      {&kAdmin, kControl, "lookup", {}, {}},
      {&kAdmin, kHb, "heartbeat", "anyone", {}},
      {&kAdmin, kTqEvents, "receive", {}, {}},
      {&kAdmin, kPmEvents, "receive", {}, {}},
      {&kAdmin, kAcks, "ack", "pool-manager", {}},
      {&kAdmin, kTasks, "complete", "us2-7", {}},
      {&kAdmin, kTasks, "submit", {}, {}},
      {&kAdmin, kPools, "acquire", "us2-7", {}},
      {&kAdmin, kPools, "release", {}, {}},
  });
}

// The handshake: a domain admits only the roles some row names for it.
TEST(Rules, EachDomainAdmitsOnlyTheRolesThatMayUseIt) {
  const std::vector<Domain> domains = {kHb, kTqEvents, kPmEvents, kAcks, kControl, kTasks, kPools};
  const std::vector<std::pair<const Principal*, std::vector<std::string>>> admitted = {
      {&kRunner, {"hb", "task-queue", "pool-manager"}},
      {&kConsumer, {"events.task-queue", "acks", "control"}},
      {&kSubmitter, {"task-queue"}},
      {&kReader, {"control", "task-queue", "pool-manager"}},
      {&kAdmin,
       {"hb", "events.task-queue", "events.pool-manager", "acks", "control", "task-queue",
        "pool-manager"}},
  };
  for (const auto& [who, names] : admitted) {
    for (const Domain& d : domains) {
      const bool expected = std::find(names.begin(), names.end(), d.name()) != names.end();
      EXPECT_EQ(admit(*who, d).allowed, expected) << who->describe() << " on " << d.name();
    }
  }
  EXPECT_EQ(admit(kConsumer, kPmEvents).reason, DenyReason::kGroup);
  EXPECT_EQ(admit(kSubmitter, kHb).reason, DenyReason::kDomain);
}

TEST(Rules, DomainsRoundTripThroughTheirZapNames) {
  for (const Domain& d : {kHb, kTqEvents, kAcks, kControl, kTasks, kPools}) {
    EXPECT_EQ(Domain::parse(d.name()), d) << d.name();
  }
  EXPECT_EQ(kTqEvents.name(), "events.task-queue");
  EXPECT_FALSE(Domain::parse("events."));
  EXPECT_FALSE(Domain::parse("events"));
  EXPECT_FALSE(Domain::parse(""));
  EXPECT_FALSE(Domain::parse("HB"));
}

TEST(Rules, DetailsEchoABoundedSubject) {
  const Decision d = authorize(kRunner, kHb, "heartbeat", std::string(5000, 'x'));
  ASSERT_FALSE(d.allowed);
  EXPECT_LT(d.detail.size(), 300u);
  EXPECT_NE(d.detail.find("runner (runner, prefix \"eu1-\") may not heartbeat"), std::string::npos)
      << d.detail;
}

}  // namespace
}  // namespace rmon::security
