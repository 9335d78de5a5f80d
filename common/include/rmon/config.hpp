#pragma once
// Service settings from flags, environment variables and a config file.
//
// Every setting `--some-name` can also be given as the environment variable
// RMON_SOME_NAME (docker-compose uses these) or as `some-name = value` in a
// TOML/INI file named by --config (or RMON_CONFIG). When a setting is given
// more than one way, the flag wins, then the config file, then the
// environment. `--help` lists every setting with its default.

#include <CLI/CLI.hpp>

#include <optional>
#include <string>

namespace rmon {

class Settings {
 public:
  // Adds the settings every service has: --config and --log-level, and
  // --version, which prints "<service> <project version>".
  Settings(std::string service, std::string description);

  // Registers `--flag` bound to `var`, whose current value is the default.
  template <class T>
  CLI::Option* add(const std::string& flag, T& var, const std::string& help) {
    return app_.add_option("--" + flag, var, help)->envname(env_name(flag))->capture_default_str();
  }
  // A boolean switch (`--flag` / `--flag=false`).
  CLI::Option* add_flag(const std::string& flag, bool& var, const std::string& help);

  // Parses the command line. Returns an exit code when the program should stop
  // now (after --help or --version, or a bad setting, which is printed), else
  // nullopt.
  std::optional<int> parse(int argc, const char* const* argv);

  const std::string& log_level() const { return log_level_; }
  CLI::App& app() { return app_; }

  // "--heartbeat-endpoint" style flag name -> "RMON_HEARTBEAT_ENDPOINT".
  static std::string env_name(const std::string& flag);

 private:
  CLI::App app_;
  std::string log_level_ = "info";
};

}  // namespace rmon
