#pragma once
// rmon-keygen's work, apart from its command line: one client key pair, a
// whole stack's keys (`init`), a public certificate from a secret one.
//
// `init DIR` lays the keys out so that each service mounts one folder:
//
//   DIR/runner-monitor/runner-monitor.key_secret  --curve-secret-file
//   DIR/runner-monitor/clients/                   --curve-clients-dir: admin reader runner
//                                                 consumer-task-queue consumer-pool-manager
//   DIR/task-queue/task-queue.key_secret          --curve-secret-file
//   DIR/task-queue/clients/                       --curve-clients-dir: admin reader submitter
//   runner DIR/task-queue/consumer-task-queue.key_secret its client key to the monitor (consumer,
//                                                 group task-queue)
//   DIR/task-queue/runner-monitor.key             --monitor-public-key-file
//   DIR/pool-manager/...                          the same, clients admin reader runner,
//                                                 consumer-pool-manager
//   DIR/clients/NAME.key_secret                   people and tools: admin, reader, submitter,
//                                                 runner
//   DIR/servers/SERVICE.key                       the services' public keys, for clients
//
// The runner key's prefix is StackOptions::runner_prefix; its default ""
// covers every runner id (one key for a demo fleet such as runner-sim's).
// Real fleets give each host its own key: `rmon-keygen NAME --role runner
// --runner-prefix P`, copied into each service's clients/.

#include <filesystem>
#include <string>
#include <vector>

#include "rmon/security/certificate.hpp"
#include "rmon/security/principal.hpp"

namespace rmon::keygen {

using security::Expected;
using security::Status;

// A key name: letters, digits, '.', '_', '-', not starting with '.'.
Status check_key_name(std::string_view name);

// Writes dir/NAME.key_secret and dir/NAME.key for a client principal.
// Returns the secret file's path.
Expected<std::filesystem::path> write_client_key(const std::filesystem::path& dir,
                                                 std::string_view name, security::Role role,
                                                 std::string_view runner_prefix,
                                                 std::string_view group,
                                                 security::Overwrite overwrite);

struct StackOptions {
  std::string runner_prefix;  // "" = every runner id
  security::Overwrite overwrite = security::Overwrite::kNo;
};

// Writes a whole stack's keys under `dir` (see above). Without overwrite,
// fails before writing anything when any of the files exists. Returns the
// files written.
Expected<std::vector<std::filesystem::path>> init_stack(const std::filesystem::path& dir,
                                                        const StackOptions& options);

// What to pass each service, for the operator (printed after init).
std::string stack_usage(const std::filesystem::path& dir);

// Writes dir/NAME.key from NAME.key_secret with its metadata, for keys that
// pyzmq created (it writes metadata only into the secret file). The
// certificate must be a valid client principal. Returns the file written.
Expected<std::filesystem::path> public_from_secret(const std::filesystem::path& secret_file,
                                                   const std::filesystem::path& dir,
                                                   security::Overwrite overwrite);

}  // namespace rmon::keygen
