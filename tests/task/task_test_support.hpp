#pragma once
// A task store on a fresh database, with a fake clock: SQLite in a temp
// folder, or a fresh database on the test binary's throwaway PostgreSQL
// (the suites are parameterized by engine and run on both).

#include <gtest/gtest.h>

#include <memory>

#include "../support/engines.hpp"
#include "../support/postgres.hpp"
#include "../support/temp_dir.hpp"
#include "rmon/fake_clock.hpp"
#include "rmon/protocol/msgmap.hpp"
#include "rmon/store/postgres.hpp"
#include "task_store.hpp"

namespace rmon::tq {

using Engine = rmon::testing::Engine;

inline StoreOptions test_options() {
  StoreOptions o;
  o.backoff = {500, 2.0, 60'000};
  o.first_heartbeat_grace_ms = 30'000;
  o.seed = 42;
  return o;
}

class TaskStoreTest : public ::testing::TestWithParam<Engine> {
 protected:
  void SetUp() override { open(test_options()); }
  // (Re)opens the same database: a restart.
  void open(StoreOptions o) {
    store_.reset();
    db_.reset();
    pg_.reset();
    if (GetParam() == Engine::kPostgres) {
      if (url_.empty()) url_ = testing::Postgres::shared().fresh_database();
      pg_ = std::make_unique<store::PgDb>(url_);
      store_ = std::make_unique<TaskStore>(make_postgres_rows(*pg_), clock_, o);
    } else {
      db_ = std::make_unique<store::Db>(dir_.path() / "task-queue.db", store::SyncMode::kNormal);
      store_ = std::make_unique<TaskStore>(*db_, clock_, o);
    }
  }
  static std::string payload(const std::string& s) {
    return protocol::MapBuilder().str("job", s).finish();
  }
  std::string submit(const std::string& name = "x", int64_t priority = 0,
                     std::optional<std::string> pool = std::nullopt, uint64_t max_attempts = 5,
                     uint64_t delay_ms = 0) {
    SubmitRequest r;
    r.payload = payload(name);
    r.priority = priority;
    r.pool = std::move(pool);
    r.max_attempts = max_attempts;
    r.delay_ms = delay_ms;
    auto res = store_->submit(r);
    EXPECT_EQ(res.error, TaskError::kNone);
    return res.task_id;
  }
  Task lease(const std::string& runner = "r-1", std::optional<std::string> pool = std::nullopt) {
    auto t = store_->lease(runner, pool);
    EXPECT_TRUE(t.has_value());
    return t.value_or(Task{});
  }
  static protocol::TimeoutEvent event(const std::string& id, const Task& t) {
    protocol::TimeoutEvent ev;
    ev.event_id = id;
    ev.runner.runner_id = t.runner_id.value_or("r-1");
    ev.runner.task_id = t.task_id;
    ev.runner.attempt = t.attempt;
    ev.runner.pool = "p";
    return ev;
  }
  TaskState state_of(const std::string& id) { return store_->get(id).value().state; }

  testing::TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<store::Db> db_;
  std::string url_;  // PostgreSQL: this test's database
  std::unique_ptr<store::PgDb> pg_;
  std::unique_ptr<TaskStore> store_;
};

}  // namespace rmon::tq
