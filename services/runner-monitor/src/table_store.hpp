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
#include <string_view>
#include <vector>

#include "rmon/store/sqlite.hpp"
#include "saved_runner.hpp"

namespace rmon::monitor {

// The schema version of the saved runner table (store::open_service_db).
inline constexpr int64_t kTableSchemaVersion = 1;

class TableStore {
 public:
  explicit TableStore(store::Db db);

  // What a save passes its rows to, one at a time: the writer keeps nothing
  // between rows (the save's own list of ids is what grows with its size).
  class Writer {
   public:
    void put(const SavedRunner& r) { store_.upsert(r); }
    void forget(std::string_view runner_id) { store_.forget(runner_id); }

   private:
    friend class TableStore;
    explicit Writer(TableStore& s) : store_(s) {}
    TableStore& store_;
  };
  using Rows = std::function<void(Writer&)>;

  // One transaction: saves and forgets what `each` passes on.
  void write(const Rows& each);
  // The same, replacing every row saved before (one transaction).
  void rewrite(const Rows& each);
  // Every saved runner; rows that cannot be read are skipped and counted.
  std::size_t load(const std::function<void(const SavedRunner&)>& fn, std::size_t& unreadable);
  std::size_t size();

 private:
  void upsert(const SavedRunner& r);
  void forget(std::string_view runner_id);

  store::Db db_;
  store::Stmt upsert_, delete_;
  std::string fences_;  // the row being written's fences, encoded (reused)
};

}  // namespace rmon::monitor
