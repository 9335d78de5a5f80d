"""The rmon clients against the real services run with ``--security curve``.

The monitor alone: keys written by pyzmq (``zmq.auth.create_certificates``,
metadata added as the contract requires). The whole stack: keys written by
``rmon-keygen init``. Skipped unless RMON_MONITOR_BIN (and for the stack
RMON_TASK_QUEUE_BIN, RMON_POOL_MANAGER_BIN) name the executables
(``ctest -R python`` sets them), and the stack also when its task-queue or
pool-manager does not take ``--security curve`` or rmon-keygen is not found.
"""

import itertools
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import zmq.auth

import rmon
from tests import keys as testkeys
from tests.stack import CurveMonitor, CurveStack, binary, captured_logs, require, takes_curve, wait_until

_ids = itertools.count(1)


def uid(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


def answers(client) -> bool:
    try:
        return client.ping() == 1
    except rmon.NotEnrolled:
        return False


class CurveTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        require("monitor")
        if not rmon.curve_available():
            raise unittest.SkipTest("this libzmq has no CURVE (zmq.has('curve') is False)")

    def publisher(self, mon, runner_id, curve, task=None, pool="local", pool_type="local-process", **kw):
        """Heartbeats for ``task`` (a leased task map), or for a task id of its own."""
        args = dict(interval_ms=50, timeout_ms=60000)
        args.update(kw)
        task_id, attempt = (task["task_id"], task["attempt"]) if task else (uid("t"), 1)
        hb = rmon.HeartbeatPublisher(mon.heartbeat, runner_id, task_id, pool, pool_type,
                                     attempt=attempt, curve=curve, **args)
        self.addCleanup(hb.close)
        return hb


class CurveMonitorTest(CurveTestCase):
    """One CURVE monitor for the class; each test uses keys and runners of its own."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp(prefix="rmon-py-keys-")
        cls.keys = testkeys.MonitorKeys(cls.root)
        k = cls.keys
        cls.admin_keys = k.client("admin", role="admin")
        cls.reader_keys = k.client("reader", role="reader", quoted=False)  # pyzmq's bare values
        cls.runner_keys = k.client("py-runner", role="runner", runner_prefix="py-", quoted=False)
        cls.tq_keys = k.client("consumer-task-queue", role="consumer", group="task-queue")
        cls.pm_keys = k.client("consumer-pool-manager", role="consumer", group="pool-manager")
        try:
            cls.mon = CurveMonitor(k.monitor_secret_file, k.clients_dir, cls.admin_keys,
                                   args=["--redelivery-interval-ms", "200"], metrics=True)
        except BaseException:
            shutil.rmtree(cls.root, ignore_errors=True)
            raise
        cls.admin = cls.mon.client(cls.admin_keys)
        cls.reader = cls.mon.client(cls.reader_keys)

    @classmethod
    def tearDownClass(cls):
        status = cls.mon.close()
        shutil.rmtree(cls.root, ignore_errors=True)
        if status != 0:
            raise AssertionError(f"runner-monitor exited with {status} after SIGTERM")

    def tearDown(self):
        self.assertTrue(self.mon.alive(), "the monitor exited during the test:\n" + self.mon.log_tail())

    def test_heartbeats_of_an_enrolled_runner_are_seen_by_admin_and_reader(self):
        runner = uid("py-seen")
        with self.publisher(self.mon, runner, self.runner_keys, progress={"step": 1}) as hb:
            wait_until(lambda: self.admin.get_runner_status(runner) == "running",
                       what="the monitor to know the runner")
            r = self.reader.get(runner)
            self.assertEqual((r["state"], r["progress"]), ("running", {"step": 1}))
            self.assertGreaterEqual(self.reader.count(state="running"), 1)
            self.assertIn(runner, [x["runner_id"] for x in self.reader.iter_runners()])
            self.assertFalse(hb.refused)
        wait_until(lambda: self.reader.get_runner_status(runner) == "completed",
                   what="the runner's completion")

    def test_a_reader_may_read_but_not_remove_and_an_admin_may(self):
        runner = uid("py-rm")
        self.admin.add_runner(runner, "t-1", "local")
        self.assertEqual(self.reader.get_runner_status(runner), "running")
        with self.assertRaises(rmon.Forbidden) as cm:
            self.reader.remove(runner)
        self.assertIn("reader", cm.exception.detail)
        with self.assertRaises(rmon.Forbidden):
            self.reader.set_state(runner, "completed")
        self.assertEqual(self.reader.get_runner_status(runner), "running")
        self.assertTrue(self.admin.remove(runner))
        self.assertIsNone(self.reader.get_runner_status(runner))

    def test_each_group_receives_and_acks_a_lost_runners_event(self):
        runner = uid("py-lost")
        got = {"task-queue": [], "pool-manager": []}
        consumers = [
            rmon.TimeoutConsumer(group, self.mon.events(group), got[group].append,
                                 ack_endpoint=self.mon.ack, poll_ms=20, curve=keys)
            for group, keys in (("task-queue", self.tq_keys), ("pool-manager", self.pm_keys))
        ]
        for c in consumers:
            c.start()
            self.addCleanup(c.stop)
        hb = self.publisher(self.mon, runner, self.runner_keys, timeout_ms=300).start()
        wait_until(lambda: self.admin.get_runner_status(runner), what="the runner's first heartbeat")
        hb.close()  # it crashes: no terminal state

        for group in got:
            wait_until(lambda: any(e["runner_id"] == runner for e in got[group]),
                       what=f"the {group} group's event")
            wait_until(lambda: self.admin.stats()[f"pending_{group}"] == 0, what=f"the {group} ack")
        [ev] = [e for e in got["task-queue"] if e["runner_id"] == runner]
        self.assertEqual((ev["type"], ev["timeout_ms"]), ("runner_timeout", 300))
        self.assertEqual(self.admin.get_runner_status(runner), "failed")
        self.assertEqual([c.counters["refused"] for c in consumers], [0, 0])

    def test_a_consumer_key_on_another_groups_socket_is_refused_and_logged(self):
        with self.assertLogs("rmon", "WARNING") as logs:
            c = rmon.TimeoutConsumer("pool-manager", self.mon.events("pool-manager"), lambda e: None,
                                     ack_endpoint=self.mon.ack, poll_ms=20, curve=self.tq_keys)
            c.start()
            self.addCleanup(c.stop)
            wait_until(lambda: c.counters["refused"] >= 1, what="the refusal")
            c.stop()
        self.assertIn(f"key not enrolled: {self.tq_keys.public_key_text}", logs.output[0])

    def test_an_unenrolled_key_raises_not_enrolled_and_logs_its_public_key(self):
        stranger = self.keys.client(uid("stranger"), enrolled=False, role="admin")
        c = self.mon.client(stranger, timeout_ms=5000)
        start = time.monotonic()
        with self.assertLogs("rmon", "WARNING") as logs, self.assertRaises(rmon.NotEnrolled) as cm:
            c.ping()
        self.assertLess(time.monotonic() - start, 2.5, "NotEnrolled only came with the timeout")
        self.assertIn(f"key not enrolled: {stranger.public_key_text} ", logs.output[0])
        self.assertIn(stranger.public_key_text, str(cm.exception))

        runner = uid("py-stranger")
        forged = self.keys.client(uid("forged-runner"), enrolled=False, role="runner", runner_prefix="py-")
        with self.assertLogs("rmon", "WARNING") as logs:
            hb = self.publisher(self.mon, runner, forged).start()
            wait_until(lambda: hb.refused, what="the publisher to see its refusal")
            hb.close()
        self.assertIn(f"key not enrolled: {forged.public_key_text}", logs.output[0])
        self.assertIsNone(self.admin.get_runner_status(runner))

    def test_a_refused_client_recovers_when_its_key_is_enrolled(self):
        name = uid("late")
        late = self.keys.client(name, enrolled=False, role="admin")
        c = self.mon.client(late, timeout_ms=2000)
        with self.assertLogs("rmon", "WARNING"):
            self.assertFalse(answers(c))
        reloads = self.mon.metric("rmon_keyring_reloads_total")
        self.keys.enroll(name)
        try:
            wait_until(lambda: self.mon.metric("rmon_keyring_reloads_total") > reloads, timeout=3,
                       what="a keyring reload")
        except AssertionError:
            self.skipTest("the runner-monitor did not reload its clients directory within 3 s of a "
                          "change (PROTOCOL.md: keys are reloaded when the directory changes); "
                          "see test_a_refused_client_recovers_when_a_restarted_monitor_admits_it")
        with captured_logs():  # refused again until the backoff lets it try after the reload
            wait_until(lambda: answers(c), timeout=15, what="the client to get through")
        self.assertEqual(c.ping(), 1)


class CurveMonitorRestartTest(CurveTestCase):
    def test_a_refused_client_recovers_when_a_restarted_monitor_admits_it(self):
        root = tempfile.mkdtemp(prefix="rmon-py-keys-")
        self.addCleanup(shutil.rmtree, root, True)
        keys = testkeys.MonitorKeys(root)
        admin = keys.client("admin", role="admin")
        mon = CurveMonitor(keys.monitor_secret_file, keys.clients_dir, admin)
        self.addCleanup(mon.close)
        late_admin = keys.client("late-admin", enrolled=False, role="admin")
        late_runner = keys.client("late-runner", enrolled=False, role="runner", runner_prefix="")
        c = mon.client(late_admin, timeout_ms=2000)
        runner = uid("py-late")
        with self.assertLogs("rmon", "WARNING") as logs:
            self.assertFalse(answers(c))
            hb = self.publisher(mon, runner, late_runner).start()
            wait_until(lambda: hb.refused, what="the publisher to see its refusal")
            keys.enroll("late-admin")
            keys.enroll("late-runner")
            mon.restart()  # same ports; it reads the clients directory again
            # The same client and publisher objects get through by themselves.
            wait_until(lambda: answers(c), timeout=15, what="the client to get through")
            wait_until(lambda: mon.client(admin).get_runner_status(runner) == "running", timeout=15,
                       what="the publisher's heartbeats")
        self.assertIn(f"key not enrolled: {late_admin.public_key_text}", "\n".join(logs.output))
        self.assertIn(f"key not enrolled: {late_runner.public_key_text}", "\n".join(logs.output))
        self.assertFalse(hb.refused)
        self.assertEqual(mon.close(), 0)


class KeygenTest(CurveTestCase):
    """A stack's keys by rmon-keygen, read through the settings and environment."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if binary("keygen") is None:
            raise unittest.SkipTest("rmon-keygen not found: set RMON_KEYGEN_BIN")

    def keygen(self, *args):
        done = subprocess.run([binary("keygen")] + list(args), capture_output=True, text=True, timeout=30)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)

    def test_keygen_init_keys_from_the_environment_and_a_pyzmq_key_enrolled_with_public_from(self):
        root = tempfile.mkdtemp(prefix="rmon-py-keygen-")
        self.addCleanup(shutil.rmtree, root, True)
        self.keygen("init", os.path.join(root, "stack"))
        stack = os.path.join(root, "stack")
        servers = os.path.join(stack, "servers")

        def env(name):
            return {"RMON_CLIENT_SECURITY": "curve",
                    "RMON_CLIENT_CURVE_SECRET_FILE": os.path.join(stack, "clients", name + ".key_secret"),
                    "RMON_CLIENT_CURVE_SERVERS_DIR": servers}

        admin = rmon.CurveKeys.from_env("runner-monitor", environ=env("admin"))
        mon = CurveMonitor(os.path.join(stack, "runner-monitor", "runner-monitor.key_secret"),
                           os.path.join(stack, "runner-monitor", "clients"), admin)
        self.addCleanup(mon.close)
        self.assertEqual(mon.client(admin).ping(), 1)
        reader = mon.client(rmon.ClientSecurity.from_env(env("reader")).keys_for("runner-monitor"))
        with self.assertRaises(rmon.Forbidden):
            reader.remove("anyone")
        # The submitter's role may not use the monitor's control socket at all.
        submitter = mon.client(rmon.CurveKeys.from_env("runner-monitor", environ=env("submitter")))
        with self.assertLogs("rmon", "WARNING"), self.assertRaises(rmon.NotEnrolled):
            submitter.ping()

        # A runner key made by pyzmq, its public certificate by rmon-keygen --public-from.
        own = os.path.join(root, "own")
        testkeys.create(own, "py-agent", role="runner", runner_prefix="agent-")
        self.keygen("--public-from", os.path.join(own, "py-agent.key_secret"),
                    "--dir", os.path.join(root, "enrolled"), "py-agent")
        shutil.copy(os.path.join(root, "enrolled", "py-agent.key"),
                    os.path.join(stack, "runner-monitor", "clients", "py-agent.key"))
        public, _ = zmq.auth.load_certificate(os.path.join(root, "enrolled", "py-agent.key"))
        mon.restart()  # reads the clients directory (also for a monitor that does not reload on change)
        agent = rmon.CurveKeys.for_service(os.path.join(own, "py-agent.key_secret"), servers, "runner-monitor")
        self.assertEqual(agent.public_key, public)
        runner = uid("agent")
        with self.publisher(mon, runner, agent):
            wait_until(lambda: mon.client(admin).get_runner_status(runner) == "running",
                       what="the pyzmq key's heartbeats")



