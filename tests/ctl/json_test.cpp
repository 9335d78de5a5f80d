// rmon-ctl's JSON -> MessagePack converter: every JSON type in its shortest
// MessagePack form (compared with msgpack-cxx's own encoding), and clear,
// positioned errors for bad input.

#include <gtest/gtest.h>

#include <msgpack.hpp>

#include "ctl/json.hpp"
#include "rmon/protocol/msgmap.hpp"

namespace rmon::ctl {
namespace {

template <class T>
std::string packed(const T& v) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, v);
  return std::string(buf.data(), buf.size());
}

std::string error_of(std::string_view json) {
  try {
    (void)json_to_msgpack(json);
  } catch (const JsonError& e) {
    return e.what();
  }
  return "no error";
}

TEST(JsonToMsgpack, ScalarsTakeTheirShortestForm) {
  EXPECT_EQ(json_to_msgpack("null"), std::string(1, '\xc0'));
  EXPECT_EQ(json_to_msgpack("true"), std::string(1, '\xc3'));
  EXPECT_EQ(json_to_msgpack(" false "), std::string(1, '\xc2'));
  for (uint64_t v : std::initializer_list<uint64_t>{0ull, 1ull, 127ull, 128ull, 255ull, 256ull,
                                                    65535ull, 65536ull, 4294967295ull,
                                                    4294967296ull, 18446744073709551615ull}) {
    EXPECT_EQ(json_to_msgpack(std::to_string(v)), packed(v)) << v;
  }
  for (int64_t v :
       std::initializer_list<int64_t>{-1ll, -32ll, -33ll, -128ll, -129ll, -32768ll, -32769ll,
                                      -2147483648ll, -2147483649ll, INT64_MIN}) {
    EXPECT_EQ(json_to_msgpack(std::to_string(v)), packed(v)) << v;
  }
  EXPECT_EQ(json_to_msgpack("-0"), packed(0u));
  // Floats stay float64, whole or not.
  EXPECT_EQ(json_to_msgpack("1.5"), std::string("\xcb\x3f\xf8\0\0\0\0\0\0", 9));
  EXPECT_EQ(json_to_msgpack("2.0"), std::string("\xcb\x40\0\0\0\0\0\0\0", 9));
  EXPECT_EQ(protocol::to_json(json_to_msgpack("-1.25e3")), "-1250");
  EXPECT_EQ(protocol::to_json(json_to_msgpack("1E-2")), "0.01");
}

TEST(JsonToMsgpack, StringsWithEscapesAndUtf8) {
  EXPECT_EQ(json_to_msgpack(R"("")"), packed(std::string()));
  EXPECT_EQ(json_to_msgpack(R"("a\"\\\/\b\f\n\r\t")"), packed(std::string("a\"\\/\b\f\n\r\t")));
  EXPECT_EQ(json_to_msgpack(R"("\u00e9\u20ac\ud83d\ude00")"),
            packed(std::string("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80")));
  EXPECT_EQ(json_to_msgpack("\"\xc3\xa9\""), packed(std::string("\xc3\xa9")));
  const std::string s31(31, 'x'), s32(32, 'x'), s256(256, 'y'), s70k(70'000, 'z');
  for (const std::string& s : {s31, s32, s256, s70k}) {
    EXPECT_EQ(json_to_msgpack("\"" + s + "\""), packed(s)) << s.size();
  }
}

TEST(JsonToMsgpack, ContainersKeepOrder) {
  EXPECT_EQ(json_to_msgpack("[]"), packed(std::vector<int>{}));
  EXPECT_EQ(json_to_msgpack("{}"), std::string(1, '\x80'));
  EXPECT_EQ(json_to_msgpack("[1, 2, 3]"), packed(std::vector<int>{1, 2, 3}));
  std::vector<int> many(20, 7);
  std::string text = "[";
  for (std::size_t i = 0; i < many.size(); ++i) text += (i ? ",7" : "7");
  EXPECT_EQ(json_to_msgpack(text + "]"), packed(many));
  const std::string m = json_to_msgpack(R"({"b": [true, null], "a": {"x": -1}, "c": "d"})");
  EXPECT_EQ(protocol::to_json(m), R"({"b":[true,null],"a":{"x":-1},"c":"d"})");
  std::string wide = "{";
  for (int i = 0; i < 17; ++i)
    wide += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
  const std::string w = json_to_msgpack(wide + "}");
  EXPECT_EQ(static_cast<unsigned char>(w[0]), 0xde);  // map16
  EXPECT_EQ(protocol::to_json(w).substr(0, 14), R"({"k0":0,"k1":1)");
}

