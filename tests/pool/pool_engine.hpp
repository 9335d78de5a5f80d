#pragma once
// A PoolStore on either engine, for the suites parameterized by engine:
// SQLite in a folder, or PostgreSQL (a fresh database on the test binary's
// throwaway server, created at the first open and kept for later ones, so a
// second open is a restart).

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "../support/engines.hpp"
#include "../support/postgres.hpp"
#include "pool_store.hpp"
#include "rmon/store/postgres.hpp"

namespace rmon::pool::testing {

// `pg` holds the PostgreSQL connection (replaced); the store previously
// opened on it must be gone already.
inline std::unique_ptr<PoolStore> open_pool_store(rmon::testing::Engine engine,
                                                  const std::filesystem::path& dir,
                                                  std::string& url,
                                                  std::unique_ptr<store::PgDb>& pg,
                                                  std::vector<PoolSpec> specs, const Clock& clock,
                                                  const StoreOptions& options) {
  pg.reset();
  if (engine == rmon::testing::Engine::kPostgres) {
    if (url.empty()) url = rmon::testing::Postgres::shared().fresh_database();
    pg = std::make_unique<store::PgDb>(url);
    return std::make_unique<PoolStore>(make_postgres_rows(*pg), std::move(specs), clock, options);
  }
  return std::make_unique<PoolStore>(dir / "pool-manager.db", std::move(specs), clock, options);
}

}  // namespace rmon::pool::testing
