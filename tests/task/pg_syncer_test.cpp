// Pipelined group commit on PostgreSQL (store::PgSyncer), on a server of its
// own that is restarted mid-test, whose WAL writer waits 10 s between
// flushes (so only the syncer's commit can have flushed the WAL): the writer
// commits without flushing, and the syncer's flush makes the WAL durable
// through the writer's commits before it settles their tickets durable. A
// flush that fails (its connection cut, the server restarted) settles them
// lost; the syncer is unhealthy until a flush on a new connection works.
// The service over it (--pg-pipelined-commits) is run by the outage test
// (task_replicas_test.cpp: TaskStoreOutageTest.../Pipelined).

#include <gtest/gtest.h>

#include <chrono>

#include "../support/postgres.hpp"
#include "../support/wait.hpp"
#include "rmon/store/pg_syncer.hpp"
#include "rmon/store/postgres.hpp"

namespace rmon::store {
namespace {

using namespace std::chrono_literals;
using rmon::testing::Postgres;
using rmon::testing::wait_until;

class PgSyncerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    writer_ = std::make_unique<PgDb>(pg_.url());
    writer_->exec("CREATE TABLE t(v INTEGER)");
    syncer_ = std::make_unique<PgSyncer>(*writer_);
  }
  // One committed batch of the writer; its ticket.
  uint64_t commit_one(int v) {
    try {
      writer_->begin();
      writer_->exec("INSERT INTO t VALUES ($1)", v);
      writer_->commit();
    } catch (const PgUnavailable&) {
      writer_->rollback();
      throw;
    }
    return syncer_->commit();
  }
  // The settlement of `ticket` (waited for).
  CommitSyncer::Settled settle(uint64_t ticket) {
    syncer_->wait(ticket);
    CommitSyncer::Settled last;
    for (CommitSyncer::Settled& s : syncer_->take_settled()) last = std::move(s);
    EXPECT_GE(last.through, ticket);
    return last;
  }
  std::string writer_setting() { return writer_->exec("SHOW synchronous_commit")[0][0].c_str(); }

  // Its own (restarted mid-test); its WAL writer all but idle.
  Postgres pg_{false, "-c wal_writer_delay=10s -c wal_writer_flush_after=0"};
  std::unique_ptr<PgDb> writer_;
  std::unique_ptr<PgSyncer> syncer_;
};

TEST_F(PgSyncerTest, TheWriterCommitsWithoutFlushingAndTheSyncersFlushMakesItDurable) {
  EXPECT_EQ(writer_setting(), "off");
  auto flushed_through = [&](const std::string& lsn) {
    return std::string(writer_->exec("SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn", lsn)[0][0]
                           .c_str()) == "t";
  };
  const uint64_t t1 = commit_one(1);
  const uint64_t t2 = commit_one(2);
  EXPECT_EQ(t2, t1 + 1);
  // Where the writer's last commit ended in the WAL (read just after it).
  const std::string lsn = writer_->exec("SELECT pg_current_wal_insert_lsn()::text")[0][0].c_str();
  const CommitSyncer::Settled s = settle(t2);
  EXPECT_TRUE(s.durable) << s.why;
  EXPECT_TRUE(flushed_through(lsn))
      << "settled durable, but the WAL is not flushed through " << lsn;
  EXPECT_GE(syncer_->stats().syncs.load(), 1u);
  EXPECT_EQ(syncer_->stats().tickets.load(), 2u);
  EXPECT_EQ(syncer_->stats().lost.load(), 0u);
  EXPECT_TRUE(syncer_->healthy());
  // A new session of the writer (its connection cut) commits without
  // flushing too.
  PgDb admin(pg_.url());
  admin.exec(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'rmon' "
      "AND pid <> pg_backend_pid()");
  std::string seen;
  EXPECT_TRUE(wait_until(
      [&] {
        try {
          seen = writer_setting();
          return writer_->connects() == 2 && seen == "off";
        } catch (const std::exception& e) {
          seen = e.what();
          return false;  // cut, then the reconnect backoff
        }
      },
      10s))
      << writer_->connects() << " connects, last: " << seen;
}

TEST_F(PgSyncerTest, AFlushWhoseConnectionWasCutSettlesLostUntilOneOnANewConnectionWorks) {
  ASSERT_TRUE(settle(commit_one(1)).durable);
  PgDb admin(pg_.url());
  admin.exec(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
      "'rmon-syncer'");
  const CommitSyncer::Settled lost = settle(commit_one(2));
  EXPECT_FALSE(lost.durable);
  EXPECT_FALSE(lost.why.empty());
  EXPECT_EQ(syncer_->stats().lost.load(), 1u);
  // Healthy again once a flush on a new connection worked (the first one
  // on it is not trusted), and the next tickets are durable.
  EXPECT_TRUE(wait_until([&] { return syncer_->healthy(); }, 10s));
  EXPECT_TRUE(settle(commit_one(3)).durable);
}

TEST_F(PgSyncerTest, AServerRestartedBeforeTheFlushSettlesLostWhatItMayHaveLost) {
  ASSERT_TRUE(settle(commit_one(1)).durable);
  // Committed before the restart, flushed (if at all) by the old server.
  writer_->begin();
  writer_->exec("INSERT INTO t VALUES (2)");
  writer_->commit();
  pg_.stop();
  pg_.start();
  const CommitSyncer::Settled s = settle(syncer_->commit());
  EXPECT_FALSE(s.durable);
  EXPECT_FALSE(syncer_->healthy());
  // The syncer and the writer reconnect; commits on the new server are
  // flushed.
  EXPECT_TRUE(wait_until([&] { return syncer_->healthy(); }, 10s));
  EXPECT_TRUE(wait_until(
      [&] {
        try {
          return settle(commit_one(3)).durable;
        } catch (const PgUnavailable&) {
          return false;  // the writer's connection was cut: its reconnect backoff
        }
      },
      10s));
}

}  // namespace
}  // namespace rmon::store
