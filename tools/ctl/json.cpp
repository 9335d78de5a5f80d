#include "ctl/json.hpp"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>

namespace rmon::ctl {

namespace {

constexpr int kMaxDepth = 32;  // the protocol's nesting limit

// --- MessagePack writers (big-endian, shortest form) ---

void put_be(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

void put_uint(std::string& out, uint64_t v) {
  if (v < 0x80) {
    out += static_cast<char>(v);
  } else if (v <= 0xff) {
    out += '\xcc';
    put_be(out, v, 1);
  } else if (v <= 0xffff) {
    out += '\xcd';
    put_be(out, v, 2);
  } else if (v <= 0xffffffff) {
    out += '\xce';
    put_be(out, v, 4);
  } else {
    out += '\xcf';
    put_be(out, v, 8);
  }
}

void put_negative(std::string& out, int64_t v) {  // v < 0
  const auto u = static_cast<uint64_t>(v);
  if (v >= -32) {
    out += static_cast<char>(u & 0xff);
  } else if (v >= std::numeric_limits<int8_t>::min()) {
    out += '\xd0';
    put_be(out, u, 1);
  } else if (v >= std::numeric_limits<int16_t>::min()) {
    out += '\xd1';
    put_be(out, u, 2);
  } else if (v >= std::numeric_limits<int32_t>::min()) {
    out += '\xd2';
    put_be(out, u, 4);
  } else {
    out += '\xd3';
    put_be(out, u, 8);
  }
}

void put_double(std::string& out, double d) {
  out += '\xcb';
  put_be(out, std::bit_cast<uint64_t>(d), 8);
}

void put_str_header(std::string& out, std::size_t n) {
  if (n < 32) {
    out += static_cast<char>(0xa0 | n);
  } else if (n <= 0xff) {
    out += '\xd9';
    put_be(out, n, 1);
  } else if (n <= 0xffff) {
    out += '\xda';
    put_be(out, n, 2);
  } else {
    out += '\xdb';
    put_be(out, n, 4);
  }
}

void put_container_header(std::string& out, std::size_t n, bool map) {
  if (n < 16) {
    out += static_cast<char>((map ? 0x80 : 0x90) | n);
  } else if (n <= 0xffff) {
    out += map ? '\xde' : '\xdc';
    put_be(out, n, 2);
  } else {
    out += map ? '\xdf' : '\xdd';
    put_be(out, n, 4);
  }
}

void put_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

// --- the parser ---

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  std::string parse() {
    if (s_.substr(0, 3) == "\xef\xbb\xbf") pos_ = 3;  // a UTF-8 byte order mark
    ws();
    if (pos_ == s_.size()) fail("empty input: expected a JSON value");
    std::string out;
    value(out, 0);
    ws();
    if (pos_ != s_.size()) fail("unexpected " + quote_here() + " after the JSON value");
    return out;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    std::size_t line = 1, col = 1;
    for (std::size_t i = 0; i < pos_ && i < s_.size(); ++i) {
      if (s_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    throw JsonError("line " + std::to_string(line) + ", column " + std::to_string(col) + ": " +
                    what);
  }
  std::string quote_here() const {
    if (pos_ >= s_.size()) return "end of input";
    const auto c = static_cast<unsigned char>(s_[pos_]);
    if (c < 0x20 || c >= 0x7f) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "byte 0x%02x", c);
      return buf;
    }
    return std::string("'") + static_cast<char>(c) + "'";
  }
  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[pos_]; }
  void ws() {
    while (!at_end() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  void expect_word(std::string_view w) {
    if (s_.substr(pos_, w.size()) != w)
      fail("unexpected " + quote_here() + ": expected " + std::string(w));
    pos_ += w.size();
  }

  void value(std::string& out, int depth) {
    if (at_end()) fail("unexpected end of input: expected a value");
    const char c = s_[pos_];
    switch (c) {
      case '{':
        object(out, depth + 1);
        return;
      case '[':
        array(out, depth + 1);
        return;
      case '"': {
        std::string str;
        string(str);
        put_str_header(out, str.size());
        out += str;
        return;
      }
      case 't':
        expect_word("true");
        out += '\xc3';
        return;
      case 'f':
        expect_word("false");
        out += '\xc2';
        return;
      case 'n':
        expect_word("null");
        out += '\xc0';
        return;
      default:
        if (c == '-' || (c >= '0' && c <= '9')) {
          number(out);
          return;
        }
        if (c == '\'') fail("unexpected \"'\": JSON strings take double quotes");
        if (std::isalpha(static_cast<unsigned char>(c))) {
          fail("unexpected " + quote_here() + ": a JSON string needs double quotes");
        }
        fail("unexpected " + quote_here() + ": expected a value");
    }
  }

  void enter(int depth) const {
    if (depth > kMaxDepth) fail("nested deeper than " + std::to_string(kMaxDepth) + " levels");
  }

  void object(std::string& out, int depth) {
    enter(depth);
    ++pos_;  // '{'
    std::string body;
    std::size_t n = 0;
    std::set<std::string, std::less<>> keys;
    ws();
    if (peek() == '}') {
      ++pos_;
      put_container_header(out, 0, true);
      return;
    }
    for (;;) {
      ws();
      if (peek() != '"') {
        fail("unexpected " + quote_here() +
             (peek() == '}' ? ": trailing comma in an object" : ": expected a string key"));
      }
      const std::size_t key_at = pos_;
      std::string key;
      string(key);
      if (!keys.insert(key).second) {
        pos_ = key_at;
        fail("duplicate key \"" + key + "\"");
      }
      put_str_header(body, key.size());
      body += key;
      ws();
      if (peek() != ':') fail("unexpected " + quote_here() + ": expected ':' after a key");
      ++pos_;
      ws();
      value(body, depth);
      ++n;
      ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == '}') {
        ++pos_;
        break;
      }
      fail("unexpected " + quote_here() + ": expected ',' or '}' in an object");
    }
    put_container_header(out, n, true);
    out += body;
  }

  void array(std::string& out, int depth) {
    enter(depth);
    ++pos_;  // '['
    std::string body;
    std::size_t n = 0;
    ws();
    if (peek() == ']') {
      ++pos_;
      put_container_header(out, 0, false);
      return;
    }
    for (;;) {
      ws();
      if (peek() == ']') fail("unexpected ']': trailing comma in an array");
      value(body, depth);
      ++n;
      ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == ']') {
        ++pos_;
        break;
      }
      fail("unexpected " + quote_here() + ": expected ',' or ']' in an array");
    }
    put_container_header(out, n, false);
    out += body;
  }

