#include "rmon/security/keys.hpp"

#include <zmq.h>

#include <cstring>
#include <stdexcept>

namespace rmon::security {

bool curve_available() { return zmq_has("curve") != 0; }

std::optional<KeyBytes> z85_decode_key(std::string_view z85) {
  // A NUL inside would make zmq_z85_decode (strlen) decode a shorter key.
  if (z85.size() != kZ85KeyChars || z85.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  char terminated[kZ85KeyChars + 1];  // zmq_z85_decode reads a C string
  std::memcpy(terminated, z85.data(), kZ85KeyChars);
  terminated[kZ85KeyChars] = '\0';
  KeyBytes out{};
  const bool ok = zmq_z85_decode(out.data(), terminated) != nullptr;
  explicit_bzero(terminated, sizeof terminated);  // it may be a secret key
  if (!ok) return std::nullopt;
  return out;
}

std::string z85_encode_key(const KeyBytes& bytes) {
  char buf[kZ85KeyChars + 1];
  zmq_z85_encode(buf, bytes.data(), bytes.size());
  return std::string(buf, kZ85KeyChars);
}

std::optional<PublicKey> PublicKey::from_z85(std::string_view z85) {
  auto bytes = z85_decode_key(z85);
  if (!bytes) return std::nullopt;
  return PublicKey(*bytes);
}

std::optional<SecretKey> SecretKey::from_z85(std::string_view z85) {
  auto bytes = z85_decode_key(z85);
  if (!bytes) return std::nullopt;
  SecretKey key(*bytes);
  explicit_bzero(bytes->data(), bytes->size());
  return key;
}

// explicit_bzero: glibc's memset that the compiler may not drop.
SecretKey::~SecretKey() { explicit_bzero(bytes_.data(), bytes_.size()); }

PublicKey SecretKey::derive_public() const {
  char secret[kZ85KeyChars + 1];
  char pub[kZ85KeyChars + 1];
  zmq_z85_encode(secret, bytes_.data(), bytes_.size());
  const int rc = zmq_curve_public(pub, secret);
  explicit_bzero(secret, sizeof secret);
  if (rc != 0) throw std::runtime_error("zmq_curve_public failed: libzmq has no CURVE support");
  return *PublicKey::from_z85(std::string_view(pub, kZ85KeyChars));
}

KeyPair KeyPair::generate() {
  char pub[kZ85KeyChars + 1];
  char secret[kZ85KeyChars + 1];
  if (zmq_curve_keypair(pub, secret) != 0) {
    throw std::runtime_error("zmq_curve_keypair failed: libzmq has no CURVE support");
  }
  KeyPair pair{*PublicKey::from_z85(std::string_view(pub, kZ85KeyChars)),
               *SecretKey::from_z85(std::string_view(secret, kZ85KeyChars))};
  explicit_bzero(secret, sizeof secret);
  return pair;
}

}  // namespace rmon::security
