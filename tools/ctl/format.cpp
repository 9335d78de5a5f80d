#include "ctl/format.hpp"

#include <msgpack.hpp>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <optional>
#include <ostream>

#include "rmon/protocol/msgmap.hpp"

namespace rmon::ctl {

namespace {

// Display width: UTF-8 code points (continuation bytes do not count).
std::size_t width(std::string_view s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xc0) != 0x80; }));
}

bool is_instant(std::string_view key) {
  auto ends_with = [&](std::string_view suffix) {
    return key.size() >= suffix.size() && key.substr(key.size() - suffix.size()) == suffix;
  };
  return ends_with("_at_ms") || key == "last_heartbeat_ms" || key == "since_ms";
}

}  // namespace

Table::Table(std::vector<std::string> headers, std::vector<bool> right)
    : headers_(std::move(headers)), right_(std::move(right)) {
  right_.resize(headers_.size(), false);
}

void Table::add(std::vector<std::string> row) {
  row.resize(headers_.size());
  rows_.push_back(std::move(row));
}

void Table::print(std::ostream& out) const {
  std::vector<std::size_t> w(headers_.size());
  for (std::size_t i = 0; i < headers_.size(); ++i) w[i] = width(headers_[i]);
  for (const auto& r : rows_) {
    for (std::size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], width(r[i]));
  }
  auto line = [&](const std::vector<std::string>& r) {
    std::string s;
    for (std::size_t i = 0; i < r.size(); ++i) {
      const std::size_t pad = w[i] - width(r[i]);
      const bool last = i + 1 == r.size();
      if (i) s += "  ";
      if (right_[i]) s.append(pad, ' ');
      s += r[i];
      if (!right_[i] && !last) s.append(pad, ' ');
    }
    out << s << '\n';
  };
  line(headers_);
  for (const auto& r : rows_) line(r);
}

std::string cell(std::string_view s) {
  if (s.empty()) return "-";
  std::string out(s);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return out;
}

std::string utc_time(int64_t unix_ms, bool with_ms) {
  const auto secs =
      static_cast<std::time_t>(unix_ms >= 0 ? unix_ms / 1000 : (unix_ms - 999) / 1000);
  const int ms = static_cast<int>(unix_ms - static_cast<int64_t>(secs) * 1000);
  std::tm tm{};
  if (!gmtime_r(&secs, &tm)) return std::to_string(unix_ms);
  char buf[48];
  if (with_ms) {
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  } else {
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  }
  return buf;
}

std::vector<Field> map_fields(const std::string& map_bytes) {
  std::vector<Field> out;
  std::vector<std::size_t> nested;  // fields whose value is rendered as JSON below
  try {
    // The reply already passed the client's bounded parse (ApiClient).
    msgpack::object_handle h = msgpack::unpack(map_bytes.data(), map_bytes.size());
    const msgpack::object& m = h.get();
    if (m.type != msgpack::type::MAP) return {};
    for (uint32_t i = 0; i < m.via.map.size; ++i) {
      const auto& kv = m.via.map.ptr[i];
      if (kv.key.type != msgpack::type::STR) return {};
      Field f{std::string(kv.key.via.str.ptr, kv.key.via.str.size), {}};
      const msgpack::object& v = kv.val;
      switch (v.type) {
        case msgpack::type::STR:
          f.text.assign(v.via.str.ptr, v.via.str.size);
          break;
        case msgpack::type::NIL:
          f.text = "null";
          break;
        case msgpack::type::BOOLEAN:
          f.text = v.via.boolean ? "true" : "false";
          break;
        case msgpack::type::POSITIVE_INTEGER:
          f.text = std::to_string(v.via.u64);
          if (is_instant(f.key) && v.via.u64 > 0 && v.via.u64 < static_cast<uint64_t>(INT64_MAX)) {
            f.text += " (" + utc_time(static_cast<int64_t>(v.via.u64), true) + ")";
          }
          break;
        case msgpack::type::NEGATIVE_INTEGER:
          f.text = std::to_string(v.via.i64);
          break;
        default:
          nested.push_back(out.size());
      }
      out.push_back(std::move(f));
    }
  } catch (const std::exception&) {
    return {};
  }
  if (nested.empty()) return out;
  // Floats, maps, arrays, bin: re-encoded exactly by MapReader, then as JSON.
  std::vector<std::optional<std::string>> raw(nested.size());
  {
    auto m = protocol::MapReader::parse(map_bytes, protocol::kMaxReplyFrame);
    if (!m) return {};
    for (std::size_t i = 0; i < nested.size(); ++i) {
      if (!m.value().opt_raw(out[nested[i]].key, raw[i], protocol::kMaxReplyFrame)) return {};
    }
  }  // MapReader is invalid from here on: to_json reuses its scratch zone
  for (std::size_t i = 0; i < nested.size(); ++i) {
    out[nested[i]].text = raw[i] ? protocol::to_json(*raw[i]) : "null";
  }
  return out;
}

void print_fields(std::ostream& out, const std::vector<Field>& fields,
                  const std::vector<std::string_view>& skip) {
  std::size_t w = 0;
  auto skipped = [&](const Field& f) {
    return std::find(skip.begin(), skip.end(), f.key) != skip.end();
  };
  for (const Field& f : fields) {
    if (!skipped(f)) w = std::max(w, width(f.key));
  }
  for (const Field& f : fields) {
    if (skipped(f)) continue;
    out << f.key << std::string(w - width(f.key) + 2, ' ') << f.text << '\n';
  }
}

}  // namespace rmon::ctl