  uint32_t hex4() {
    if (pos_ + 4 > s_.size()) fail("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        fail("bad \\u escape: expected 4 hex digits");
      }
      ++pos_;
    }
    return v;
  }

  // One UTF-8 sequence starting at pos_ (a byte >= 0x80), copied to `out`.
  void utf8(std::string& out) {
    const auto b0 = static_cast<unsigned char>(s_[pos_]);
    int len = 0;
    uint32_t cp = 0, min = 0;
    if (b0 >= 0xc2 && b0 <= 0xdf) {
      len = 2, cp = b0 & 0x1f, min = 0x80;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
      len = 3, cp = b0 & 0x0f, min = 0x800;
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      len = 4, cp = b0 & 0x07, min = 0x10000;
    } else {
      fail("invalid UTF-8 (" + quote_here() + ")");
    }
    if (pos_ + len > s_.size()) fail("truncated UTF-8 sequence");
    for (int i = 1; i < len; ++i) {
      const auto b = static_cast<unsigned char>(s_[pos_ + i]);
      if ((b & 0xc0) != 0x80) fail("invalid UTF-8 (" + quote_here() + ")");
      cp = (cp << 6) | (b & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      fail("invalid UTF-8 (" + quote_here() + ")");
    }
    out.append(s_.substr(pos_, len));
    pos_ += len;
  }

  void string(std::string& out) {
    ++pos_;  // '"'
    for (;;) {
      if (at_end()) fail("unterminated string");
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return;
      }
      if (c < 0x20) fail("control character " + quote_here() + " in a string: escape it");
      if (c >= 0x80) {
        utf8(out);
        continue;
      }
      if (c != '\\') {
        out += static_cast<char>(c);
        ++pos_;
        continue;
      }
      ++pos_;
      if (at_end()) fail("unterminated string");
      const char e = s_[pos_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xdc00 && cp <= 0xdfff) fail("lone low surrogate in a \\u escape");
          if (cp >= 0xd800 && cp <= 0xdbff) {
            if (s_.substr(pos_, 2) != "\\u") fail("high surrogate without its low surrogate");
            pos_ += 2;
            const uint32_t lo = hex4();
            if (lo < 0xdc00 || lo > 0xdfff) fail("high surrogate without its low surrogate");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          }
          put_utf8(out, cp);
          break;
        }
        default:
          pos_ -= 2;
          fail("unknown escape \\" + std::string(1, e) + " in a string");
      }
    }
  }

  void number(std::string& out) {
    const std::size_t start = pos_;
    auto digits = [&] {
      const std::size_t from = pos_;
      while (!at_end() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      return pos_ - from;
    };
    const bool negative = peek() == '-';
    if (negative) ++pos_;
    if (peek() == '0') {
      ++pos_;
      if (!at_end() && s_[pos_] >= '0' && s_[pos_] <= '9') fail("leading zero in a number");
    } else if (digits() == 0) {
      fail("expected a digit in a number");
    }
    bool is_float = false;
    if (peek() == '.') {
      ++pos_;
      is_float = true;
      if (digits() == 0) fail("expected a digit after '.'");
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      is_float = true;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (digits() == 0) fail("expected a digit in the exponent");
    }
    const std::string_view text = s_.substr(start, pos_ - start);
    const char* first = text.data();
    const char* last = text.data() + text.size();
    if (is_float) {
      double d = 0;
      const auto r = std::from_chars(first, last, d);
      if (r.ec != std::errc() || r.ptr != last || !std::isfinite(d)) {
        pos_ = start;
        fail("number " + std::string(text) + " is out of a float64's range");
      }
      put_double(out, d);
      return;
    }
    if (negative) {
      int64_t v = 0;
      const auto r = std::from_chars(first, last, v);
      if (r.ec != std::errc() || r.ptr != last) {
        pos_ = start;
        fail("integer " + std::string(text) +
             " is below -2^63 (write it with an exponent for a float)");
      }
      if (v < 0) {
        put_negative(out, v);
      } else {
        put_uint(out, 0);  // "-0"
      }
      return;
    }
    uint64_t v = 0;
    const auto r = std::from_chars(first, last, v);
    if (r.ec != std::errc() || r.ptr != last) {
      pos_ = start;
      fail("integer " + std::string(text) +
           " is over 2^64-1 (write it with an exponent for a float)");
    }
    put_uint(out, v);
  }

  std::string_view s_;
  std::size_t pos_ = 0;
};

}  // namespace

std::string json_to_msgpack(std::string_view json) { return Parser(json).parse(); }

}  // namespace rmon::ctl
