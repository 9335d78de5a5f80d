#pragma once
// The keyring: the principals a service admits, read from its clients
// directory (--curve-clients-dir), one public certificate `NAME.key` each.
//
// Loading policy:
// - Only `*.key` files are read; other names (editor backups, `.tmp-*` of an
//   atomic write) are ignored. A `*.key_secret` found there is reported: a
//   secret has no business in a clients directory.
// - A file that cannot be read or is not a valid client certificate (no
//   role, an unknown role, a runner without runner_prefix, a key already
//   loaded from another file) is skipped and reported in ReloadResult::errors
//   with the reason; the others still load.
// - The first load (the constructor) is a start-up error when the directory
//   cannot be listed or no key in it is usable: a service with nobody to admit
//   is misconfigured (wrong directory, pyzmq .key files without metadata).
// - A later reload applies whatever loads, even zero keys (so removing every
//   file revokes every key), except when the directory itself cannot be
//   listed: then the previous keys stay (ReloadOutcome::kFailed).
//
// Thread safety: every method is thread-safe. reload() builds a new
// immutable KeySet and swaps it in; lookups never wait for a reload. On a hot
// path use a KeyringView per thread: one atomic load per lookup while the
// keys are unchanged.

#include <array>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "rmon/security/principal.hpp"

namespace rmon::security {

struct KeyFileError {
  std::filesystem::path file;
  std::string reason;  // starts with the file's path
};

enum class ReloadOutcome : uint8_t {
  kOk,       // every .key file loaded
  kPartial,  // some files skipped (see errors); the rest applied
  kFailed,   // the directory could not be listed; previous keys kept
};
inline constexpr int kReloadOutcomeCount = 3;
// "ok", "partial", "failed": rmon_keyring_reloads_total{result}.
std::string_view reload_outcome_name(ReloadOutcome outcome);

struct ReloadResult {
  ReloadOutcome outcome = ReloadOutcome::kOk;
  std::size_t keys = 0;     // keys in force after this reload
  std::size_t added = 0;    // keys not in the previous set
  std::size_t removed = 0;  // keys of the previous set now gone
  std::vector<KeyFileError> errors;
  std::string dir_error;  // kFailed: why the directory could not be listed
};

// An immutable set of principals, by public key (Z85). Thread-safe (const).
class KeySet {
 public:
  // nullptr when `public_z85` is not enrolled.
  const Principal* find(std::string_view public_z85) const;
  std::size_t size() const { return by_key_.size(); }
  // Principal names, sorted (tests, logs).
  std::vector<std::string> names() const;

 private:
  friend class Keyring;
  friend std::shared_ptr<const KeySet> load_key_set(const std::filesystem::path&, ReloadResult&);
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, Principal, Hash, std::equal_to<>> by_key_;
};

// Reads `dir` into a new KeySet; bad files go to `result.errors`. Pure apart
// from reading the files. `result.outcome` is kFailed (and the set empty)
// when the directory cannot be listed.
std::shared_ptr<const KeySet> load_key_set(const std::filesystem::path& dir, ReloadResult& result);

class Keyring {
 public:
  // Loads `clients_dir`. Throws std::runtime_error (a start-up error) naming
  // the directory and every bad file when it cannot be listed or no key is
  // usable; files skipped on the way are in first_load().errors.
  explicit Keyring(std::filesystem::path clients_dir);
  Keyring(const Keyring&) = delete;
  Keyring& operator=(const Keyring&) = delete;

  // Re-reads the directory and swaps the new keys in (see the policy above).
  // Reloads are serialised; lookups go on meanwhile.
  ReloadResult reload();

  // The keys in force. Holding the pointer keeps that set alive.
  std::shared_ptr<const KeySet> snapshot() const;
  // Bumped by every reload that applied a set; a view re-reads on change.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  std::size_t size() const { return snapshot()->size(); }  // rmon_keyring_keys
  uint64_t reloads(ReloadOutcome outcome) const {          // rmon_keyring_reloads_total
    return reloads_[static_cast<std::size_t>(outcome)].load(std::memory_order_relaxed);
  }
  const std::filesystem::path& dir() const { return dir_; }
  const ReloadResult& first_load() const { return first_load_; }

 private:
  const std::filesystem::path dir_;
  ReloadResult first_load_;             // constant after construction
  std::mutex reload_mu_;                // serialises reload()
  mutable std::mutex mu_;               // guards keys_
  std::shared_ptr<const KeySet> keys_;  // guarded by mu_
  std::atomic<uint64_t> generation_{0};
  std::array<std::atomic<uint64_t>, kReloadOutcomeCount> reloads_{};
};

// A per-thread cache of a keyring's keys: find() costs one atomic load plus
// a hash lookup while the keys are unchanged. Not thread-safe; one per thread.
class KeyringView {
 public:
  explicit KeyringView(const Keyring& keyring);
  // The principal of `public_z85`, or nullptr. The pointer stays valid until
  // the next find() on this view.
  const Principal* find(std::string_view public_z85);

 private:
  const Keyring& keyring_;
  uint64_t generation_;
  std::shared_ptr<const KeySet> keys_;
};

// Logs a reload the same way wherever it happened (start, SIGHUP, watcher):
// INFO with the counts, a WARN per skipped file, an ERROR when the directory
// could not be listed. `why` says what caused it ("start", "SIGHUP", ...).
void log_reload(const Keyring& keyring, const ReloadResult& result, std::string_view why);

}  // namespace rmon::security
