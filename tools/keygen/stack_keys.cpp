#include "keygen/stack_keys.hpp"

#include <system_error>

namespace rmon::keygen {
namespace {

namespace fs = std::filesystem;
using security::Error;
using security::KeyPair;
using security::Metadata;
using security::Overwrite;
using security::Role;

constexpr std::string_view kMonitor = "runner-monitor";
constexpr std::string_view kTaskQueue = "task-queue";
constexpr std::string_view kPoolManager = "pool-manager";

struct NamedKey {
  std::string name;
  KeyPair keys;
  Metadata metadata;
};

// One file to write: a pair (NAME.key_secret + NAME.key) or a public copy.
struct Write {
  fs::path dir;
  const NamedKey* key;
  bool pair;
};

std::vector<fs::path> targets(const Write& w) {
  if (!w.pair) return {security::public_file(w.dir, w.key->name)};
  return {security::secret_file(w.dir, w.key->name), security::public_file(w.dir, w.key->name)};
}

Status create_dirs(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error{dir.string() + ": cannot create: " + ec.message()};
  return {};
}

}  // namespace

Status check_key_name(std::string_view name) {
  if (name.empty() || name[0] == '.') return Error{"a key name may not be empty or start with '.'"};
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return Error{"key name \"" + std::string(name) + "\": only letters, digits, . _ -"};
  }
  return {};
}

Expected<fs::path> write_client_key(const fs::path& dir, std::string_view name, Role role,
                                    std::string_view runner_prefix, std::string_view group,
                                    Overwrite overwrite) {
  if (Status s = check_key_name(name); !s) return s.error();
  if (role == Role::kConsumer && group.empty()) return Error{"role consumer needs --group"};
  if (Status s = create_dirs(dir); !s) return s.error();
  const Metadata metadata = security::principal_metadata(role, runner_prefix, group);
  if (Status s = security::save_certificate(dir, name, KeyPair::generate(), metadata, overwrite);
      !s) {
    return s.error();
  }
  return security::secret_file(dir, name);
}

Expected<std::vector<fs::path>> init_stack(const fs::path& dir, const StackOptions& options) {
  const auto server = [](std::string_view name) {
    return NamedKey{std::string(name), KeyPair::generate(), {{"service", std::string(name)}}};
  };
  const auto client = [&](std::string name, Role role, std::string_view group = {}) {
    return NamedKey{std::move(name), KeyPair::generate(),
                    security::principal_metadata(role, options.runner_prefix, group)};
  };
  const NamedKey monitor = server(kMonitor), task_queue = server(kTaskQueue),
                 pool_manager = server(kPoolManager);
  const NamedKey admin = client("admin", Role::kAdmin), reader = client("reader", Role::kReader),
                 submitter = client("submitter", Role::kSubmitter),
                 runner = client("runner", Role::kRunner),
                 tq_consumer = client("consumer-task-queue", Role::kConsumer, kTaskQueue),
                 pm_consumer = client("consumer-pool-manager", Role::kConsumer, kPoolManager);

  const fs::path mon_dir = dir / kMonitor, tq_dir = dir / kTaskQueue, pm_dir = dir / kPoolManager;
  std::vector<Write> plan = {
      {mon_dir, &monitor, true},    {tq_dir, &task_queue, true},  {pm_dir, &pool_manager, true},
      {tq_dir, &tq_consumer, true}, {pm_dir, &pm_consumer, true}, {tq_dir, &monitor, false},
      {pm_dir, &monitor, false},
  };
  for (const NamedKey* k : {&admin, &reader, &submitter, &runner}) {
    plan.push_back({dir / "clients", k, true});
  }
  for (const NamedKey* k : {&monitor, &task_queue, &pool_manager}) {
    plan.push_back({dir / "servers", k, false});
  }
  for (const NamedKey* k : {&admin, &reader, &runner, &tq_consumer, &pm_consumer}) {
    plan.push_back({mon_dir / "clients", k, false});
  }
  for (const NamedKey* k : {&admin, &reader, &submitter, &runner}) {
    plan.push_back({tq_dir / "clients", k, false});
  }
  for (const NamedKey* k : {&admin, &reader, &runner}) {
    plan.push_back({pm_dir / "clients", k, false});
  }

  if (options.overwrite == Overwrite::kNo) {
    for (const Write& w : plan) {
      for (const fs::path& p : targets(w)) {
        if (fs::exists(p)) return Error{p.string() + ": exists (use --force to replace every key)"};
      }
    }
  }
  std::vector<fs::path> written;
  for (const Write& w : plan) {
    if (Status s = create_dirs(w.dir); !s) return s.error();
    const Status s = w.pair
                         ? security::save_certificate(w.dir, w.key->name, w.key->keys,
                                                      w.key->metadata, options.overwrite)
                         : security::save_public_certificate(targets(w)[0], w.key->keys.public_key,
                                                             w.key->metadata, options.overwrite);
    if (!s) return s.error();
    for (const fs::path& p : targets(w)) written.push_back(p);
  }
  return written;
}

std::string stack_usage(const fs::path& dir) {
  std::string out;
  for (std::string_view service : {kMonitor, kTaskQueue, kPoolManager}) {
    const fs::path d = dir / service;
    out += std::string(service) + ": --security curve --curve-secret-file " +
           security::secret_file(d, service).string() + " --curve-clients-dir " +
           (d / "clients").string();
    if (service != kMonitor) {
      out += " --monitor-public-key-file " + security::public_file(d, kMonitor).string() +
             " --monitor-curve-secret-file " +
             security::secret_file(d, "consumer-" + std::string(service)).string();
    }
    out += "\n";
  }
  out += "clients: their own " + (dir / "clients" / "NAME.key_secret").string() +
         " and a service's public key from " + (dir / "servers").string() + "/\n";
  return out;
}

Expected<fs::path> public_from_secret(const fs::path& secret_file, const fs::path& dir,
                                      Overwrite overwrite) {
  auto cert = security::load_certificate(secret_file);
  if (!cert) return cert.error();
  std::string name = secret_file.filename().string();
  constexpr std::string_view kSuffix = ".key_secret";
  if (name.size() <= kSuffix.size() || name.substr(name.size() - kSuffix.size()) != kSuffix) {
    return Error{secret_file.string() + ": expected a NAME.key_secret file"};
  }
  name.resize(name.size() - kSuffix.size());
  // The public file must load as a client principal, or it is of no use.
  if (auto p = security::principal_from_certificate(cert.value(), name, secret_file.string()); !p) {
    return p.error();
  }
  if (Status s = create_dirs(dir); !s) return s.error();
  const fs::path out = security::public_file(dir, name);
  if (Status s =
          security::save_public_certificate(out, cert->public_key, cert->metadata, overwrite);
      !s) {
    return s.error();
  }
  return out;
}

}  // namespace rmon::keygen
