#include "rmon/config.hpp"

#include <cctype>
#include <iostream>

#include "rmon/logging.hpp"
#include "rmon/version.hpp"

namespace rmon {

Settings::Settings(std::string service, std::string description, std::string_view env_prefix)
    : env_prefix_(env_prefix), app_(std::move(description), std::move(service)) {
  app_.set_config("--config", "", "Read settings from this TOML/INI file", false)
      ->envname(env_name("config", env_prefix_));
  app_.add_option("--log-level", log_level_, "trace, debug, info, warn, error, critical or off")
      ->envname(env_name("log-level", env_prefix_))
      ->capture_default_str()
      ->check([](const std::string& v) {
        return parse_log_level(v) ? std::string() : "unknown log level '" + v + "'";
      });
  app_.set_version_flag("--version", app_.get_name() + " " + RMON_VERSION);
  app_.get_formatter()->column_width(40);
}

CLI::Option* Settings::add_flag(const std::string& flag, bool& var, const std::string& help) {
  return app_.add_flag("--" + flag + ",!--no-" + flag, var, help)
      ->envname(env_name(flag, env_prefix_))
      ->capture_default_str();
}

std::optional<int> Settings::parse(int argc, const char* const* argv) {
  try {
    app_.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app_.exit(e, std::cout, std::cerr);
  }
  return std::nullopt;
}

bool Settings::given(const std::string& flag) const {
  const CLI::Option* o = app_.get_option_no_throw("--" + flag);
  return o != nullptr && o->count() > 0;
}

std::string Settings::env_name(const std::string& flag, std::string_view prefix) {
  std::string out(prefix);
  for (char c : flag) {
    out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

}  // namespace rmon
