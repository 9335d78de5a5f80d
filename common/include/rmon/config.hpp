#pragma once
// Service settings from flags, environment variables and a config file.
//
// Every setting `--some-name` can also be given as the environment variable
// RMON_SOME_NAME (docker-compose uses these) or as `some-name = value` in a
// TOML/INI file named by --config (or RMON_CONFIG). When a setting is given
// more than one way, the flag wins, then the config file, then the
// environment. `--help` lists every setting with its default and variable.
//
// RMON_ is the services' prefix: they share one namespace of variables. A
// tool run beside them takes a prefix of its own (RMON_EVENT_SINK_ for
// rmon-event-sink), or a shell that exports a service's settings would
// configure the tool too (its --group read as RMON_GROUP, the monitor's).

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace rmon {

// The services' environment variable prefix.
inline constexpr std::string_view kServiceEnvPrefix = "RMON_";

class Settings {
 public:
  // Adds the settings every service has: --config and --log-level, and
  // --version, which prints "<service> <project version>". Every setting's
  // environment variable is `env_prefix` followed by its name (env_name).
  Settings(std::string service, std::string description,
           std::string_view env_prefix = kServiceEnvPrefix);

  // Registers `--flag` bound to `var`, whose current value is the default.
  template <class T>
  CLI::Option* add(const std::string& flag, T& var, const std::string& help) {
    return app_.add_option("--" + flag, var, help)
        ->envname(env_name(flag, env_prefix_))
        ->capture_default_str();
  }
  // A boolean switch (`--flag` / `--flag=false`).
  CLI::Option* add_flag(const std::string& flag, bool& var, const std::string& help);

  // Parses the command line. Returns an exit code when the program should stop
  // now (after --help or --version, or a bad setting, which is printed), else
  // nullopt.
  std::optional<int> parse(int argc, const char* const* argv);

  // Whether `--flag` was set at all (command line, config file or
  // environment); false while it keeps its default.
  bool given(const std::string& flag) const;

  const std::string& log_level() const { return log_level_; }
  CLI::App& app() { return app_; }

  // "heartbeat-endpoint" style flag name -> "RMON_HEARTBEAT_ENDPOINT" (with
  // the services' prefix).
  static std::string env_name(const std::string& flag, std::string_view prefix = kServiceEnvPrefix);

 private:
  const std::string env_prefix_;
  CLI::App app_;
  std::string log_level_ = "info";
};

}  // namespace rmon
