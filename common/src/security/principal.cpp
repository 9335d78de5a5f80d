#include "rmon/security/principal.hpp"

#include <array>

namespace rmon::security {
namespace {

constexpr std::array<std::string_view, kRoleCount> kRoleNames = {"runner", "consumer", "submitter",
                                                                 "reader", "admin"};

}  // namespace

std::string_view role_name(Role role) { return kRoleNames[static_cast<std::size_t>(role)]; }

std::optional<Role> parse_role(std::string_view name) {
  for (std::size_t i = 0; i < kRoleNames.size(); ++i) {
    if (kRoleNames[i] == name) return static_cast<Role>(i);
  }
  return std::nullopt;
}

std::string Principal::describe() const {
  std::string out = name + " (" + std::string(role_name(role));
  if (role == Role::kRunner) out += ", prefix \"" + runner_prefix + "\"";
  if (role == Role::kConsumer) out += ", group " + group;
  return out + ")";
}

Expected<Principal> principal_from_certificate(const Certificate& cert, std::string name,
                                               std::string_view source) {
  const std::string src(source);
  const std::string* role_value = cert.metadata_value(kRoleKey);
  if (role_value == nullptr) {
    if (cert.metadata.empty()) {
      return Error{src + ": no metadata (a client key needs `role` in its metadata section; " +
                   "pyzmq writes metadata only into the .key_secret: use `rmon-keygen " +
                   "--public-from NAME.key_secret`)"};
    }
    return Error{src + ": metadata has no role"};
  }
  const auto role = parse_role(*role_value);
  if (!role) {
    return Error{src + ": unknown role \"" + *role_value +
                 "\" (runner, consumer, submitter, reader or admin)"};
  }
  Principal p{std::move(name), cert.public_key, cert.public_key.z85(), *role, {}, {}};
  if (*role == Role::kRunner) {
    const std::string* prefix = cert.metadata_value(kRunnerPrefixKey);
    if (prefix == nullptr) {
      return Error{src + ": role runner needs runner_prefix (\"\" for every runner id)"};
    }
    p.runner_prefix = *prefix;
  } else if (*role == Role::kConsumer) {
    const std::string* group = cert.metadata_value(kGroupKey);
    if (group == nullptr || group->empty()) return Error{src + ": role consumer needs a group"};
    p.group = *group;
  }
  return p;
}

Metadata principal_metadata(Role role, std::string_view runner_prefix, std::string_view group) {
  Metadata m{{std::string(kRoleKey), std::string(role_name(role))}};
  if (role == Role::kRunner) m.emplace_back(kRunnerPrefixKey, runner_prefix);
  if (role == Role::kConsumer) m.emplace_back(kGroupKey, group);
  return m;
}

}  // namespace rmon::security
