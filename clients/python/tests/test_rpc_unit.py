"""The service clients against an in-process fake ROUTER: exact requests, replies, timeouts."""

import itertools
import threading
import unittest

import msgpack
import zmq

import rmon

_ids = itertools.count()


class FakeService:
    """A ROUTER on inproc answering with ``answer(request) -> reply map | None`` (None: no reply)."""

    def __init__(self, answer, ctx=None):
        self.own_ctx = ctx is None
        self.ctx = ctx if ctx is not None else zmq.Context()
        self.endpoint = f"inproc://fake-{next(_ids)}"
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.bind(self.endpoint)
        self.answer = answer
        self.requests = []
        self.envelopes = []
        self.held = []  # (envelope) of unanswered requests
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop.is_set():
            if not self.router.poll(20):
                continue
            frames = self.router.recv_multipart()
            envelope, body = frames[:-1], frames[-1]
            self.envelopes.append(envelope)
            req = msgpack.unpackb(body, raw=False)
            self.requests.append(req)
            reply = self.answer(req, self)
            if reply is not None:
                self.router.send_multipart(envelope + [msgpack.packb(reply, use_bin_type=True)])
            else:
                self.held.append(envelope)

    def reply_held(self, reply):
        # Only from the serving thread's answer() (sockets are not thread-safe).
        for env in self.held:
            self.router.send_multipart(env + [msgpack.packb(reply, use_bin_type=True)])
        self.held.clear()

    def close(self):
        self.stop.set()
        self.thread.join()
        self.router.close(0)
        if self.own_ctx:
            self.ctx.term()


def ok(**kw):
    return dict(ok=True, **kw)


