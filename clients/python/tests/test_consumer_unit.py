"""TimeoutConsumer.process with a fake ack socket, and the strict event decoder."""

import logging
import threading
import unittest

import msgpack
import zmq

import rmon
from tests.fakes import FakeSocket


def event(**over):
    ev = {
        "v": 1,
        "type": "runner_timeout",
        "event_id": "rmon-1a2b-c3d4-1",
        "runner_id": "runner-1",
        "task_id": "t-abc-1",
        "attempt": 2,
        "pool": "local",
        "pool_type": "local-process",
        "pid": 77,
        "last_seq": 9,
        "last_heartbeat_ms": 1700000000000,
        "detected_at_ms": 1700000000300,
        "timeout_ms": 300,
        "progress": {"step": 3},
        "delivery": 1,
    }
    ev.update(over)
    return {k: v for k, v in ev.items() if v is not None}


def frame(ev):
    return msgpack.packb(ev, use_bin_type=True)


class DecodeEventTest(unittest.TestCase):
    def test_valid(self):
        ev = rmon.decode_timeout_event(frame(event(extra_key="ignored")))
        self.assertEqual(ev["task_id"], "t-abc-1")
        self.assertEqual(ev["extra_key"], "ignored")

    def test_rejected(self):
        cases = [
            event(v=2),
            event(v="1"),
            event(v=True),
            event(type="ack"),
            event(event_id=""),
            event(runner_id=b"runner-1"),
            event(attempt=0),
            event(attempt=-1),
            event(pool_type="vm"),
            event(last_seq=1.5),
            event(detected_at_ms="now"),
            event(delivery=0),
            event(pid=-5),
            event(job_name="j" * 300),
        ]
        for key in rmon.consumer.REQUIRED_EVENT_KEYS:
            ev = event()
            del ev[key]
            cases.append(ev)
        nested = 1
        for _ in range(40):
            nested = [nested]
        cases.append(event(progress=nested))
        for ev in cases:
            with self.subTest(ev=ev), self.assertRaises(rmon.ProtocolError):
                rmon.decode_timeout_event(frame(ev))
        with self.assertRaises(rmon.ProtocolError):
            rmon.decode_timeout_event(frame(event(progress="x" * (64 * 1024))))

    def test_negative_wall_clock_is_an_int(self):
        rmon.decode_timeout_event(frame(event(last_heartbeat_ms=-1)))


class ProcessTest(unittest.TestCase):
    def consumer(self, handler, **kw):
        return rmon.TimeoutConsumer("task-queue", "inproc://unused", handler, **kw)

    def acks(self, sock):
        return [msgpack.unpackb(f[0], raw=False) for f in sock.sent]

    def test_acks_after_handler(self):
        seen = []
        sock = FakeSocket(zmq.PUSH)

        def handler(ev):
            self.assertEqual(sock.sent, [])  # not acked before the handler returns
            seen.append(ev)

        c = self.consumer(handler)
        self.assertTrue(c.process([frame(event())], sock))
        self.assertEqual(seen[0]["event_id"], "rmon-1a2b-c3d4-1")
        self.assertEqual(self.acks(sock), [{"v": 1, "type": "ack", "group": "task-queue", "event_id": "rmon-1a2b-c3d4-1"}])
        raw = msgpack.unpackb(sock.sent[0][0], raw=False)
        self.assertEqual(list(raw), ["v", "type", "group", "event_id"])

    def test_raising_handler_not_acked_and_logged(self):
        calls = []

        def handler(ev):
            calls.append(ev["delivery"])
            if len(calls) == 1:
                raise RuntimeError("database down")

        sock = FakeSocket(zmq.PUSH)
        c = self.consumer(handler)
        with self.assertLogs("rmon", level="ERROR") as logs:
            self.assertFalse(c.process([frame(event())], sock))
        self.assertIn("database down", "\n".join(logs.output))
        self.assertEqual(sock.sent, [])
        # The monitor's redelivery is handled and acked.
        self.assertTrue(c.process([frame(event(delivery=2))], sock))
        self.assertEqual(calls, [1, 2])
        self.assertEqual(len(sock.sent), 1)
        self.assertEqual(c.counters["failed"], 1)
        self.assertEqual(c.counters["handled"], 1)

    def test_repeat_of_acked_event_is_acked_without_handler(self):
        calls = []
        sock = FakeSocket(zmq.PUSH)
        c = self.consumer(calls.append, dedupe=2)
        c.process([frame(event())], sock)
        c.process([frame(event(delivery=2))], sock)
        self.assertEqual(len(calls), 1)
        self.assertEqual(len(sock.sent), 2)
        # Beyond the remembered window, the handler sees it again.
        c.process([frame(event(event_id="e2"))], sock)
        c.process([frame(event(event_id="e3"))], sock)
        c.process([frame(event(delivery=3))], sock)
        self.assertEqual(len(calls), 4)
        off = self.consumer(calls.append, dedupe=0)
        off.process([frame(event())], sock)
        off.process([frame(event())], sock)
        self.assertEqual(len(calls), 6)

    def test_malformed_frames_dropped(self):
        calls = []
        sock = FakeSocket(zmq.PUSH)
        c = self.consumer(calls.append)
        with self.assertLogs("rmon", level="WARNING"):
            self.assertFalse(c.process([b"\xc1"], sock))
            self.assertFalse(c.process([frame(event()), b"x"], sock))
            self.assertFalse(c.process([frame(event(type="other"))], sock))
        self.assertEqual(calls, [])
        self.assertEqual(sock.sent, [])
        self.assertEqual(c.counters["rejected"], 3)

    def test_constructor_validation(self):
        with self.assertRaises(ValueError):
            rmon.TimeoutConsumer("", "inproc://x", print)
        with self.assertRaises(ValueError):
            rmon.TimeoutConsumer("g", "inproc://x", None)


class RunTest(unittest.TestCase):
    def test_run_over_real_sockets(self):
        ctx = zmq.Context()
        self.addCleanup(ctx.term)
        events = ctx.socket(zmq.PUSH)
        events.bind("inproc://events")
        acks = ctx.socket(zmq.PULL)
        acks.bind("inproc://acks")
        self.addCleanup(events.close, 0)
        self.addCleanup(acks.close, 0)
        got = []
        c = rmon.TimeoutConsumer("pool-manager", "inproc://events", got.append, "inproc://acks",
                                 context=ctx, poll_ms=10)
        with c:
            events.send(frame(event()))
            self.assertTrue(acks.poll(5000))
            self.assertEqual(msgpack.unpackb(acks.recv(), raw=False)["group"], "pool-manager")
        self.assertEqual(len(got), 1)

    def test_run_with_stop_event(self):
        ctx = zmq.Context()
        self.addCleanup(ctx.term)
        stop = threading.Event()
        c = rmon.TimeoutConsumer("g", "inproc://nobody", print, "inproc://nobody-acks", context=ctx, poll_ms=5)
        t = threading.Thread(target=c.run, args=(stop,))
        t.start()
        stop.set()
        t.join(5)
        self.assertFalse(t.is_alive())


if __name__ == "__main__":
    logging.basicConfig()
    unittest.main()
