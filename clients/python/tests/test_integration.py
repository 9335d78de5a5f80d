"""The rmon clients against the real services, started as child processes.

Skipped unless RMON_MONITOR_BIN, RMON_TASK_QUEUE_BIN and RMON_POOL_MANAGER_BIN
name the executables (``ctest -R python`` sets them from the build tree).
"""

import itertools
import threading
import unittest

import rmon
from tests.stack import Stack, require, wait_until

HB_INTERVAL_MS = 50
_ids = itertools.count(1)


def uid(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


class ServicesTest(unittest.TestCase):
    """One stack shared by the class; each test uses its own pools, runners and tasks."""

    @classmethod
    def setUpClass(cls):
        require("monitor", "task-queue", "pool-manager")
        cls.stack = Stack(
            monitor_args=["--redelivery-interval-ms", "200"],
            task_queue_args=["--backoff-base-ms", "50", "--backoff-cap-ms", "100",
                             "--first-heartbeat-grace-ms", "20000"],
            pool_manager_args=["--first-heartbeat-grace-ms", "20000",
                               "--pool", "life=local-process:2,silent=docker:2,errs=local-process:1,"
                                         "kube=kubernetes:2"],
        )
        cls.tq = cls.stack.task_queue_client()
        cls.pm = cls.stack.pool_manager_client()
        cls.mon = cls.stack.monitor_client()

    @classmethod
    def tearDownClass(cls):
        status = cls.stack.close()
        # Both dispatcher services exit 0 after SIGTERM (the contract).
        for name in ("task-queue", "pool-manager"):
            if status.get(name) != 0:
                raise AssertionError(f"{name} exited with {status.get(name)} after SIGTERM")

    def tearDown(self):
        dead = {n: s for n, s in self.stack.alive().items() if s is not None}
        self.assertEqual(dead, {}, "a service exited during the test:\n" +
                         "\n".join(self.stack.log_tail(n) for n in dead))

    def holders(self, pool):
        [p] = self.pm.status(pool)
        return p["holders"]

    def publisher(self, runner_id, task, pool, pool_type="local-process", **kw):
        args = dict(interval_ms=HB_INTERVAL_MS, timeout_ms=5000, pid=4242)
        args.update(kw)
        return rmon.HeartbeatPublisher(self.stack.heartbeat, runner_id, task["task_id"], pool,
                                       pool_type, attempt=task["attempt"], **args)

    def lease(self, runner_id, pool, timeout=5.0):
        return wait_until(lambda: self.tq.lease(runner_id, pool=pool), timeout, what=f"a task in {pool}")

    # -- a runner's life -------------------------------------------------------
    def test_runner_lifecycle(self):
        runner = uid("py-life")
        task_id, created = self.tq.submit({"prompt": "hello", "n": 3}, pool="life", priority=5)
        self.assertTrue(created)
        self.assertEqual(self.tq.get(task_id)["state"], "queued")
        timeouts_before = self.mon.stats()["timeouts"]

        task = self.lease(runner, "life")
        self.assertEqual(task["task_id"], task_id)
        self.assertEqual(task["state"], "leased")
        self.assertEqual(task["attempt"], 1)
        self.assertEqual(task["runner_id"], runner)
        self.assertEqual(task["payload"], {"prompt": "hello", "n": 3})

        slot = self.pm.acquire("life", runner, task_id, task["attempt"])
        self.assertEqual(self.pm.acquire("life", runner, task_id, task["attempt"]), slot)
        self.assertEqual([(h["runner_id"], h["slot"]) for h in self.holders("life")], [(runner, slot)])

        with self.publisher(runner, task, "life", progress={"step": 0}) as hb:
            seen = wait_until(lambda: self.mon.get_runner_status(runner), what="the monitor to know the runner")
            self.assertEqual(seen, "running")
            r = self.mon.get(runner)
            self.assertEqual((r["task_id"], r["attempt"], r["pool"], r["pool_type"], r["pid"]),
                             (task_id, 1, "life", "local-process", 4242))
            self.assertEqual(r["timeout_ms"], 5000)
            hb.set_progress({"step": 2})
            wait_until(lambda: self.mon.get(runner).get("progress") == {"step": 2}, what="progress to reach the monitor")
            wait_until(lambda: self.mon.get(runner)["last_seq"] >= 3, what="several heartbeats")
            self.tq.complete(task_id, task["attempt"], result={"answer": 42})
        # Leaving the block sent `completed`.
        wait_until(lambda: self.mon.get_runner_status(runner) == "completed", what="the runner to complete")
        self.assertTrue(self.pm.release(runner))
        self.assertFalse(self.pm.release(runner))
        self.assertEqual(self.holders("life"), [])

        done = self.tq.get(task_id)
        self.assertEqual(done["state"], "completed")
        self.assertEqual(done["result"], {"answer": 42})
        self.assertNotIn("runner_id", done)
        self.assertEqual(self.mon.stats()["timeouts"], timeouts_before)
        self.assertIsNone(self.tq.lease(runner, pool="life"))

    def test_monitor_guards_in_stats_and_brake_release(self):
        s = self.mon.stats()
        for key in ("brake_engaged", "brake_held", "stalled", "stalls", "pending_task-queue",
                    "pending_pool-manager"):
            self.assertIn(key, s)
        self.assertEqual(s["brake_engaged"], 0)
        # Not engaged: the release is still answered, and says so.
        self.assertFalse(self.mon.release_brake())

    def test_silent_runner_requeued_and_slot_released(self):
        runner = uid("py-crash")
        task_id, _ = self.tq.submit("work", pool="silent", max_attempts=3)
        task = self.lease(runner, "silent")
        self.pm.acquire("silent", runner, task_id, task["attempt"])
        reassigned = self.tq.stats()["reassigned"]
        released = self.pm.stats()["released_by_timeout"]

        hb = self.publisher(runner, task, "silent", pool_type="docker", pid=None,
                            container_id="c0ffee", timeout_ms=300, progress={"at": "step 7"}).start()
        wait_until(lambda: self.mon.get_runner_status(runner), what="the first heartbeats")
        hb.close()  # the runner crashes: no terminal state, no more heartbeats

        requeued = wait_until(lambda: (lambda t: t if t["state"] == "queued" else None)(self.tq.get(task_id)),
                              what="the task to be requeued")
        self.assertEqual(requeued["attempt"], 1)
        self.assertNotIn("runner_id", requeued)
        self.assertTrue(requeued.get("last_error"))
        wait_until(lambda: self.holders("silent") == [], what="the slot to be released")
        self.assertEqual(self.mon.get_runner_status(runner), "failed")
        self.assertEqual(self.tq.stats()["reassigned"], reassigned + 1)
        wait_until(lambda: self.pm.stats()["released_by_timeout"] == released + 1,
                   what="released_by_timeout to count it")

        # The zombie's late completion is refused; a new runner gets attempt 2.
        with self.assertRaises(rmon.StaleAttempt):
            self.tq.complete(task_id, 1)
        second = self.lease(uid("py-rescue"), "silent")
        self.assertEqual((second["task_id"], second["attempt"]), (task_id, 2))
        with self.assertRaises(rmon.StaleAttempt):
            self.tq.complete(task_id, 1)
        self.tq.complete(task_id, 2)
        wait_until(lambda: self.mon.stats()["events_pending"] == 0, what="both groups to ack")

    # -- errors ------------------------------------------------------------------
    def test_task_queue_errors(self):
        runner = uid("py-err")
        task_id, _ = self.tq.submit(1, pool="errs", idempotency_key=uid("key"))
        with self.assertRaises(rmon.NotFound):
            self.tq.get("t-000000-999999")
        with self.assertRaises(rmon.NotFound):
            self.tq.complete("t-000000-999999", 1)
        with self.assertRaises(rmon.StaleAttempt):  # not leased yet
            self.tq.complete(task_id, 1)
        task = self.lease(runner, "errs")
        with self.assertRaises(rmon.StaleAttempt):
            self.tq.complete(task_id, task["attempt"] + 1)
        self.assertEqual(self.tq.fail(task_id, task["attempt"], error="flaky"), "queued")
        with self.assertRaises(rmon.StaleAttempt):
            self.tq.fail(task_id, task["attempt"])
        task = self.lease(runner, "errs")
        self.assertEqual(task["attempt"], 2)
        self.assertEqual(task["last_error"], "flaky")
        self.tq.complete(task_id, 2)
        with self.assertRaises(rmon.Conflict) as cm:
            self.tq.complete(task_id, 2)
        self.assertEqual(cm.exception.code, "conflict")
        self.assertTrue(cm.exception.detail)
        with self.assertRaises(rmon.Conflict):
            self.tq.cancel(task_id)

        other, _ = self.tq.submit(2, pool="errs", delay_ms=60000)
        self.assertEqual(self.tq.cancel(other), "cancelled")
        self.assertEqual(self.tq.cancel(other), "cancelled")

        dead, _ = self.tq.submit(3, pool="errs")
        t = self.lease(runner, "errs")
        self.assertEqual(t["task_id"], dead)
        self.assertEqual(self.tq.fail(dead, t["attempt"], error="fatal", retry=False), "dead")

    def test_idempotent_submit_and_paging(self):
        key = uid("idem")
        a = self.tq.submit({"k": 1}, pool="paging", idempotency_key=key)
        b = self.tq.submit({"k": 2}, pool="paging", idempotency_key=key)
        self.assertEqual(a, (a[0], True))
        self.assertEqual(b, (a[0], False))
        ids = [a[0]] + [self.tq.submit(i, pool="paging")[0] for i in range(4)]
        tasks, more = self.tq.list(pool="paging", limit=2)
        self.assertEqual([t["task_id"] for t in tasks], ids[:2])
        self.assertTrue(more)
        self.assertEqual([t["task_id"] for t in self.tq.iter_tasks(pool="paging", page_size=2)], ids)
        self.assertEqual(len(list(self.tq.iter_tasks(state="queued", pool="paging"))), 5)
        for t in ids:
            self.tq.cancel(t)
        self.assertEqual(list(self.tq.iter_tasks(state="queued", pool="paging")), [])
        self.assertEqual(self.tq.ping(), 1)
        stats = self.tq.stats()
        for key in ("queued", "leased", "completed", "dead", "cancelled", "reassigned",
                    "events_applied", "events_ignored"):
            self.assertIsInstance(stats[key], int, key)

    def test_pool_errors(self):
        r1, r2 = uid("py-pool"), uid("py-pool")
        slot = self.pm.acquire("errs", r1, "t-x-1", 1)
        self.assertEqual(self.pm.acquire("errs", r1, "t-x-1", 1), slot)
        with self.assertRaises(rmon.PoolFull):
            self.pm.acquire("errs", r2, "t-x-2", 1)
        with self.assertRaises(rmon.Conflict):
            self.pm.acquire("errs", r1, "t-x-1", 2)
        with self.assertRaises(rmon.NotFound):
            self.pm.acquire("no-such-pool", r1, "t-x-1", 1)
        with self.assertRaises(rmon.NotFound):
            self.pm.status("no-such-pool")
        [errs] = self.pm.status("errs")
        self.assertEqual((errs["name"], errs["type"], errs["slots"], errs["in_use"]),
                         ("errs", "local-process", 1, 1))
        self.assertEqual(errs["holders"][0]["runner_id"], r1)
        self.assertEqual({p["name"] for p in self.pm.status()} >= {"life", "silent", "errs", "kube"}, True)
        self.assertTrue(self.pm.release(r1, pool="errs"))
        self.assertEqual(self.pm.acquire("errs", r2, "t-x-2", 1), slot)
        self.assertTrue(self.pm.release(r2))
        for key in ("acquired", "released", "released_by_timeout", "events_applied", "events_ignored"):
            self.assertIsInstance(self.pm.stats()[key], int, key)

    def test_ping(self):
        self.assertEqual(self.tq.ping(), 1)
        self.assertEqual(self.mon.ping(), 1)
        try:
            self.assertEqual(self.pm.ping(), 1)
        except rmon.UnknownOp:
            # docs/PROTOCOL.md ("Dispatcher services: decisions") says both services answer it.
            self.skipTest("pool-manager does not answer `ping` (unknown_op); the project's decisions say it should")

    def test_bad_requests_on_every_service(self):
        for client in (self.tq, self.pm, self.mon):
            with self.subTest(type(client).__name__):
                with self.assertRaises(rmon.BadRequest):
                    client.request_raw(b"\xc1\x00garbage")
                with self.assertRaises(rmon.BadRequest):
                    client.request_raw(rmon._codec.encode([1, 2, 3]))
                with self.assertRaises(rmon.BadRequest):
                    client.request_raw(rmon._codec.encode({"v": 2, "op": "ping"}))
                with self.assertRaises(rmon.UnknownOp):
                    client.request("frobnicate")
                self.assertIsInstance(client.stats(), dict)  # still answering
        with self.assertRaises(rmon.BadRequest) as cm:
            self.tq.request("submit", priority=1)  # no payload
        self.assertIn("payload", cm.exception.detail)
        with self.assertRaises(rmon.BadRequest):
            self.pm.request("acquire", pool="errs", runner_id="r", task_id="t", attempt="one")
        with self.assertRaises(rmon.BadRequest):
            self.mon.request("set_state", runner_id="r", state="suspect")

    # -- the monitor's control API -----------------------------------------------
    def test_monitor_aliases(self):
        rid = uid("py-alias")
        running = self.mon.get_running_count()
        self.assertIsNone(self.mon.get_runner_status(rid))
        self.mon.add_runner(rid, "t-alias-1", "kube", "kubernetes", job_name="job-1", attempt=2,
                            timeout_ms=60000)
        self.assertEqual(self.mon.get_runner_status(rid), "running")
        r = self.mon.get(rid)
        self.assertEqual((r["task_id"], r["attempt"], r["job_name"], r["pool_type"]),
                         ("t-alias-1", 2, "job-1", "kubernetes"))
        self.assertEqual(self.mon.get_running_count(), running + 1)
        self.assertIn(rid, [x["runner_id"] for x in self.mon.get_all_runners()])
        with self.assertRaises(rmon.Exists):
            self.mon.add_runner(rid, "t-alias-1", "kube", "kubernetes")
        self.assertTrue(self.mon.update_runner_state(rid, "completed"))
        self.assertEqual(self.mon.get_runner_status(rid), "completed")
        self.assertEqual(self.mon.get_running_count(), running)
        self.assertTrue(self.mon.remove_runner(rid))
        self.assertIsNone(self.mon.get_runner_status(rid))
        self.assertFalse(self.mon.remove_runner(rid))
        self.assertFalse(self.mon.update_runner_state(rid, "failed"))
        with self.assertRaises(rmon.NotFound):
            self.mon.get(rid)

    def test_monitor_list_count_and_paging(self):
        pool = uid("mon-pool")
        ids = sorted(uid("py-page") for _ in range(5))
        for i in ids:
            self.mon.add(dict(runner_id=i, task_id="t-" + i, pool=pool, pool_type="local-process",
                              timeout_ms=60000))
        self.assertEqual(self.mon.count(pool=pool), 5)
        self.assertEqual(self.mon.count(state="running", pool=pool), 5)
        page, more = self.mon.list(pool=pool, limit=2)
        self.assertEqual([r["runner_id"] for r in page], ids[:2])
        self.assertTrue(more)
        page, more = self.mon.list(pool=pool, limit=10, after=ids[1])
        self.assertEqual([r["runner_id"] for r in page], ids[2:])
        self.assertFalse(more)
        self.assertEqual([r["runner_id"] for r in self.mon.iter_runners(pool=pool, page_size=2)], ids)
        self.mon.set_state(ids[0], "failed")
        self.assertEqual(self.mon.count(state="failed", pool=pool), 1)
        for i in ids:
            self.assertTrue(self.mon.remove(i))
        stats = self.mon.stats()
        for key in ("heartbeats", "rejected", "timeouts", "runners", "events_pending"):
            self.assertIsInstance(stats[key], int, key)


class TimeoutConsumerTest(unittest.TestCase):
    """TimeoutConsumer as a consumer group of a real monitor (no task-queue or pool-manager)."""

    @classmethod
    def setUpClass(cls):
        require("monitor")
        cls.stack = Stack(services=("monitor",), groups=("py-agents",),
                          monitor_args=["--redelivery-interval-ms", "200"])
        cls.mon = cls.stack.monitor_client()

    @classmethod
    def tearDownClass(cls):
        cls.stack.close()

    def consumer(self, handler):
        c = rmon.TimeoutConsumer("py-agents", self.stack.group_endpoints["py-agents"], handler,
                                 self.stack.acks, poll_ms=20)
        self.addCleanup(c.stop)
        return c.start()

    def crash(self, runner, task_id):
        hb = rmon.HeartbeatPublisher(self.stack.heartbeat, runner, task_id, "agents", "local-process",
                                     attempt=1, interval_ms=HB_INTERVAL_MS, timeout_ms=300,
                                     progress={"tokens": 1234}).start()
        wait_until(lambda: self.mon.get_runner_status(runner), what="the runner's heartbeats")
        hb.close()

    def test_ack_only_after_handler_returns(self):
        runner = uid("py-cons")
        release = threading.Event()
        events = []

        def handler(ev):
            events.append(ev)
            release.wait(10)

        self.consumer(handler)
        acks = self.mon.stats()["acks"]
        self.crash(runner, "t-cons-1")
        wait_until(lambda: events, what="the timeout event")
        ev = events[0]
        self.assertEqual((ev["type"], ev["runner_id"], ev["task_id"], ev["attempt"], ev["delivery"]),
                         ("runner_timeout", runner, "t-cons-1", 1, 1))
        self.assertEqual(ev["progress"], {"tokens": 1234})
        self.assertEqual(ev["timeout_ms"], 300)
        # While the handler runs, the event stays pending and is redelivered.
        wait_until(lambda: self.mon.stats()["redeliveries"] >= 1, what="a redelivery while unacked")
        self.assertGreaterEqual(self.mon.stats()["events_pending"], 1)
        self.assertEqual(self.mon.stats()["acks"], acks)
        release.set()
        wait_until(lambda: self.mon.stats()["events_pending"] == 0, what="the ack")
        self.assertGreaterEqual(self.mon.stats()["acks"], acks + 1)
        self.assertEqual(len({e["event_id"] for e in events}), 1)
        self.assertEqual(len(events), 1)  # the queued redelivery was acked without the handler

    def test_raising_handler_gets_redelivery(self):
        runner = uid("py-cons")
        deliveries = []

        def handler(ev):
            deliveries.append((ev["event_id"], ev["delivery"]))
            if len(deliveries) == 1:
                raise RuntimeError("simulated failure applying the event")

        with self.assertLogs("rmon", level="ERROR") as logs:
            self.consumer(handler)
            self.crash(runner, "t-cons-2")
            wait_until(lambda: len(deliveries) >= 2, what="the redelivery")
            wait_until(lambda: self.mon.stats()["events_pending"] == 0, what="the ack")
        self.assertIn("simulated failure", "\n".join(logs.output))
        (id1, d1), (id2, d2) = deliveries[:2]
        self.assertEqual(id1, id2)
        self.assertEqual(d1, 1)
        self.assertGreaterEqual(d2, 2)


if __name__ == "__main__":
    unittest.main()