class CurveStackTest(CurveTestCase):
    """runner-monitor, task-queue and pool-manager with ``--security curve``,
    on keys by ``rmon-keygen init --runner-prefix py-``, one stack for the class."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        require("monitor", "task-queue", "pool-manager")
        if binary("keygen") is None:
            raise unittest.SkipTest("rmon-keygen not found: set RMON_KEYGEN_BIN")
        for name in ("task-queue", "pool-manager"):
            if not takes_curve(name):
                raise unittest.SkipTest(f"this {name} does not take --security curve")
        cls.root = tempfile.mkdtemp(prefix="rmon-py-stack-keys-")
        keys = os.path.join(cls.root, "keys")
        done = subprocess.run([binary("keygen"), "init", keys, "--runner-prefix", "py-"],
                              capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            shutil.rmtree(cls.root, ignore_errors=True)
            raise AssertionError(f"rmon-keygen init failed: {done.stdout}{done.stderr}")
        try:
            cls.stack = CurveStack(
                keys,
                monitor_args=["--redelivery-interval-ms", "200"],
                task_queue_args=["--backoff-base-ms", "50", "--backoff-cap-ms", "100",
                                 "--first-heartbeat-grace-ms", "20000"],
                pool_manager_args=["--first-heartbeat-grace-ms", "20000",
                                   "--pool", "life=local-process:2,lost=docker:2"],
            )
        except BaseException:
            shutil.rmtree(cls.root, ignore_errors=True)
            raise
        s = cls.stack
        cls.submitter = s.client("task-queue", "submitter")
        cls.runner_tq = s.client("task-queue", "runner")
        cls.runner_pm = s.client("pool-manager", "runner")
        cls.reader_tq = s.client("task-queue", "reader")
        cls.reader_pm = s.client("pool-manager", "reader")
        cls.admin = s.client("runner-monitor", "admin")
        cls.runner_keys = s.keys("runner", "runner-monitor")

    @classmethod
    def tearDownClass(cls):
        status = cls.stack.close()
        shutil.rmtree(cls.root, ignore_errors=True)
        bad = {n: st for n, st in status.items() if st != 0}
        if bad:
            raise AssertionError(f"services exited with {bad} after SIGTERM")

    def tearDown(self):
        dead = [n for n, up in self.stack.alive().items() if not up]
        self.assertEqual(dead, [], "a service exited during the test:\n" + self.stack.log_tails())

    def lease(self, runner_id, pool):
        return wait_until(lambda: self.runner_tq.lease(runner_id, pool=pool), what=f"a task in {pool}")

    def holders(self, pool):
        [p] = self.reader_pm.status(pool)
        return p["holders"]

    def test_a_runners_life(self):
        runner = uid("py-life")
        task_id, created = self.submitter.submit({"prompt": "hello"}, pool="life")
        self.assertTrue(created)
        task = self.lease(runner, "life")
        self.assertEqual((task["task_id"], task["attempt"]), (task_id, 1))
        slot = self.runner_pm.acquire("life", runner, task_id, 1)
        with self.publisher(self.stack.monitor, runner, self.runner_keys, task, "life", timeout_ms=5000):
            wait_until(lambda: self.admin.get_runner_status(runner) == "running",
                       what="the monitor to know the runner")
            self.assertEqual([(h["runner_id"], h["slot"]) for h in self.holders("life")], [(runner, slot)])
            self.runner_tq.complete(task_id, 1, result={"answer": 42})
        self.assertTrue(self.runner_pm.release(runner))
        done = self.reader_tq.get(task_id)
        self.assertEqual((done["state"], done["result"]), ("completed", {"answer": 42}))
        wait_until(lambda: self.admin.get_runner_status(runner) == "completed", what="the completion")

    def test_a_lost_runners_task_is_requeued_and_its_slot_released(self):
        runner = uid("py-lost")
        task_id, _ = self.submitter.submit("work", pool="lost", max_attempts=3)
        task = self.lease(runner, "lost")
        self.runner_pm.acquire("lost", runner, task_id, task["attempt"])
        hb = self.publisher(self.stack.monitor, runner, self.runner_keys, task, "lost", "docker",
                            timeout_ms=300).start()
        wait_until(lambda: self.admin.get_runner_status(runner), what="the first heartbeats")
        hb.close()  # it crashes
        # The timeout event reaches both services over CURVE, with their consumer keys.
        wait_until(lambda: self.reader_tq.get(task_id)["state"] == "queued", what="the task requeued")
        wait_until(lambda: self.holders("lost") == [], what="the slot released")
        with self.assertRaises(rmon.StaleAttempt):
            self.runner_tq.complete(task_id, 1)
        wait_until(lambda: self.admin.stats()["events_pending"] == 0, what="both groups to ack")

    def test_each_key_is_held_to_its_role(self):
        task_id, _ = self.submitter.submit("x", pool="life", delay_ms=600000)
        forbidden = {
            "a runner submitting": lambda: self.runner_tq.submit("x"),
            "a runner leasing for a runner id outside its prefix": lambda: self.runner_tq.lease("other-1"),
            "a runner acquiring for a runner id outside its prefix":
                lambda: self.runner_pm.acquire("life", "other-1", task_id, 1),
            "a reader cancelling": lambda: self.reader_tq.cancel(task_id),
            "a reader releasing": lambda: self.reader_pm.release("py-anyone"),
        }
        for what, call in forbidden.items():
            with self.subTest(what), self.assertRaises(rmon.Forbidden):
                call()
        self.assertEqual(self.reader_tq.get(task_id)["state"], "queued")
        # Roles an endpoint does not admit at all are refused at the handshake.
        for service, client in (("pool-manager", "submitter"), ("runner-monitor", "runner")):
            c = self.stack.client(service, client)
            with self.subTest(f"a {client} on the {service}"), captured_logs() as logs:
                with self.assertRaises(rmon.NotEnrolled):
                    c.ping()
                self.assertTrue(any(m.startswith("key not enrolled: ") for m in logs), logs)
        self.assertEqual(self.submitter.cancel(task_id), "cancelled")


if __name__ == "__main__":
    unittest.main()
