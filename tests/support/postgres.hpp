#pragma once
// A throwaway PostgreSQL server for tests: Debian's postgresql-15 binaries,
// initdb --no-sync into a temp folder and pg_ctl start on a Unix socket in
// that folder (no TCP port, nothing left behind), as the `postgres` user
// when the tests run as root (PostgreSQL refuses root). About 1.1 s to
// start; one server per test binary (shared()), a fresh database per test.
//
// PostgreSQL missing is a failure with the command to install it, not a
// skip: CI runs both stores (scripts/setup-deps.sh installs postgresql).

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

#include "child_process.hpp"
#include "temp_dir.hpp"

namespace rmon::testing {

class Postgres {
 public:
  // `durable`: fsync on, as a production server (benchmarks); tests run
  // with fsync off. `settings`: more of the server's -c options.
  explicit Postgres(bool durable = false, std::string settings = "")
      : bin_(find_bin()), durable_(durable), settings_(std::move(settings)) {
    const std::string dir = dir_.str();
    as_owner_ = ::geteuid() == 0;
    if (as_owner_) run("chown postgres " + dir);
    run(user() + bin_ + "/initdb -D " + dir + "/data -A trust -U postgres --no-sync -E UTF8 >" +
        dir + "/initdb.log 2>&1");
    start();
  }
  ~Postgres() {
    if (running_) {
      try {
        run(user() + bin_ + "/pg_ctl -D " + dir_.str() + "/data -m immediate -w stop");
      } catch (...) {  // NOLINT(bugprone-empty-catch): the folder goes anyway
      }
    }
  }
  Postgres(const Postgres&) = delete;
  Postgres& operator=(const Postgres&) = delete;

  // The server every test of this binary shares, started at first use.
  static Postgres& shared() {
    static std::once_flag once;
    static std::unique_ptr<Postgres> server;
    std::call_once(once, [] { server = std::make_unique<Postgres>(); });
    return *server;
  }

  // A libpq URL of database `db` on this server.
  std::string url(const std::string& db = "postgres") const {
    return "postgresql:///" + db + "?host=" + dir_.str() + "&port=" + std::to_string(kPort) +
           "&user=postgres";
  }
  // A new empty database; its URL.
  std::string fresh_database() {
    const std::string name = "t" + std::to_string(++databases_);
    run(psql() + " -c 'CREATE DATABASE " + name + "' ");
    return url(name);
  }
  // Runs SQL on `db` through psql; throws when it fails.
  void sql(const std::string& db, const std::string& statement) const {
    run(psql(db) + " -v ON_ERROR_STOP=1 -c \"" + statement + "\" ");
  }

  // pg_ctl stop (fast: connections are cut) and start again.
  void stop() {
    run(user() + bin_ + "/pg_ctl -D " + dir_.str() + "/data -m fast -w stop ");
    running_ = false;
  }
  void start() {
    run(user() + bin_ + "/pg_ctl -D " + dir_.str() + "/data -w -l " + dir_.str() +
        "/server.log -o \"-c listen_addresses='' -k " + dir_.str() + " -p " +
        std::to_string(kPort) + (durable_ ? "" : " -c fsync=off") + " " + settings_ + "\" start ");
    running_ = true;
  }
  bool running() const { return running_; }

 private:
  static constexpr int kPort = 54329;  // names the socket file only

  static std::string find_bin() {
    for (const char* v : {"18", "17", "16", "15", "14", "13"}) {
      const std::string bin = std::string("/usr/lib/postgresql/") + v + "/bin";
      if (std::filesystem::exists(bin + "/initdb")) return bin;
    }
    throw std::runtime_error(
        "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb): run "
        "`sudo apt-get install postgresql` or scripts/setup-deps.sh");
  }
  std::string user() const { return as_owner_ ? "runuser -u postgres -- " : ""; }
  std::string psql(const std::string& db = "postgres") const {
    return "psql -X -q -h " + dir_.str() + " -p " + std::to_string(kPort) + " -U postgres -d " + db;
  }
  // Through ChildProcess (posix_spawn: nothing runs between fork and exec
  // in this multithreaded process).
  static void run(const std::string& cmd) {
    ChildProcess sh("/bin/sh", {"-c", cmd}, kCapture);
    const auto status = sh.wait(std::chrono::seconds(120));
    if (status != 0) throw std::runtime_error("failed: " + cmd + "\n" + sh.err());
  }

  TempDir dir_;
  std::string bin_;
  bool durable_ = false;
  std::string settings_;
  bool as_owner_ = false;
  bool running_ = false;
  int databases_ = 0;
};

}  // namespace rmon::testing
