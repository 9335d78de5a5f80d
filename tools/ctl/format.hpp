#pragma once
// Output for people: aligned tables, a map's fields as "key  value" lines,
// wall-clock times in UTC.

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace rmon::ctl {

class Table {
 public:
  // `right[i]` right-aligns column i (numbers); missing entries are left.
  explicit Table(std::vector<std::string> headers, std::vector<bool> right = {});
  void add(std::vector<std::string> row);
  void print(std::ostream& out) const;
  std::size_t size() const { return rows_.size(); }

 private:
  std::vector<std::string> headers_;
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

// A table cell: control characters become spaces; empty becomes "-".
std::string cell(std::string_view s);
// Unix ms -> "2026-12-02T10:00:00Z" (with_ms: "...00.123Z").
std::string utc_time(int64_t unix_ms, bool with_ms = false);

struct Field {
  std::string key;
  std::string text;  // strings as they are, other values as JSON; times annotated
};
// The fields of one encoded MessagePack map, in order. Keys named like
// wall-clock instants (`*_at_ms`, `last_heartbeat_ms`, `since_ms`) get their
// UTC time appended. Empty for bytes that are not a map with string keys.
std::vector<Field> map_fields(const std::string& map_bytes);
// Prints fields as aligned "key  value" lines, skipping `skip` keys.
void print_fields(std::ostream& out, const std::vector<Field>& fields,
                  const std::vector<std::string_view>& skip = {});

}  // namespace rmon::ctl
