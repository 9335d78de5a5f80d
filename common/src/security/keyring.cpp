#include "rmon/security/keyring.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>
#include <system_error>

namespace rmon::security {
namespace {

constexpr std::array<std::string_view, kReloadOutcomeCount> kOutcomeNames = {"ok", "partial",
                                                                             "failed"};

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The .key and .key_secret files of `dir`, sorted by name so that loading
// (and which of two files holding one key wins) is deterministic.
std::vector<std::filesystem::path> key_files(const std::filesystem::path& dir,
                                             std::error_code& ec) {
  std::vector<std::filesystem::path> out;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;  // hidden, e.g. Kubernetes' ..data
    if (ends_with(name, ".key") || ends_with(name, ".key_secret")) out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::string_view reload_outcome_name(ReloadOutcome outcome) {
  return kOutcomeNames[static_cast<std::size_t>(outcome)];
}

const Principal* KeySet::find(std::string_view public_z85) const {
  const auto it = by_key_.find(public_z85);
  return it == by_key_.end() ? nullptr : &it->second;
}

std::vector<std::string> KeySet::names() const {
  std::vector<std::string> out;
  for (const auto& [key, p] : by_key_) out.push_back(p.name);
  std::sort(out.begin(), out.end());
  return out;
}

std::shared_ptr<const KeySet> load_key_set(const std::filesystem::path& dir, ReloadResult& result) {
  auto set = std::make_shared<KeySet>();
  std::error_code ec;
  const auto files = key_files(dir, ec);
  if (ec) {
    result.outcome = ReloadOutcome::kFailed;
    result.dir_error = dir.string() + ": cannot list the clients directory: " + ec.message();
    return set;
  }
  std::unordered_map<std::string, std::string> file_of_key;
  for (const auto& file : files) {
    if (file.extension() == ".key_secret") {
      result.errors.push_back({file, file.string() +
                                         ": a secret key in a clients directory (it should "
                                         "hold only public .key files); ignored"});
      continue;
    }
    auto cert = load_certificate(file);
    if (!cert) {
      result.errors.push_back({file, cert.error().message});
      continue;
    }
    auto principal = principal_from_certificate(cert.value(), file.stem().string(), file.string());
    if (!principal) {
      result.errors.push_back({file, principal.error().message});
      continue;
    }
    const std::string z85 = principal->public_z85;
    if (auto [it, fresh] = file_of_key.emplace(z85, file.filename().string()); !fresh) {
      result.errors.push_back(
          {file, file.string() + ": the same public key as " + it->second + "; skipped"});
      continue;
    }
    set->by_key_.emplace(z85, std::move(principal).value());
  }
  result.outcome = result.errors.empty() ? ReloadOutcome::kOk : ReloadOutcome::kPartial;
  result.keys = set->size();
  return set;
}

Keyring::Keyring(std::filesystem::path clients_dir) : dir_(std::move(clients_dir)) {
  keys_ = load_key_set(dir_, first_load_);
  std::string why;
  if (first_load_.outcome == ReloadOutcome::kFailed) {
    why = first_load_.dir_error;
  } else if (keys_->size() == 0) {
    why = dir_.string() + ": no usable client key (*.key with a role in its metadata)";
    for (const auto& e : first_load_.errors) why += "; " + e.reason;
  }
  if (!why.empty()) throw std::runtime_error(why);
  first_load_.added = first_load_.keys;
  generation_.store(1, std::memory_order_release);
  reloads_[static_cast<std::size_t>(first_load_.outcome)].fetch_add(1, std::memory_order_relaxed);
}

ReloadResult Keyring::reload() {
  std::lock_guard serial(reload_mu_);
  ReloadResult result;
  auto fresh = load_key_set(dir_, result);
  if (result.outcome != ReloadOutcome::kFailed) {
    std::shared_ptr<const KeySet> old = snapshot();
    for (const auto& [key, p] : fresh->by_key_) result.added += old->find(key) == nullptr;
    for (const auto& [key, p] : old->by_key_) result.removed += fresh->find(key) == nullptr;
    {
      std::lock_guard lock(mu_);
      keys_ = std::move(fresh);
    }
    generation_.fetch_add(1, std::memory_order_acq_rel);
    // `old` may be the last reference: the set is freed here, outside mu_.
  } else {
    result.keys = size();
  }
  reloads_[static_cast<std::size_t>(result.outcome)].fetch_add(1, std::memory_order_relaxed);
  return result;
}

std::shared_ptr<const KeySet> Keyring::snapshot() const {
  std::lock_guard lock(mu_);
  return keys_;
}

KeyringView::KeyringView(const Keyring& keyring)
    : keyring_(keyring), generation_(keyring.generation()), keys_(keyring.snapshot()) {}

const Principal* KeyringView::find(std::string_view public_z85) {
  // The generation is bumped after the swap: seeing a new one guarantees the
  // snapshot taken next is at least that new.
  if (const uint64_t g = keyring_.generation(); g != generation_) {
    generation_ = g;
    keys_ = keyring_.snapshot();
  }
  return keys_->find(public_z85);
}

void log_reload(const Keyring& keyring, const ReloadResult& result, std::string_view why) {
  const std::string dir = keyring.dir().string();
  if (result.outcome == ReloadOutcome::kFailed) {
    spdlog::error("keyring reload failed, previous keys kept cause={} keys={} error={}", why,
                  result.keys, result.dir_error);
    return;
  }
  for (const auto& e : result.errors) {
    spdlog::warn("keyring skipped a file cause={} reason={}", why, e.reason);
  }
  spdlog::info("keyring loaded cause={} dir={} keys={} added={} removed={} skipped={}", why, dir,
               result.keys, result.added, result.removed, result.errors.size());
}

}  // namespace rmon::security