TEST(JsonToMsgpack, ErrorsSayWhereAndWhat) {
  EXPECT_EQ(error_of(""), "line 1, column 1: empty input: expected a JSON value");
  EXPECT_EQ(error_of("{\"a\": 1,}"),
            "line 1, column 9: unexpected '}': trailing comma in an object");
  EXPECT_EQ(error_of("[1,\n 2,]"), "line 2, column 4: unexpected ']': trailing comma in an array");
  EXPECT_EQ(error_of("{'a': 1}"), "line 1, column 2: unexpected ''': expected a string key");
  EXPECT_EQ(error_of("'a'"), "line 1, column 1: unexpected \"'\": JSON strings take double quotes");
  EXPECT_EQ(error_of("hello"),
            "line 1, column 1: unexpected 'h': a JSON string needs double quotes");
  EXPECT_EQ(error_of("[1 2]"), "line 1, column 4: unexpected '2': expected ',' or ']' in an array");
  EXPECT_EQ(error_of("{\"a\" 1}"), "line 1, column 6: unexpected '1': expected ':' after a key");
  EXPECT_EQ(error_of("{\"a\": 1, \"a\": 2}"), "line 1, column 10: duplicate key \"a\"");
  EXPECT_EQ(error_of("{} x"), "line 1, column 4: unexpected 'x' after the JSON value");
  EXPECT_EQ(error_of("[1,"), "line 1, column 4: unexpected end of input: expected a value");
  EXPECT_EQ(error_of("\"abc"), "line 1, column 5: unterminated string");
  EXPECT_EQ(error_of("\"a\nb\""),
            "line 1, column 3: control character byte 0x0a in a string: escape it");
  EXPECT_EQ(error_of(R"("\x")"), "line 1, column 2: unknown escape \\x in a string");
  EXPECT_EQ(error_of(R"("\ud83d")"), "line 1, column 8: high surrogate without its low surrogate");
  EXPECT_EQ(error_of(R"("\ude00")"), "line 1, column 8: lone low surrogate in a \\u escape");
  EXPECT_EQ(error_of(R"("\u12G4")"), "line 1, column 6: bad \\u escape: expected 4 hex digits");
  EXPECT_EQ(error_of("\"\xff\""), "line 1, column 2: invalid UTF-8 (byte 0xff)");
  EXPECT_EQ(error_of("\"\xc0\xaf\""), "line 1, column 2: invalid UTF-8 (byte 0xc0)");  // overlong
  EXPECT_EQ(error_of("\"\xed\xa0\x80\""),
            "line 1, column 2: invalid UTF-8 (byte 0xed)");  // surrogate
  EXPECT_EQ(error_of("01"), "line 1, column 2: leading zero in a number");
  EXPECT_EQ(error_of("-"), "line 1, column 2: expected a digit in a number");
  EXPECT_EQ(error_of("1."), "line 1, column 3: expected a digit after '.'");
  EXPECT_EQ(error_of("1e+"), "line 1, column 4: expected a digit in the exponent");
  EXPECT_EQ(error_of("+1"), "line 1, column 1: unexpected '+': expected a value");
  EXPECT_EQ(error_of("18446744073709551616"),
            "line 1, column 1: integer 18446744073709551616 is over 2^64-1 (write it with an "
            "exponent for a float)");
  EXPECT_EQ(error_of("-9223372036854775809"),
            "line 1, column 1: integer -9223372036854775809 is below -2^63 (write it with an "
            "exponent for a float)");
  EXPECT_EQ(error_of("1e400"), "line 1, column 1: number 1e400 is out of a float64's range");
  EXPECT_EQ(error_of("tru"), "line 1, column 1: unexpected 't': expected true");
  EXPECT_EQ(error_of("NaN"), "line 1, column 1: unexpected 'N': a JSON string needs double quotes");
}

TEST(JsonToMsgpack, NestingIsLimitedTo32Levels) {
  EXPECT_NO_THROW((void)json_to_msgpack(std::string(32, '[') + std::string(32, ']')));
  EXPECT_EQ(error_of(std::string(33, '[') + std::string(33, ']')),
            "line 1, column 33: nested deeper than 32 levels");
  EXPECT_EQ(error_of(std::string(100'000, '[')), "line 1, column 33: nested deeper than 32 levels");
}

}  // namespace
}  // namespace rmon::ctl
