#pragma once
// The storage settings every service shares: the data folder (one for the
// whole stack; each service's files are named after it) and SQLite's
// durability mode.

#include <string>

#include "rmon/config.hpp"
#include "rmon/store/sqlite.hpp"

namespace rmon {

struct StorageSettings {
  std::string data_dir = "./rmon-data";
  std::string sync = "full";  // full | normal (SQLite synchronous, WAL)

  void register_storage_settings(Settings& s);
  std::string validate_storage() const;  // empty when consistent
  store::SyncMode sync_mode() const;
};

}  // namespace rmon