class RpcTest(unittest.TestCase):
    def service(self, answer):
        s = FakeService(answer)
        self.addCleanup(s.close)
        return s

    def client(self, cls, svc, timeout_ms=2000):
        c = cls(svc.endpoint, timeout_ms=timeout_ms, context=svc.ctx)
        self.addCleanup(c.close)
        return c

    def test_envelope_and_request_map(self):
        svc = self.service(lambda r, s: ok(version=1))
        c = self.client(rmon.TaskQueueClient, svc)
        self.assertEqual(c.ping(), 1)
        self.assertEqual(svc.envelopes[0][1], b"")  # identity, empty delimiter, body
        self.assertEqual(len(svc.envelopes[0]), 2)
        self.assertEqual(svc.requests, [{"v": 1, "op": "ping"}])

    def test_task_queue_requests(self):
        replies = {
            "submit": ok(task_id="t-1", created=True),
            "lease": ok(task=None),
            "complete": ok(),
            "fail": ok(state="queued"),
            "cancel": ok(state="cancelled"),
            "get": ok(task={"task_id": "t-1", "state": "queued"}),
            "list": ok(tasks=[], more=False),
            "stats": ok(queued=1, leased=0),
        }
        svc = self.service(lambda r, s: replies[r["op"]])
        c = self.client(rmon.TaskQueueClient, svc)
        self.assertEqual(c.submit({"x": [1, 2]}), ("t-1", True))
        c.submit(b"raw", priority=-2, max_attempts=1, pool="gpu", idempotency_key="k1", delay_ms=500)
        self.assertIsNone(c.lease("r1"))
        c.lease("r1", pool="gpu")
        c.complete("t-1", 2)
        c.complete("t-1", 2, result={"ok": 1})
        self.assertEqual(c.fail("t-1", 3, error="oom", retry=False), "queued")
        self.assertEqual(c.cancel("t-1"), "cancelled")
        self.assertEqual(c.get("t-1")["state"], "queued")
        self.assertEqual(c.list(state="queued", after="t-0", limit=5), ([], False))
        self.assertEqual(c.stats(), {"queued": 1, "leased": 0})
        self.assertEqual(
            svc.requests,
            [
                {"v": 1, "op": "submit", "payload": {"x": [1, 2]}, "priority": 0, "max_attempts": 5, "delay_ms": 0},
                {"v": 1, "op": "submit", "payload": b"raw", "priority": -2, "max_attempts": 1,
                 "pool": "gpu", "idempotency_key": "k1", "delay_ms": 500},
                {"v": 1, "op": "lease", "runner_id": "r1"},
                {"v": 1, "op": "lease", "runner_id": "r1", "pool": "gpu"},
                {"v": 1, "op": "complete", "task_id": "t-1", "attempt": 2},
                {"v": 1, "op": "complete", "task_id": "t-1", "attempt": 2, "result": {"ok": 1}},
                {"v": 1, "op": "fail", "task_id": "t-1", "attempt": 3, "error": "oom", "retry": False},
                {"v": 1, "op": "cancel", "task_id": "t-1"},
                {"v": 1, "op": "get", "task_id": "t-1"},
                {"v": 1, "op": "list", "state": "queued", "limit": 5, "after": "t-0"},
                {"v": 1, "op": "stats"},
            ],
        )

    def test_iter_tasks_pages(self):
        pages = {None: ([{"task_id": "a"}, {"task_id": "b"}], True), "b": ([{"task_id": "c"}], False)}

        def answer(r, s):
            tasks, more = pages[r.get("after")]
            return ok(tasks=tasks, more=more)

        svc = self.service(answer)
        c = self.client(rmon.TaskQueueClient, svc)
        self.assertEqual([t["task_id"] for t in c.iter_tasks(page_size=2)], ["a", "b", "c"])

    def test_pool_manager_requests(self):
        replies = {
            "acquire": ok(slot=3),
            "release": ok(released=False),
            "status": ok(pools=[{"name": "local"}]),
            "stats": ok(acquired=1),
        }
        svc = self.service(lambda r, s: replies[r["op"]])
        c = self.client(rmon.PoolManagerClient, svc)
        self.assertEqual(c.acquire("local", "r1", "t-1", 1), 3)
        self.assertFalse(c.release("r1"))
        c.release("r1", pool="local")
        self.assertEqual(c.status(), [{"name": "local"}])
        self.assertEqual(c.stats(), {"acquired": 1})
        self.assertEqual(
            svc.requests[:3],
            [
                {"v": 1, "op": "acquire", "pool": "local", "runner_id": "r1", "task_id": "t-1", "attempt": 1},
                {"v": 1, "op": "release", "runner_id": "r1"},
                {"v": 1, "op": "release", "runner_id": "r1", "pool": "local"},
            ],
        )

    def test_monitor_aliases(self):
        state = {"r1": "suspect"}

        def answer(r, s):
            op = r["op"]
            if op == "get":
                if r["runner_id"] in state:
                    return ok(runner={"runner_id": r["runner_id"], "state": state[r["runner_id"]]})
                return {"ok": False, "error": "not_found", "detail": "no runner"}
            if op == "count":
                return ok(count={"running": 4, "suspect": 1}[r["state"]])
            if op == "set_state":
                if r["runner_id"] not in state:
                    return {"ok": False, "error": "not_found", "detail": "no runner"}
                return ok()
            if op == "list":
                if r.get("after") is None:
                    return ok(runners=[{"runner_id": "a"}], more=True)
                return ok(runners=[{"runner_id": "b"}], more=False)
            if op == "add":
                return ok()
            if op == "remove":
                return ok(removed=r["runner_id"] in state)
            raise AssertionError(op)

        svc = self.service(answer)
        c = self.client(rmon.RunnerMonitorClient, svc)
        self.assertEqual(c.get_runner_status("r1"), "suspect")
        self.assertIsNone(c.get_runner_status("nobody"))
        self.assertEqual(c.get_running_count(), 4)
        self.assertEqual(c.get_running_count(include_suspect=True), 5)
        self.assertEqual([r["runner_id"] for r in c.get_all_runners()], ["a", "b"])
        self.assertTrue(c.update_runner_state("r1", "completed"))
        self.assertFalse(c.update_runner_state("nobody", "failed"))
        c.add_runner("r2", "t-9", "local", attempt=2, timeout_ms=500)
        self.assertTrue(c.remove_runner("r1"))
        self.assertFalse(c.remove_runner("zz"))
        add = [r for r in svc.requests if r["op"] == "add"][0]
        self.assertEqual(
            add,
            {"v": 1, "op": "add", "runner": {"runner_id": "r2", "task_id": "t-9", "pool": "local",
                                             "pool_type": "local-process", "attempt": 2, "timeout_ms": 500,
                                             "state": "running"}},
        )
        with self.assertRaises(ValueError):
            c.update_runner_state("r1", "suspect")

    def test_monitor_lookup(self):
        known = {"r1": {"task_id": "t-1", "attempt": 2, "state": "failed", "timed_out": True,
                        "state_for_ms": 1500}}

        def answer(r, s):
            assert r["op"] == "lookup", r
            if r["runner_ids"] == ["bad"]:
                return {"ok": False, "error": "bad_request", "detail": "too_large: runner_ids"}
            if r["runner_ids"] == ["short"]:
                return ok(runners=[])  # one entry missing
            return ok(runners=[known.get(i) for i in r["runner_ids"]], uptime_ms=60000)

        svc = self.service(answer)
        c = self.client(rmon.RunnerMonitorClient, svc)
        self.assertEqual(c.lookup(["r1", "nobody", "r1"]), [known["r1"], None, known["r1"]])
        self.assertEqual(svc.requests[0], {"v": 1, "op": "lookup", "runner_ids": ["r1", "nobody", "r1"]})
        self.assertEqual(c.lookup(("nobody",)), [None])
        # The largest lookup fits the monitor's request limit (not the 64 KiB of others).
        full = ["%0128d" % i for i in range(1000)]
        self.assertEqual(c.lookup(full), [None] * 1000)
        with self.assertRaises(rmon.BadRequest):
            c.lookup(["bad"])
        with self.assertRaises(rmon.ProtocolError):
            c.lookup(["short"])
        sent = len(svc.requests)
        for bad in ([], ["r"] * 1001, ["x" * 129], [""], [7], "r1", None):
            with self.assertRaises(ValueError, msg=repr(bad)[:40]):
                c.lookup(bad)
        self.assertEqual(len(svc.requests), sent)

    def test_error_reply_raises_by_code(self):
        svc = self.service(lambda r, s: {"ok": False, "error": "stale_attempt", "detail": "attempt 1 is old"})
        c = self.client(rmon.TaskQueueClient, svc)
        with self.assertRaises(rmon.StaleAttempt) as cm:
            c.complete("t-1", 1)
        self.assertEqual(cm.exception.detail, "attempt 1 is old")

    def test_malformed_reply(self):
        svc = self.service(lambda r, s: ok())  # no version
        c = self.client(rmon.PoolManagerClient, svc)
        with self.assertRaises(rmon.ProtocolError):
            c.ping()

    def test_timeout_then_late_reply_is_never_matched(self):
        def answer(r, s):
            if r["op"] == "get":  # held: answered late, after the next request
                return None
            s.reply_held(ok(version=99))  # the late reply to the timed-out request
            return ok(version=1)

        svc = self.service(answer)
        c = self.client(rmon.RunnerMonitorClient, svc, timeout_ms=100)
        with self.assertRaises(rmon.TimeoutError):
            c.get("r1")
        for _ in range(3):
            self.assertEqual(c.ping(), 1)
        self.assertEqual(len(svc.requests), 4)

    def test_several_endpoints_an_unanswered_request_goes_to_the_next_and_stays(self):
        hung = self.service(lambda r, s: None)  # a replica that never answers
        live = FakeService(lambda r, s: ok(version=1), ctx=hung.ctx)
        self.addCleanup(live.close)
        c = rmon.TaskQueueClient([hung.endpoint, live.endpoint], timeout_ms=100, context=hung.ctx)
        self.addCleanup(c.close)
        self.assertEqual(c.endpoints, [hung.endpoint, live.endpoint])
        self.assertEqual(c.ping(), 1)
        self.assertEqual(c.endpoint, live.endpoint)
        self.assertEqual(c.ping(), 1)
        self.assertEqual(len(hung.requests), 1, "the hung replica got the first try only")
        self.assertEqual(len(live.requests), 2)

    def test_several_endpoints_none_answering_times_out_naming_each(self):
        a = self.service(lambda r, s: None)
        b = FakeService(lambda r, s: None, ctx=a.ctx)
        self.addCleanup(b.close)
        c = rmon.TaskQueueClient([a.endpoint, b.endpoint], timeout_ms=50, context=a.ctx)
        self.addCleanup(c.close)
        with self.assertRaises(rmon.TimeoutError) as e:
            c.ping()
        self.assertIn(a.endpoint, str(e.exception))
        self.assertIn(b.endpoint, str(e.exception))
        for bad in ([], [""], [b"tcp://x:1"], b"tcp://x:1", 5):
            with self.assertRaises(ValueError):
                rmon.TaskQueueClient(bad)

    def test_timeout_with_nobody_there(self):
        c = rmon.TaskQueueClient("ipc:///nonexistent/rmon-test", timeout_ms=50)
        self.addCleanup(c.close)
        with self.assertRaises(rmon.TimeoutError):
            c.ping()
        with self.assertRaises(TimeoutError):  # also the builtin
            c.ping()

    def test_oversize_request_refused_locally(self):
        svc = self.service(lambda r, s: ok(task_id="t", created=True))
        c = self.client(rmon.TaskQueueClient, svc)
        with self.assertRaises(ValueError):
            c.submit("x" * (81 * 1024))
        m = self.client(rmon.RunnerMonitorClient, svc)
        with self.assertRaises(ValueError):  # the monitor takes 160 KiB (a full lookup)
            m.add_runner("r", "t", "p", progress="x" * (161 * 1024))
        self.assertEqual(svc.requests, [])

    def test_argument_validation(self):
        svc = self.service(lambda r, s: ok())
        c = self.client(rmon.TaskQueueClient, svc)
        for call in (
            lambda: c.lease(""),
            lambda: c.complete("t", 0),
            lambda: c.fail("t", 1, retry="no"),
            lambda: c.list(state="bogus"),
            lambda: c.submit(1, max_attempts=0),
        ):
            with self.assertRaises(ValueError):
                call()
        self.assertEqual(svc.requests, [])

    def test_closed_client(self):
        svc = self.service(lambda r, s: ok(version=1))
        c = self.client(rmon.PoolManagerClient, svc)
        c.close()
        c.close()
        with self.assertRaises(RuntimeError):
            c.ping()

    def test_shared_between_threads(self):
        svc = self.service(lambda r, s: ok(slot=int(r["runner_id"][1:])))
        c = self.client(rmon.PoolManagerClient, svc)
        results = {}

        def work(k):
            results[k] = [c.acquire("p", f"r{k}", "t", 1) for _ in range(20)]

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, {k: [k] * 20 for k in range(4)})


if __name__ == "__main__":
    unittest.main()
