#include "rmon/store/pg_syncer.hpp"

#include <spdlog/spdlog.h>

#include <utility>

namespace rmon::store {

namespace {

std::unique_ptr<PgDb> connect_syncer(const std::string& url) {
  PgDb::Options o;
  o.application_name = "rmon-syncer";
  return std::make_unique<PgDb>(url, o);
}

}  // namespace

PgSyncer::PgSyncer(PgDb& writer) : url_(writer.url()), db_(connect_syncer(url_)) {
  const std::string mode = db_->exec("SHOW synchronous_commit")[0][0].c_str();
  if (mode == "off") {
    spdlog::warn(
        "PostgreSQL's synchronous_commit is off for this database: a commit answered may be "
        "lost in a crash of the server store={}",
        redact_url(url_));
  }
  writer.commit_without_flush();
  start("rmon-pgsync");
}

PgSyncer::~PgSyncer() { stop(); }

CommitSyncer::Flushed PgSyncer::flush() {
  try {
    if (!db_) {
      db_ = connect_syncer(url_);
      fresh_ = true;
    }
    // One round trip: a WAL record, then a COMMIT that waits for the WAL's
    // flush through it (synchronous_commit).
    db_->exec("BEGIN; SELECT pg_logical_emit_message(true, 'rmon-flush', ''); COMMIT");
    if (fresh_) {
      fresh_ = false;
      return {Outcome::kLost,
              "PostgreSQL connection renewed: the commits before it may have been lost with the "
              "server (a restart or a crash)"};
    }
    return {};
  } catch (const std::exception& e) {
    // Whatever the error, the next try starts on a new connection (none left
    // inside an aborted transaction).
    db_.reset();
    std::string why = e.what();
    while (!why.empty() && why.back() == '\n') why.pop_back();
    return {Outcome::kLost, std::move(why)};
  }
}

}  // namespace rmon::store
