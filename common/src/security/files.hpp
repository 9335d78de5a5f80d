#pragma once
// File helpers of the security layer (internal): bounded reads and atomic,
// mode-exact writes.

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>

#include "rmon/security/error.hpp"

namespace rmon::security::detail {

// The whole file, refused past `max_bytes`. Errors start with the path.
Expected<std::string> read_small_file(const std::filesystem::path& file, std::size_t max_bytes);

// Writes `content` to a temporary file beside `file` with exactly `mode`,
// fsyncs it, then renames it into place (overwrite) or links it (no
// overwrite: fails with "exists" if `file` is there, atomically).
Status write_file_atomic(const std::filesystem::path& file, std::string_view content, mode_t mode,
                         bool overwrite);

// "<path>: <what>: <strerror(errno)>"
Error errno_error(const std::filesystem::path& file, std::string_view what);

}  // namespace rmon::security::detail
