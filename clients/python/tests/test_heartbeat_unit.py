"""HeartbeatPublisher against a fake socket: the exact payload, seq, terminal repeats, jitter."""

import random
import threading
import time
import unittest

import msgpack
import zmq

import rmon
from tests.fakes import FakeContext


def decode(frames):
    topic, payload = frames
    return topic, msgpack.unpackb(payload, raw=False)


def publisher(ctx, **kw):
    args = dict(
        endpoint="tcp://monitor:5555",
        runner_id="runner-1",
        task_id="t-abc-1",
        pool="local",
        pool_type="local-process",
        context=ctx,
    )
    args.update(kw)
    return rmon.HeartbeatPublisher(**args)


class PayloadTest(unittest.TestCase):
    def test_payload_keys_and_types(self):
        ctx = FakeContext()
        hb = publisher(ctx, attempt=3, interval_ms=60000, timeout_ms=5000, pid=4242, progress={"step": 1})
        sock = ctx.sockets[0]
        self.assertEqual(sock.kind, zmq.PUB)
        self.assertEqual(sock.connected, ["tcp://monitor:5555"])
        before = int(time.time() * 1000)
        hb.start()
        self.assertTrue(sock.wait_for(1))
        hb.close()
        topic, p = decode(sock.sent[0])
        self.assertEqual(topic, b"hb/runner-1")
        self.assertEqual(
            set(p),
            {"v", "runner_id", "task_id", "attempt", "pool", "pool_type", "pid", "state", "seq",
             "timeout_ms", "interval_ms", "sent_at_ms", "progress"},
        )
        self.assertEqual(p["v"], 1)
        self.assertEqual(p["runner_id"], "runner-1")
        self.assertEqual(p["task_id"], "t-abc-1")
        self.assertEqual(p["attempt"], 3)
        self.assertEqual(p["pool"], "local")
        self.assertEqual(p["pool_type"], "local-process")
        self.assertEqual(p["pid"], 4242)
        self.assertEqual(p["state"], "running")
        self.assertEqual(p["seq"], 1)
        self.assertEqual(p["timeout_ms"], 5000)
        self.assertEqual(p["interval_ms"], 60000)
        self.assertEqual(p["progress"], {"step": 1})
        self.assertIsInstance(p["sent_at_ms"], int)
        self.assertLessEqual(before, p["sent_at_ms"])
        self.assertLessEqual(p["sent_at_ms"], int(time.time() * 1000))
        # Every key is a MessagePack str, every id a str (not bin), ints are ints.
        raw = msgpack.unpackb(sock.sent[0][1], raw=True)
        self.assertTrue(all(isinstance(k, bytes) for k in raw))
        for k in ("runner_id", "task_id", "pool", "pool_type", "state"):
            self.assertIsInstance(msgpack.unpackb(sock.sent[0][1], raw=False)[k], str)

    def test_optional_keys_left_out(self):
        ctx = FakeContext()
        hb = publisher(ctx, interval_ms=60000, pool_type="docker", container_id="c0ffee")
        hb.start()
        ctx.sockets[0].wait_for(1)
        hb.close()
        _, p = decode(ctx.sockets[0].sent[0])
        self.assertNotIn("progress", p)
        self.assertNotIn("timeout_ms", p)
        self.assertNotIn("pid", p)
        self.assertEqual(p["container_id"], "c0ffee")
        self.assertEqual(p["attempt"], 1)

    def test_validation(self):
        ctx = FakeContext()
        bad = [
            dict(runner_id=""),
            dict(runner_id="r" * 129),
            dict(task_id=""),
            dict(pool="p" * 200),
            dict(pool_type="vm"),
            dict(attempt=0),
            dict(attempt=True),
            dict(interval_ms=0),
            dict(timeout_ms=0),
            dict(jitter=1.0),
            dict(jitter=-0.1),
            dict(pid=-1),
            dict(progress="x" * 5000),
            dict(job_name="j" * 257),
        ]
        for kw in bad:
            with self.subTest(kw=kw), self.assertRaises(ValueError):
                publisher(ctx, **kw)
        hb = publisher(ctx)
        with self.assertRaises(ValueError):
            hb.set_progress({"blob": "x" * 4096})
        with self.assertRaises(TypeError):
            hb.set_progress(object())
        hb.close()


