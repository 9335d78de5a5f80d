#pragma once
// Who a client key is: a principal, read from a public certificate in a
// service's clients directory (PROTOCOL.md "Security"). Its name is the file
// stem (clients/runner-eu1.key -> "runner-eu1"); its role and scope come from
// the certificate's metadata section:
//
//   role = runner     + runner_prefix = P  (required; "" covers every runner id)
//   role = consumer   + group = G          (required, not empty)
//   role = submitter | reader | admin
//
// Unknown metadata names are ignored (czmq and pyzmq users add their own).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "rmon/security/certificate.hpp"
#include "rmon/security/error.hpp"
#include "rmon/security/keys.hpp"

namespace rmon::security {

enum class Role : uint8_t { kRunner, kConsumer, kSubmitter, kReader, kAdmin };
inline constexpr int kRoleCount = 5;

// "runner", "consumer", ... (metadata values and metric labels).
std::string_view role_name(Role role);
std::optional<Role> parse_role(std::string_view name);

// Metadata names.
inline constexpr std::string_view kRoleKey = "role";
inline constexpr std::string_view kRunnerPrefixKey = "runner_prefix";
inline constexpr std::string_view kGroupKey = "group";

struct Principal {
  std::string name;  // file stem; what logs and refusals name
  PublicKey public_key;
  std::string public_z85;  // public_key as ZeroMQ gives it in `User-Id`
  Role role = Role::kReader;
  std::string runner_prefix;  // runner only
  std::string group;          // consumer only

  // "runner-eu1 (runner, prefix eu1-)", for logs and refusal details.
  std::string describe() const;
};

// The principal of `cert`, named `name`; `source` (the file) prefixes errors.
// An error when the role is missing or unknown or its scope key is missing;
// a certificate without metadata gets a hint that pyzmq writes metadata only
// into the .key_secret.
Expected<Principal> principal_from_certificate(const Certificate& cert, std::string name,
                                               std::string_view source);

// The metadata a certificate needs for this principal (keygen).
Metadata principal_metadata(Role role, std::string_view runner_prefix, std::string_view group);

}  // namespace rmon::security
