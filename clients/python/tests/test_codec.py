"""The codec's strict decoding and the error classes."""

import unittest

import msgpack

import rmon
from rmon import _codec, errors
from rmon._rpc import parse_reply


class DecodeMapTest(unittest.TestCase):
    def test_round_trip(self):
        frame = _codec.encode({"v": 1, "s": "é", "b": b"\x00\xff", "n": -3, "l": [1, 2]})
        self.assertEqual(
            _codec.decode_map(frame, 1024), {"v": 1, "s": "é", "b": b"\x00\xff", "n": -3, "l": [1, 2]}
        )

    def test_bytes_go_out_as_bin_and_str_as_str(self):
        frame = _codec.encode({"b": b"x", "s": "x"})
        self.assertEqual(msgpack.unpackb(frame, raw=True), {b"b": b"x", b"s": b"x"})
        self.assertIn(b"\xc4\x01x", frame)  # bin 8
        self.assertIn(b"\xa1x", frame)  # fixstr

    def test_rejects(self):
        cases = {
            "not a map": msgpack.packb([1, 2]),
            "trailing": msgpack.packb({"a": 1}) + b"\x00",
            "truncated": msgpack.packb({"a": "abc"})[:-1],
            "empty": b"",
            "int key": msgpack.packb({1: 2}, strict_types=False),
            "bin key": b"\x81\xc4\x01k\x01",
            "not msgpack": b"\xc1",
        }
        for name, frame in cases.items():
            with self.subTest(name), self.assertRaises(errors.ProtocolError):
                _codec.decode_map(frame, 1024)

    def test_size_limit_before_decoding(self):
        frame = _codec.encode({"a": "x" * 100})
        with self.assertRaises(errors.ProtocolError) as cm:
            _codec.decode_map(frame, len(frame) - 1)
        self.assertEqual(cm.exception.code, "too_large")
        self.assertEqual(_codec.decode_map(frame, len(frame)), {"a": "x" * 100})

    def test_invalid_utf8_round_trips(self):
        frame = b"\x81\xa1k\xa2\xff\xfe"
        obj = _codec.decode_map(frame, 100)
        self.assertEqual(_codec.encode(obj), frame)

    def test_check_id(self):
        self.assertEqual(_codec.check_id("a" * 128, "runner_id"), "a" * 128)
        for bad in ("", "a" * 129, "é" * 65, 7, None, b"abc", "\udcff"):
            with self.subTest(bad=bad), self.assertRaises(ValueError):
                _codec.check_id(bad, "runner_id")

    def test_check_uint(self):
        with self.assertRaises(ValueError):
            _codec.check_uint(True, "attempt")
        with self.assertRaises(ValueError):
            _codec.check_uint(0, "attempt", minimum=1)
        with self.assertRaises(ValueError):
            _codec.check_uint(1.0, "attempt")
        with self.assertRaises(ValueError):
            _codec.check_uint(1 << 64, "attempt")

    def test_depth(self):
        self.assertEqual(_codec.depth(1), 0)
        self.assertEqual(_codec.depth({"a": [1, {"b": []}]}), 4)


class ReplyTest(unittest.TestCase):
    def reply(self, obj):
        return parse_reply(_codec.encode(obj))

    def test_ok(self):
        self.assertEqual(self.reply({"ok": True, "x": 1}), {"ok": True, "x": 1})
        self.assertEqual(self.reply({"ok": True, "v": 1}), {"ok": True, "v": 1})

    def test_error_classes_by_code(self):
        table = {
            "not_found": rmon.NotFound,
            "stale_attempt": rmon.StaleAttempt,
            "conflict": rmon.Conflict,
            "pool_full": rmon.PoolFull,
            "bad_request": rmon.BadRequest,
            "unavailable": rmon.Unavailable,
            "unknown_op": rmon.UnknownOp,
            "exists": rmon.Exists,
            "internal": rmon.Internal,
        }
        for code, cls in table.items():
            with self.subTest(code), self.assertRaises(cls) as cm:
                self.reply({"ok": False, "error": code, "detail": "why"})
            self.assertEqual(cm.exception.code, code)
            self.assertEqual(cm.exception.detail, "why")
            self.assertIsInstance(cm.exception, rmon.RmonError)
            self.assertIn("why", str(cm.exception))

    def test_unknown_code_is_plain_rmon_error(self):
        with self.assertRaises(rmon.RmonError) as cm:
            self.reply({"ok": False, "error": "teapot", "detail": "short and stout"})
        self.assertIs(type(cm.exception), rmon.RmonError)
        self.assertEqual(cm.exception.code, "teapot")

    def test_malformed_replies(self):
        for obj in ({"x": 1}, {"ok": 1}, {"ok": False}, {"ok": True, "v": 2}, {"ok": True, "v": "1"}):
            with self.subTest(obj=obj), self.assertRaises(rmon.ProtocolError):
                self.reply(obj)

    def test_timeout_error_is_also_builtin(self):
        e = rmon.TimeoutError("late")
        self.assertIsInstance(e, TimeoutError)
        self.assertIsInstance(e, rmon.RmonError)
        self.assertEqual(e.code, "timeout")


if __name__ == "__main__":
    unittest.main()
