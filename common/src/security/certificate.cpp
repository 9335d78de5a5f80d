#include "rmon/security/certificate.hpp"

#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "files.hpp"

namespace rmon::security {
namespace {

constexpr std::string_view kSpace = " \t";

std::string_view trim(std::string_view s) {
  const auto b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(kSpace) - b + 1);
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::strchr("$-_@.&+/", c) != nullptr;
}

// One `name = value` line of a section, after its indentation.
struct Entry {
  std::string_view name;
  std::string value;
  bool has_value = false;
};

// ZPL: `name`, `name = value`, `name = "value"`, `name = 'value'`; a bare value
// ends at '#'. Returns an error text (without the line) on a broken quote.
std::optional<std::string> parse_entry(std::string_view line, Entry& out) {
  std::size_t i = 0;
  while (i < line.size() && is_name_char(line[i])) ++i;
  out.name = line.substr(0, i);
  if (out.name.empty()) return "expected a name";
  std::string_view rest = trim(line.substr(i));
  if (rest.empty() || rest[0] == '#') return std::nullopt;
  if (rest[0] != '=') return "expected '=' after " + std::string(out.name);
  rest = trim(rest.substr(1));
  out.has_value = true;
  if (!rest.empty() && (rest[0] == '"' || rest[0] == '\'')) {
    const auto end = rest.find(rest[0], 1);
    if (end == std::string_view::npos) return "unterminated quote in " + std::string(out.name);
    out.value = std::string(rest.substr(1, end - 1));
    return std::nullopt;
  }
  out.value = std::string(trim(rest.substr(0, rest.find('#'))));
  return std::nullopt;
}

Error line_error(std::string_view source, int line, std::string_view what) {
  return Error{std::string(source) + ": line " + std::to_string(line) + ": " + std::string(what)};
}

std::string banner_time() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

void wipe(std::string& s) {
  explicit_bzero(s.data(), s.size());
  s.clear();
}

}  // namespace

const std::string* Certificate::metadata_value(std::string_view key) const {
  for (const auto& [k, v] : metadata) {
    if (k == key) return &v;
  }
  return nullptr;
}

Expected<Certificate> parse_certificate(std::string_view text, std::string_view source) {
  std::string section;
  std::optional<PublicKey> pub;
  std::optional<SecretKey> secret;
  int secret_line = 0;
  Metadata metadata;
  int line_no = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::string_view body = trim(line);
    if (body.empty() || body[0] == '#') continue;
    Entry e;
    if (auto err = parse_entry(body, e)) return line_error(source, line_no, *err);
    if (line.find_first_not_of(kSpace) == 0) {  // no indentation: a section
      section = std::string(e.name);
      continue;
    }
    if (section.empty()) return line_error(source, line_no, "indented line outside a section");
    if (section == "metadata" && e.has_value) {
      for (const auto& [k, v] : metadata) {
        if (k == e.name) return line_error(source, line_no, "metadata " + k + " given twice");
      }
      metadata.emplace_back(std::string(e.name), std::move(e.value));
    } else if (section == "curve" && e.name == "public-key") {
      if (pub) return line_error(source, line_no, "public-key given twice");
      pub = PublicKey::from_z85(e.value);
      if (!pub) return line_error(source, line_no, "public-key is not a 40-character Z85 key");
    } else if (section == "curve" && e.name == "secret-key") {
      if (secret) return line_error(source, line_no, "secret-key given twice");
      secret = SecretKey::from_z85(e.value);
      wipe(e.value);
      if (!secret) return line_error(source, line_no, "secret-key is not a 40-character Z85 key");
      secret_line = line_no;
    }
  }
  if (!pub) return Error{std::string(source) + ": no public-key in a curve section"};
  if (secret && !(secret->derive_public() == *pub)) {
    return line_error(source, secret_line, "secret-key does not belong to the public-key");
  }
  return Certificate{*pub, std::move(secret), std::move(metadata)};
}

Status check_metadata(const Metadata& metadata) {
  for (const auto& [k, v] : metadata) {
    if (k.empty()) return Error{"metadata: an empty name"};
    for (char c : k) {
      if (!is_name_char(c))
        return Error{"metadata name '" + k + "': only letters, digits and $-_@.&+/"};
    }
    if (v.find_first_of("\"\r\n") != std::string::npos) {
      return Error{"metadata " + k + ": a value may not hold a double quote or a line break"};
    }
  }
  return {};
}