class TimingTest(unittest.TestCase):
    def test_seq_increments_and_progress_is_picked_up(self):
        ctx = FakeContext()
        hb = publisher(ctx, interval_ms=10, jitter=0.0)
        sock = ctx.sockets[0]
        hb.start()
        self.assertTrue(sock.wait_for(3))
        hb.set_progress({"pct": 50})
        n = len(sock.sent)
        self.assertTrue(sock.wait_for(n + 2))
        hb.close()
        seqs = [decode(f)[1]["seq"] for f in sock.sent]
        self.assertEqual(seqs, list(range(1, len(seqs) + 1)))
        self.assertEqual(decode(sock.sent[-1])[1]["progress"], {"pct": 50})
        self.assertEqual(hb.seq, seqs[-1])
        self.assertTrue(sock.closed)

    def test_jitter_bounds(self):
        hb = publisher(FakeContext(), interval_ms=1000, jitter=0.2, rng=random.Random(7))
        delays = [hb.next_delay() for _ in range(2000)]
        self.assertGreaterEqual(min(delays), 0.8)
        self.assertLessEqual(max(delays), 1.2)
        self.assertLess(min(delays), 0.82)  # the whole range is used
        self.assertGreater(max(delays), 1.18)
        hb.close()
        fixed = publisher(FakeContext(), interval_ms=250, jitter=0)
        self.assertEqual({fixed.next_delay() for _ in range(10)}, {0.25})
        fixed.close()

    def test_periods_follow_interval(self):
        ctx = FakeContext()
        hb = publisher(ctx, interval_ms=40, jitter=0.25)
        hb.start()
        self.assertTrue(ctx.sockets[0].wait_for(6))
        hb.close()
        at = ctx.sockets[0].sent_at
        gaps = [b - a for a, b in zip(at, at[1:])]
        self.assertGreaterEqual(min(gaps), 0.030 - 0.002)  # 40 ms × 0.75, minus timer slack


