#pragma once
// An outbox database on disk that a test can damage: a stored event whose
// body no longer decodes, as a bad sector would leave it. For tests.

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "outbox_store.hpp"
#include "rmon/store/sqlite.hpp"

namespace rmon::testing {

// The outbox at `path` (created if need be), not owned: a test opens it
// again after damaging it, as a restart would.
inline std::unique_ptr<monitor::OutboxStore> outbox_file(const std::filesystem::path& path,
                                                         std::vector<std::string> groups) {
  return std::make_unique<monitor::OutboxStore>(store::Db(path, store::SyncMode::kNormal),
                                                std::move(groups));
}

// Overwrites the stored body of `event_id` with a byte that is no timeout
// event (a MessagePack byte never used), through a connection of its own.
inline void damage_stored_event(const std::filesystem::path& path, const std::string& event_id) {
  store::Db db(path, store::SyncMode::kNormal);
  db.prepare("UPDATE events SET body = x'c1' WHERE event_id = ?").bind(1, event_id).run();
  if (db.changes() != 1) throw std::runtime_error("no stored event " + event_id);
}

// The outbox's quarantine, as "group/event_id", in group then seq order.
inline std::vector<std::string> quarantined_rows(const std::filesystem::path& path) {
  store::Db db(path, store::SyncMode::kNormal);
  store::Stmt q = db.prepare("SELECT grp, event_id FROM quarantine ORDER BY grp, seq");
  std::vector<std::string> out;
  while (q.step()) out.push_back(q.text(0) + "/" + q.text(1));
  return out;
}

}  // namespace rmon::testing
