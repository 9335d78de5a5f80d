#pragma once
// The runner table on disk: `<data-dir>/runner-monitor-table.db` (SQLite,
// WAL), one row per runner with what SavedRunner holds, readable with the
// sqlite3 shell. The Persister writes the runners that changed; the service
// reads them all back at start-up.
//
// Not thread-safe: one thread at a time (start-up, then the persister).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "rmon/store/sqlite.hpp"
#include "saved_runner.hpp"

namespace rmon::monitor {

// The schema version of the saved runner table (store::open_service_db).
inline constexpr int64_t kTableSchemaVersion = 1;

class TableStore {
 public:
  explicit TableStore(store::Db db);

  // One transaction: saves `upserts` and forgets the runners in `removed`.
  void write(const std::vector<SavedRunner>& upserts, const std::vector<std::string>& removed);
  // Replaces everything with what `each` yields (one transaction).
  void rewrite(const std::function<void(const std::function<void(const SavedRunner&)>&)>& each);
  // Every saved runner; rows that cannot be read are skipped and counted.
  std::size_t load(const std::function<void(const SavedRunner&)>& fn, std::size_t& unreadable);
  std::size_t size();

 private:
  void upsert(const SavedRunner& r);

  store::Db db_;
  store::Stmt upsert_, delete_;
};

}  // namespace rmon::monitor
