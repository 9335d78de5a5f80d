#pragma once
// CurveZMQ certificates in the files pyzmq (zmq.auth.create_certificates,
// load_certificate) and czmq (zcert) read and write:
//
//   NAME.key         metadata + curve/public-key            mode 0644
//   NAME.key_secret  metadata + curve/public-key, secret-key mode 0600
//
//   #   ZeroMQ CURVE Public Certificate        (comments: '#')
//   metadata
//       role = "runner"                        (czmq quotes; pyzmq does not)
//       runner_prefix = "sim-"
//   curve
//       public-key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
//
// The text is ZPL (ZeroMQ RFC 4): a line without indentation opens a section,
// indented `name = value` lines belong to it, values may be quoted with " or '
// or bare (a bare value ends at '#'). Sections other than `metadata` and
// `curve` are ignored. pyzmq writes metadata only into NAME.key_secret; this
// layer reads whatever is there, and the keyring decides what it requires.
//
// Errors name the file and line; none ever contains a secret key.

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rmon/security/error.hpp"
#include "rmon/security/keys.hpp"

namespace rmon::security {

// `metadata` section entries, in file order.
using Metadata = std::vector<std::pair<std::string, std::string>>;

// A certificate file is refused past this size (a clients directory may hold junk).
inline constexpr std::size_t kMaxCertificateBytes = 64 * 1024;

struct Certificate {
  PublicKey public_key;
  std::optional<SecretKey> secret_key;  // only in a .key_secret
  Metadata metadata;

  // The value of metadata `key`, or nullptr.
  const std::string* metadata_value(std::string_view key) const;
};

// Parses certificate text; `source` (a path) prefixes error messages. When a
// secret key is present it must belong to the public key.
Expected<Certificate> parse_certificate(std::string_view text, std::string_view source);

// The text of NAME.key (include_secret false: the secret is left out even if
// present) or of NAME.key_secret (true; the certificate must hold one). Values
// are written quoted, as czmq does; `generated_by` goes into the banner.
// Throws std::invalid_argument for metadata ZPL cannot hold (see
// check_metadata) or include_secret without a secret: a bug in the caller.
std::string format_certificate(const Certificate& cert, bool include_secret,
                               std::string_view generated_by = "rmon");

// Metadata names must be ZPL names (letters, digits, $-_@.&+/) and values may
// not hold a quote or a line break. An error names the offending entry.
Status check_metadata(const Metadata& metadata);

// Reads and parses a certificate file (public or secret).
Expected<Certificate> load_certificate(const std::filesystem::path& file);
// Own keys from a .key_secret: an error when the file has no secret key.
Expected<KeyPair> load_key_pair(const std::filesystem::path& secret_file);
// A peer's public key from its .key (a .key_secret is accepted too).
Expected<PublicKey> load_public_key(const std::filesystem::path& file);

// A warning to log when `secret_file` can be read by group or others (pyzmq
// writes its .key_secret with the process umask, often 0644); nullopt when its
// mode is 0600 or stricter, or it cannot be stat'ed (loading reports that).
std::optional<std::string> secret_file_mode_warning(const std::filesystem::path& secret_file);

enum class Overwrite : bool { kNo = false, kYes = true };

// dir/NAME.key and dir/NAME.key_secret.
std::filesystem::path public_file(const std::filesystem::path& dir, std::string_view name);
std::filesystem::path secret_file(const std::filesystem::path& dir, std::string_view name);

// Writes dir/NAME.key_secret (mode 0600) and dir/NAME.key (0644), each
// atomically (a temporary file renamed into place, so a watcher never reads
// half a file). With Overwrite::kNo it fails, writing nothing, when either
// file exists. `metadata` goes into both files (czmq does the same).
Status save_certificate(const std::filesystem::path& dir, std::string_view name,
                        const KeyPair& keys, const Metadata& metadata,
                        Overwrite overwrite = Overwrite::kNo,
                        std::string_view generated_by = "rmon-keygen");
// Writes only a public certificate `file` (0644), e.g. into a clients directory.
Status save_public_certificate(const std::filesystem::path& file, const PublicKey& key,
                               const Metadata& metadata, Overwrite overwrite = Overwrite::kNo,
                               std::string_view generated_by = "rmon-keygen");

}  // namespace rmon::security
