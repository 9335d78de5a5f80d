// Pipelined group commit on PostgreSQL (store::PgSyncer), on a server of its
// own that is restarted mid-test: the writer commits without flushing, the
// syncer's flush settles its tickets durable; a flush that fails (its
// connection cut) or that finds the server restarted since (what it had not
// flushed may be gone) settles them lost, and the next flush works again.
// The service over it is the task-queue's and pool-manager's default on
// PostgreSQL, run by their suites, the replica kill and the restart under
// load (replica_kill_test.cpp).

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

  Postgres pg_;  // its own: restarted mid-test
  std::unique_ptr<PgDb> writer_;
  std::unique_ptr<PgSyncer> syncer_;
};

TEST_F(PgSyncerTest, TheWriterCommitsWithoutFlushingAndTheSyncersFlushSettlesItsTicketsDurable) {
  EXPECT_EQ(writer_setting(), "off");
  const uint64_t t1 = commit_one(1);
  const uint64_t t2 = commit_one(2);
  EXPECT_EQ(t2, t1 + 1);
  const CommitSyncer::Settled s = settle(t2);
  EXPECT_TRUE(s.durable) << s.why;
  EXPECT_GE(syncer_->stats().syncs.load(), 1u);
  EXPECT_EQ(syncer_->stats().tickets.load(), 2u);
  EXPECT_EQ(syncer_->stats().lost.load(), 0u);
  // A new session of the writer (its connection cut) commits without
  // flushing too.
  PgDb admin(pg_.url());
  admin.exec(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'rmon' "
      "AND pid <> pg_backend_pid()");
  EXPECT_TRUE(wait_until([&] {
    try {
      return writer_setting() == "off";
    } catch (const PgUnavailable&) {
      return false;  // cut, then the reconnect backoff
    }
  }));
}

TEST_F(PgSyncerTest, AFlushWhoseConnectionWasCutSettlesLostAndALaterOneDurable) {
  ASSERT_TRUE(settle(commit_one(1)).durable);
  PgDb admin(pg_.url());
  admin.exec(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
      "'rmon-syncer'");
  const CommitSyncer::Settled lost = settle(commit_one(2));
  EXPECT_FALSE(lost.durable);
  EXPECT_FALSE(lost.why.empty());
  EXPECT_EQ(syncer_->stats().lost.load(), 1u);
  // It reconnects (after PgDb's backoff) and goes on.
  EXPECT_TRUE(wait_until([&] { return settle(commit_one(3)).durable; }, 10s));
}

TEST_F(PgSyncerTest, AServerRestartedBeforeTheFlushSettlesLostWhatItMayHaveLost) {
  ASSERT_TRUE(settle(commit_one(1)).durable);
  // Committed before the restart, flushed (if at all) by the old server.
  writer_->begin();
  writer_->exec("INSERT INTO t VALUES (2)");
  writer_->commit();
  pg_.stop();
  pg_.start();
  // The first flush finds its connection cut; the next, on a new one, finds
  // the server started anew since the last flush: both lost. Then the
  // writer's commits on the new server are flushed.
  const CommitSyncer::Settled cut = settle(syncer_->commit());
  EXPECT_FALSE(cut.durable);
  bool restarted = false;
  EXPECT_TRUE(wait_until(
      [&] {
        try {
          const CommitSyncer::Settled s = settle(commit_one(3));
          if (!s.durable && s.why.find("restarted") != std::string::npos) restarted = true;
          return s.durable;
        } catch (const PgUnavailable&) {
          return false;  // the writer's connection was cut: its reconnect backoff
        }
      },
      10s));
  EXPECT_TRUE(restarted) << "the restart was not noticed";
}

}  // namespace
}  // namespace rmon::store