class TerminalTest(unittest.TestCase):
    def test_complete_repeats_same_message_then_stops(self):
        ctx = FakeContext()
        hb = publisher(ctx, interval_ms=60000, terminal_repeats=3, terminal_gap_ms=20)
        sock = ctx.sockets[0]
        hb.start()
        sock.wait_for(1)
        t0 = time.monotonic()
        self.assertTrue(hb.complete(progress={"done": True}))
        self.assertGreaterEqual(time.monotonic() - t0, 0.035)
        self.assertFalse(hb.running)
        self.assertEqual(hb.state, "completed")
        frames = sock.sent
        self.assertEqual(len(frames), 4)
        self.assertEqual(frames[1], frames[2])
        self.assertEqual(frames[2], frames[3])
        _, p = decode(frames[1])
        self.assertEqual(p["state"], "completed")
        self.assertEqual(p["seq"], 2)
        self.assertEqual(p["progress"], {"done": True})
        # A second terminal call sends nothing; close is idempotent.
        self.assertFalse(hb.fail())
        hb.close()
        hb.close()
        self.assertEqual(len(sock.sent), 4)
        with self.assertRaises(RuntimeError):
            hb.start()

    def test_fail(self):
        ctx = FakeContext()
        hb = publisher(ctx, terminal_repeats=2, terminal_gap_ms=0)
        self.assertTrue(hb.fail())  # never started: only the terminal state
        hb.close()
        states = [decode(f)[1]["state"] for f in ctx.sockets[0].sent]
        self.assertEqual(states, ["failed", "failed"])

    def test_several_monitors_get_every_message(self):
        ctx = FakeContext()
        hb = publisher(
            ctx,
            endpoint=["tcp://monitor-a:5555", "tcp://monitor-b:5555"],
            interval_ms=60000,
            terminal_repeats=2,
            terminal_gap_ms=0,
        )
        self.assertEqual(hb.endpoints, ["tcp://monitor-a:5555", "tcp://monitor-b:5555"])
        self.assertEqual(hb.endpoint, "tcp://monitor-a:5555")
        self.assertEqual(len(ctx.sockets), 2)
        self.assertEqual(ctx.sockets[0].connected, ["tcp://monitor-a:5555"])
        self.assertEqual(ctx.sockets[1].connected, ["tcp://monitor-b:5555"])
        hb.start()
        ctx.sockets[1].wait_for(1)
        self.assertTrue(hb.complete())
        hb.close()
        self.assertEqual(ctx.sockets[0].sent, ctx.sockets[1].sent)
        states = [decode(f)[1]["state"] for f in ctx.sockets[0].sent]
        self.assertEqual(states, ["running", "completed", "completed"])
        self.assertTrue(all(s.closed for s in ctx.sockets))

    def test_endpoint_lists_are_checked(self):
        for bad in ([], [""], ["tcp://a:1", "tcp://a:1"], ["tcp://a:1"] * 17, [5555], 5555):
            with self.subTest(endpoint=bad), self.assertRaises(ValueError):
                publisher(FakeContext(), endpoint=bad)
        self.assertEqual(publisher(FakeContext(), endpoint=None).endpoints, ["tcp://127.0.0.1:5555"])
        self.assertEqual(
            publisher(FakeContext(), endpoint=("tcp://a:1",)).endpoints, ["tcp://a:1"]
        )

    def test_close_sends_no_terminal(self):
        ctx = FakeContext()
        hb = publisher(ctx, interval_ms=60000)
        hb.start()
        ctx.sockets[0].wait_for(1)
        hb.close()
        self.assertEqual([decode(f)[1]["state"] for f in ctx.sockets[0].sent], ["running"])
        with self.assertRaises(RuntimeError):
            hb.complete()

    def test_context_manager_completed_on_normal_exit(self):
        ctx = FakeContext()
        with publisher(ctx, interval_ms=60000, terminal_gap_ms=0) as hb:
            ctx.sockets[0].wait_for(1)
        states = [decode(f)[1]["state"] for f in ctx.sockets[0].sent]
        self.assertEqual(states, ["running", "completed", "completed", "completed"])
        self.assertTrue(ctx.sockets[0].closed)
        self.assertEqual(hb.state, "completed")

    def test_context_manager_failed_on_exception(self):
        ctx = FakeContext()
        with self.assertRaises(KeyError):
            with publisher(ctx, interval_ms=60000, terminal_gap_ms=0):
                ctx.sockets[0].wait_for(1)
                raise KeyError("boom")
        states = [decode(f)[1]["state"] for f in ctx.sockets[0].sent]
        self.assertEqual(states, ["running", "failed", "failed", "failed"])

    def test_context_manager_after_explicit_fail(self):
        ctx = FakeContext()
        with publisher(ctx, interval_ms=60000, terminal_repeats=1) as hb:
            ctx.sockets[0].wait_for(1)
            hb.fail()
        states = [decode(f)[1]["state"] for f in ctx.sockets[0].sent]
        self.assertEqual(states, ["running", "failed"])

    def test_concurrent_set_progress(self):
        ctx = FakeContext()
        hb = publisher(ctx, interval_ms=1, jitter=0)
        hb.start()
        stop = threading.Event()

        def spin(k):
            i = 0
            while not stop.is_set():
                hb.set_progress({"k": k, "i": i})
                i += 1

        threads = [threading.Thread(target=spin, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        ctx.sockets[0].wait_for(50)
        stop.set()
        for t in threads:
            t.join()
        hb.complete()
        seqs = [decode(f)[1]["seq"] for f in ctx.sockets[0].sent]
        self.assertEqual(seqs[:-3], list(range(1, len(seqs) - 2)))


if __name__ == "__main__":
    unittest.main()