std::string format_certificate(const Certificate& cert, bool include_secret,
                               std::string_view generated_by) {
  if (Status s = check_metadata(cert.metadata); !s) throw std::invalid_argument(s.error().message);
  if (include_secret && !cert.secret_key) {
    throw std::invalid_argument("format_certificate: no secret key to include");
  }
  std::string out =
      "#   ****  Generated on " + banner_time() + " by " + std::string(generated_by) + "  ****\n";
  out += include_secret ? "#   ZeroMQ CURVE **Secret** Certificate\n"
                          "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its "
                          "permissions.\n\n"
                        : "#   ZeroMQ CURVE Public Certificate\n"
                          "#   Exchange securely, or use a secure mechanism to verify the "
                          "contents\n#   of this file after exchange.\n\n";
  out += "metadata\n";
  for (const auto& [k, v] : cert.metadata) out += "    " + k + " = \"" + v + "\"\n";
  out += "curve\n    public-key = \"" + cert.public_key.z85() + "\"\n";
  if (include_secret) {
    std::string secret = cert.secret_key->reveal_z85();
    out += "    secret-key = \"" + secret + "\"\n";
    wipe(secret);
  }
  return out;
}

Expected<Certificate> load_certificate(const std::filesystem::path& file) {
  auto text = detail::read_small_file(file, kMaxCertificateBytes);
  if (!text) return text.error();
  auto cert = parse_certificate(text.value(), file.string());
  wipe(text.value());
  return cert;
}

Expected<KeyPair> load_key_pair(const std::filesystem::path& secret_file) {
  auto cert = load_certificate(secret_file);
  if (!cert) return cert.error();
  if (!cert->secret_key) {
    return Error{secret_file.string() + ": no secret-key (a public certificate; give the " +
                 ".key_secret file)"};
  }
  return KeyPair{cert->public_key, *cert->secret_key};
}

Expected<PublicKey> load_public_key(const std::filesystem::path& file) {
  auto cert = load_certificate(file);
  if (!cert) return cert.error();
  return cert->public_key;
}

std::optional<std::string> secret_file_mode_warning(const std::filesystem::path& secret_file) {
  struct stat st {};
  if (::stat(secret_file.c_str(), &st) != 0) return std::nullopt;
  if ((st.st_mode & 077) == 0) return std::nullopt;
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  return secret_file.string() + ": secret key file has mode " + mode +
         ", readable by others; chmod 600 it";
}

std::filesystem::path public_file(const std::filesystem::path& dir, std::string_view name) {
  return dir / (std::string(name) + ".key");
}

std::filesystem::path secret_file(const std::filesystem::path& dir, std::string_view name) {
  return dir / (std::string(name) + ".key_secret");
}

Status save_certificate(const std::filesystem::path& dir, std::string_view name,
                        const KeyPair& keys, const Metadata& metadata, Overwrite overwrite,
                        std::string_view generated_by) {
  if (Status s = check_metadata(metadata); !s) return s;
  const auto pub_path = public_file(dir, name);
  const auto sec_path = secret_file(dir, name);
  if (overwrite == Overwrite::kNo) {
    for (const auto& p : {sec_path, pub_path}) {
      if (std::filesystem::exists(p)) return Error{p.string() + ": exists (not overwritten)"};
    }
  }
  const Certificate cert{keys.public_key, keys.secret_key, metadata};
  std::string secret_text = format_certificate(cert, true, generated_by);
  Status s = detail::write_file_atomic(sec_path, secret_text, 0600, overwrite == Overwrite::kYes);
  wipe(secret_text);
  if (!s) return s;
  return detail::write_file_atomic(pub_path, format_certificate(cert, false, generated_by), 0644,
                                   overwrite == Overwrite::kYes);
}

Status save_public_certificate(const std::filesystem::path& file, const PublicKey& key,
                               const Metadata& metadata, Overwrite overwrite,
                               std::string_view generated_by) {
  if (Status s = check_metadata(metadata); !s) return s;
  const Certificate cert{key, std::nullopt, metadata};
  return detail::write_file_atomic(file, format_certificate(cert, false, generated_by), 0644,
                                   overwrite == Overwrite::kYes);
}

}  // namespace rmon::security
