// rmon-keygen: CurveZMQ certificates for the stack, in the format pyzmq and
// czmq read (see rmon/security/certificate.hpp and keygen/stack_keys.hpp).
//   rmon-keygen NAME --role ROLE [--runner-prefix P | --group G] [--dir D] [--force]
//   rmon-keygen init DIR [--runner-prefix P] [--force]
//   rmon-keygen --print-public FILE
//   rmon-keygen --public-from NAME.key_secret [--dir D] [--force]
// Exit status: 0 done, 1 a key could not be read or written, 2 usage.

#include <CLI/CLI.hpp>

#include <iostream>
#include <optional>

#include "keygen/stack_keys.hpp"
#include "rmon/version.hpp"

namespace {

namespace fs = std::filesystem;
using namespace rmon;

constexpr int kFailed = 1;
constexpr int kUsage = 2;

int fail(const std::string& message, int status = kFailed) {
  std::cerr << "rmon-keygen: " << message << "\n";
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("CurveZMQ key pairs for runner-monitor, task-queue and pool-manager", "rmon-keygen");
  app.set_version_flag("--version", std::string("rmon-keygen ") + RMON_VERSION);
  std::string name, role_text, group, print_public, public_from, dir = ".";
  std::optional<std::string> runner_prefix;
  bool force = false;
  app.add_option("name", name, "Key name: writes DIR/NAME.key_secret and DIR/NAME.key");
  app.add_option("--role", role_text, "runner, consumer, submitter, reader or admin");
  app.add_option("--runner-prefix", runner_prefix,
                 "runner: the runner ids it may act for (\"\" = every runner id)");
  app.add_option("--group", group, "consumer: its event group (task-queue, pool-manager, ...)");
  app.add_option("--dir", dir, "Folder to write into")->capture_default_str();
  app.add_option("--print-public", print_public, "Print the public key of a .key or .key_secret");
  app.add_option("--public-from", public_from,
                 "Write DIR/NAME.key (with metadata) from NAME.key_secret, e.g. one pyzmq wrote");
  app.add_flag("--force", force, "Replace existing keys");

  CLI::App* init =
      app.add_subcommand("init", "Write a whole stack's keys (one folder per service)");
  std::string init_dir;
  init->add_option("dir", init_dir, "Folder for the stack's keys")->required();
  init->add_option("--runner-prefix", runner_prefix,
                   "The runner key's prefix (default \"\": every runner id)");
  init->add_flag("--force", force, "Replace existing keys");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kUsage;
  }
  const auto overwrite = force ? security::Overwrite::kYes : security::Overwrite::kNo;

  if (init->parsed()) {
    auto files = keygen::init_stack(init_dir, {runner_prefix.value_or(""), overwrite});
    if (!files) return fail(files.error().message);
    std::cout << "wrote " << files->size() << " files under " << init_dir << "\n"
              << keygen::stack_usage(init_dir);
    if (runner_prefix.value_or("").empty()) {
      std::cout << "note: the runner key covers every runner id; give each runner host its own "
                   "key with `rmon-keygen NAME --role runner --runner-prefix P`\n";
    }
    return 0;
  }
  if (!print_public.empty()) {
    auto key = security::load_public_key(print_public);
    if (!key) return fail(key.error().message);
    std::cout << key->z85() << "\n";
    return 0;
  }
  if (!public_from.empty()) {
    auto out = keygen::public_from_secret(public_from, dir, overwrite);
    if (!out) return fail(out.error().message);
    std::cout << "wrote " << out->string() << "\n";
    return 0;
  }
  if (name.empty())
    return fail("give NAME --role ROLE, init DIR, --print-public or --public-from\n" + app.help(),
                kUsage);
  const auto role = security::parse_role(role_text);
  if (!role) return fail("--role must be runner, consumer, submitter, reader or admin", kUsage);
  if ((*role == security::Role::kRunner) != runner_prefix.has_value()) {
    return fail(
        "--runner-prefix goes with --role runner, and a runner needs one (\"\" for every "
        "runner id)",
        kUsage);
  }
  if ((*role == security::Role::kConsumer) == group.empty()) {
    return fail("--group goes with --role consumer, and a consumer needs one", kUsage);
  }
  auto written =
      keygen::write_client_key(dir, name, *role, runner_prefix.value_or(""), group, overwrite);
  if (!written) return fail(written.error().message);
  std::cout << "wrote " << written->string() << " and " << security::public_file(dir, name).string()
            << "\n";
  return 0;
}
