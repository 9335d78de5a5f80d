#include "rmon/security/rules.hpp"

namespace rmon::security {
namespace {

constexpr std::array<std::string_view, kDenyReasonCount> kDenyReasons = {
    "no_identity", "unknown_key", "domain", "op", "runner_prefix", "group", "no_subject"};

constexpr std::string_view kEventsPrefix = "events.";

constexpr std::array<std::string_view, kDomainKindCount> kDomainNames = {
    "hb", "events", "acks", "control", "task-queue", "pool-manager"};

bool has_op(std::string_view ops, std::string_view op) {
  if (ops == "*") return true;
  while (!ops.empty()) {
    const auto sp = ops.find(' ');
    if (ops.substr(0, sp) == op) return true;
    if (sp == std::string_view::npos) break;
    ops.remove_prefix(sp + 1);
  }
  return false;
}

// Values from a request are echoed into details, bounded like protocol ids.
std::string quoted(std::string_view untrusted) {
  constexpr std::size_t kMax = 128;
  std::string out(1, '"');  // appends, not operator+: GCC 12 -O3 misfires -Wrestrict on it
  out.append(untrusted.substr(0, kMax));
  out.append(untrusted.size() > kMax ? "...\"" : "\"");
  return out;
}

Decision check_scope(const Rule& rule, const Principal& p, const Domain& domain,
                     std::string_view op, std::optional<std::string_view> subject, bool unowned) {
  switch (rule.scope) {
    case Scope::kAny:
      return Decision::allow();
    case Scope::kRunnerPrefix:
      if (!subject && unowned) return Decision::allow();
      if (!subject) {
        return Decision::deny(DenyReason::kNoSubject,
                              p.describe() + " may " + std::string(op) + " only for a runner_id");
      }
      if (subject->substr(0, p.runner_prefix.size()) != p.runner_prefix) {
        return Decision::deny(
            DenyReason::kRunnerPrefix,
            p.describe() + " may not " + std::string(op) + " for runner_id " + quoted(*subject));
      }
      return Decision::allow();
    case Scope::kOwnGroup: {
      if (!subject && domain.kind == DomainKind::kEvents) subject = domain.group;
      if (!subject) {
        return Decision::deny(DenyReason::kNoSubject,
                              p.describe() + " may " + std::string(op) + " only for a group");
      }
      if (*subject != p.group) {
        return Decision::deny(DenyReason::kGroup, p.describe() + " may not " + std::string(op) +
                                                      " for group " + quoted(*subject));
      }
      return Decision::allow();
    }
  }
  return Decision::deny(DenyReason::kOp, "unknown scope");
}

}  // namespace

std::string_view deny_reason_name(DenyReason reason) {
  return kDenyReasons[static_cast<std::size_t>(reason)];
}

std::string Domain::name() const {
  if (kind == DomainKind::kEvents) return std::string(kEventsPrefix) + group;
  return std::string(kDomainNames[static_cast<std::size_t>(kind)]);
}

std::optional<Domain> Domain::parse(std::string_view name) {
  if (name.substr(0, kEventsPrefix.size()) == kEventsPrefix) {
    if (name.size() == kEventsPrefix.size()) return std::nullopt;
    return Domain::events(std::string(name.substr(kEventsPrefix.size())));
  }
  for (std::size_t i = 0; i < kDomainNames.size(); ++i) {
    const auto kind = static_cast<DomainKind>(i);
    if (kind != DomainKind::kEvents && kDomainNames[i] == name) return Domain{kind, {}};
  }
  return std::nullopt;
}

Decision admit(const Principal& p, const Domain& domain) {
  for (const Rule& rule : kRules) {
    if (rule.role != p.role || rule.domain != domain.kind) continue;
    // The events socket of another group never admits a consumer.
    if (domain.kind == DomainKind::kEvents && rule.scope == Scope::kOwnGroup) {
      return check_scope(rule, p, domain, ops::kReceive, std::nullopt, false);
    }
    return Decision::allow();
  }
  return Decision::deny(DenyReason::kDomain,
                        p.describe() + " may not connect to domain " + domain.name());
}

Decision authorize(const Principal& p, const Domain& domain, std::string_view op,
                   std::optional<std::string_view> subject, bool unowned) {
  bool admitted = false;
  for (const Rule& rule : kRules) {
    if (rule.role != p.role || rule.domain != domain.kind) continue;
    admitted = true;
    if (has_op(rule.ops, op)) return check_scope(rule, p, domain, op, subject, unowned);
  }
  if (!admitted) {
    return Decision::deny(DenyReason::kDomain,
                          p.describe() + " may not use domain " + domain.name());
  }
  return Decision::deny(DenyReason::kOp,
                        p.describe() + " may not " + quoted(op) + " on " + domain.name());
}

}  // namespace rmon::security
