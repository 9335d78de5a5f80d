#pragma once
// CurveZMQ keys: 32 bytes, written as 40 characters of Z85 (the form libzmq's
// socket options, certificate files and the `User-Id` of a CURVE peer use).
// Encoding, decoding and key generation are libzmq's own (zmq_z85_encode,
// zmq_z85_decode, zmq_curve_keypair, zmq_curve_public).
//
// A SecretKey has no printable form except reveal_z85(), which only the
// certificate writer calls; it wipes its bytes when destroyed. Keep it out of
// logs and error messages.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rmon::security {

inline constexpr std::size_t kKeyBytes = 32;
inline constexpr std::size_t kZ85KeyChars = 40;

using KeyBytes = std::array<uint8_t, kKeyBytes>;

// Whether this libzmq was built with CURVE (Debian's is, with libsodium).
bool curve_available();

// The 32 bytes of a 40-character Z85 key; nullopt for any other length or an
// invalid character.
std::optional<KeyBytes> z85_decode_key(std::string_view z85);
std::string z85_encode_key(const KeyBytes& bytes);

class PublicKey {
 public:
  // nullopt unless `z85` is a valid 40-character Z85 key.
  static std::optional<PublicKey> from_z85(std::string_view z85);
  explicit PublicKey(const KeyBytes& bytes) : bytes_(bytes) {}

  const KeyBytes& bytes() const { return bytes_; }
  // The 40 characters, as in a certificate and in a CURVE peer's User-Id.
  std::string z85() const { return z85_encode_key(bytes_); }
  bool operator==(const PublicKey&) const = default;

 private:
  KeyBytes bytes_;
};

class SecretKey {
 public:
  static std::optional<SecretKey> from_z85(std::string_view z85);
  explicit SecretKey(const KeyBytes& bytes) : bytes_(bytes) {}
  SecretKey(const SecretKey&) = default;
  SecretKey& operator=(const SecretKey&) = default;
  ~SecretKey();

  const KeyBytes& bytes() const { return bytes_; }
  // The secret in Z85, for writing a .key_secret file. Nothing else needs it.
  std::string reveal_z85() const { return z85_encode_key(bytes_); }
  // The public key that belongs to this secret (zmq_curve_public).
  PublicKey derive_public() const;

 private:
  KeyBytes bytes_;
};

struct KeyPair {
  PublicKey public_key;
  SecretKey secret_key;

  // A fresh pair from libzmq (zmq_curve_keypair). Throws std::runtime_error
  // when libzmq has no CURVE support.
  static KeyPair generate();
};

}  // namespace rmon::security
