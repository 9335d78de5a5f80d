#pragma once
// The two storage engines the consumer services run on, for suites
// parameterized by engine: SQLite in the data folder, and PostgreSQL (a
// fresh database on the test binary's throwaway server, support/postgres.hpp).
// RMON_BOTH_ENGINES(Suite) instantiates a TEST_P suite on both, named
// Engines/Suite.Test/Sqlite and .../Postgres.

#include <gtest/gtest.h>

#include <string>

namespace rmon::testing {

enum class Engine { kSqlite, kPostgres };

inline std::string engine_name(const ::testing::TestParamInfo<Engine>& p) {
  return p.param == Engine::kSqlite ? "Sqlite" : "Postgres";
}

}  // namespace rmon::testing

#define RMON_BOTH_ENGINES(Suite)                                                               \
  INSTANTIATE_TEST_SUITE_P(                                                                    \
      Engines, Suite,                                                                          \
      ::testing::Values(::rmon::testing::Engine::kSqlite, ::rmon::testing::Engine::kPostgres), \
      ::rmon::testing::engine_name)
