"""The clients against in-process CURVE servers (pyzmq's own ZAP handler,
``zmq.auth.thread.ThreadAuthenticator``, admitting the keys of a folder), on
tcp://127.0.0.1 ports the servers pick: a refused key raises NotEnrolled at
once and logs its public key, recovers once enrolled, and never holds the
context's termination. No service executables needed."""

import logging
import os
import shutil
import tempfile
import threading
import time
import unittest

import msgpack
import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

import rmon
from tests import keys as testkeys
from tests.stack import wait_until

logging.getLogger("zmq.auth").setLevel(logging.CRITICAL)  # it logs every refusal at DEBUG..ERROR


def event(runner_id, event_id):
    return msgpack.packb(
        {"v": 1, "type": "runner_timeout", "event_id": event_id, "runner_id": runner_id,
         "task_id": "t-1", "attempt": 1, "pool": "local", "pool_type": "local-process",
         "last_seq": 3, "last_heartbeat_ms": 1, "detected_at_ms": 2, "timeout_ms": 300, "delivery": 1},
        use_bin_type=True,
    )


class RecordingSocket(zmq.Socket):
    def close(self, linger=None):
        if not self.closed:
            effective = linger if linger is not None else self.getsockopt(zmq.LINGER)
            with self.context.lock:
                self.context.closed_with.append((self.type, effective))
        super().close(linger)


class RecordingContext(zmq.Context):
    """Remembers the linger every socket was closed with (on its own thread)."""

    _socket_class = RecordingSocket
    lock = None  # declared here: pyzmq takes unknown attributes for options
    closed_with = None

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()
        self.closed_with = []


class CurveServer:
    """CURVE server sockets in a context of their own, with a ZAP handler that
    admits the public keys in ``self.clients_dir`` (re-read on enroll())."""

    def __init__(self):
        self.ctx = zmq.Context()
        self.dir = tempfile.mkdtemp(prefix="rmon-py-curve-")
        self.clients_dir = os.path.join(self.dir, "clients")
        os.mkdir(self.clients_dir)
        self.servers_dir = os.path.join(self.dir, "servers")
        os.mkdir(self.servers_dir)
        public_file, secret_file = testkeys.create(self.dir, "server")
        shutil.copy(public_file, os.path.join(self.servers_dir, "runner-monitor.key"))
        self.public, self.secret = zmq.auth.load_certificate(secret_file)
        self.auth = ThreadAuthenticator(self.ctx)
        self.auth.start()
        self.auth.configure_curve(domain="*", location=self.clients_dir)
        self.sockets = []
        self.stop = threading.Event()
        self.threads = []

    def bind(self, kind):
        s = self.ctx.socket(kind)
        s.curve_server = True
        s.curve_secretkey = self.secret
        s.linger = 0
        s.bind("tcp://127.0.0.1:*")
        self.sockets.append(s)
        return s, s.getsockopt_string(zmq.LAST_ENDPOINT)

    def client_keys(self, name):
        _, secret_file = testkeys.create(os.path.join(self.dir, "own"), name, role="admin")
        return rmon.CurveKeys.for_service(secret_file, self.servers_dir, "runner-monitor")

    def enroll(self, keys, name):
        testkeys.write_public(os.path.join(self.clients_dir, name + ".key"), keys.public_key, {"role": "admin"})
        self.auth.configure_curve(domain="*", location=self.clients_dir)

    def serve(self, sock, handle):
        """Runs ``handle(sock)`` whenever ``sock`` is readable, on a thread of its own."""
        def loop():
            while not self.stop.is_set():
                if sock.poll(20):
                    handle(sock)
        t = threading.Thread(target=loop, daemon=True)
        t.start()
        self.threads.append(t)

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join()
        for s in self.sockets:
            s.close(0)
        self.auth.stop()
        self.ctx.term()
        shutil.rmtree(self.dir, ignore_errors=True)


class CurveClientsTest(unittest.TestCase):
    def setUp(self):
        if not rmon.curve_available():
            self.skipTest("this libzmq has no CURVE")
        self.server = CurveServer()
        self.addCleanup(self.server.close)
        self.ctx = RecordingContext()  # the clients'; terminated by each test's cleanup
        self.addCleanup(self.term_context)

    def term_context(self):
        t = threading.Thread(target=self.ctx.term, daemon=True)
        t.start()
        t.join(5)
        self.assertFalse(t.is_alive(), "zmq_ctx_term hung: a socket kept queued messages")

    def router(self):
        """A ROUTER answering every request ``{ok: true, version: 1, op}``; returns its endpoint."""
        self.requests = []
        sock, endpoint = self.server.bind(zmq.ROUTER)

        def answer(s):
            frames = s.recv_multipart()
            req = msgpack.unpackb(frames[-1], raw=False)
            self.requests.append(req)
            if req["op"] == "remove":
                reply = {"ok": False, "error": "forbidden", "detail": 'reader (reader) may not "remove"'}
            else:
                reply = {"ok": True, "version": 1}
            s.send_multipart(frames[:-1] + [msgpack.packb(reply)])

        self.server.serve(sock, answer)
        return endpoint

    def client(self, endpoint, keys, timeout_ms=3000):
        c = rmon.RunnerMonitorClient(endpoint, timeout_ms=timeout_ms, context=self.ctx, curve=keys)
        self.addCleanup(c.close)
        return c

    def test_an_enrolled_key_is_answered(self):
        keys = self.server.client_keys("admin")
        self.server.enroll(keys, "admin")
        c = self.client(self.router(), keys)
        self.assertEqual(c.ping(), 1)
        with self.assertRaises(rmon.Forbidden):
            c.remove("r-1")
        self.assertIn(keys.public_key_text, repr(c))

    def test_a_refused_key_raises_not_enrolled_at_once_and_logs_its_public_key(self):
        keys = self.server.client_keys("stranger")
        c = self.client(self.router(), keys, timeout_ms=5000)
        start = time.monotonic()
        with self.assertLogs("rmon", "WARNING") as logs, self.assertRaises(rmon.NotEnrolled) as cm:
            c.ping()
        self.assertLess(time.monotonic() - start, 2.5, "NotEnrolled only came with the timeout")
        self.assertIn(f"key not enrolled: {keys.public_key_text} ", logs.output[0])
        self.assertIn("status=400", logs.output[0])
        self.assertIn(keys.public_key_text, cm.exception.detail)
        # Within the backoff a request fails at once and sends nothing.
        with self.assertRaises(rmon.NotEnrolled):
            c.ping()
        self.assertEqual(self.requests, [])

    def test_a_refused_client_recovers_once_its_key_is_enrolled(self):
        keys = self.server.client_keys("later")
        c = self.client(self.router(), keys, timeout_ms=2000)
        with self.assertLogs("rmon", "WARNING"), self.assertRaises(rmon.NotEnrolled):
            c.ping()
        self.server.enroll(keys, "later")

        def answered():
            try:
                return c.ping() == 1
            except rmon.NotEnrolled:
                return False

        wait_until(answered, timeout=15, what="the client to get through once enrolled")
        self.assertEqual([r["op"] for r in self.requests], ["ping"])

    def test_a_plain_client_of_a_curve_server_times_out(self):
        # No handshake event says "refused" to a NULL client: it only times out.
        c = rmon.RunnerMonitorClient(self.router(), timeout_ms=200, context=self.ctx)
        self.addCleanup(c.close)
        with self.assertRaises(rmon.TimeoutError):
            c.ping()

    def test_heartbeats_resume_once_the_runners_key_is_enrolled(self):
        sub, endpoint = self.server.bind(zmq.SUB)
        sub.subscribe(b"hb/")
        received = []
        self.server.serve(sub, lambda s: received.append(s.recv_multipart()))
        keys = self.server.client_keys("runner")
        with self.assertLogs("rmon", "WARNING") as logs:
            hb = rmon.HeartbeatPublisher(endpoint, "py-1", "t-1", "local", "local-process",
                                         interval_ms=20, context=self.ctx, curve=keys)
            self.addCleanup(hb.close)
            hb.start()
            wait_until(lambda: hb.refused, what="the publisher to see its refusal")
        self.assertIn(f"key not enrolled: {keys.public_key_text}", logs.output[0])
        self.assertEqual(received, [])

        self.server.enroll(keys, "runner")
        wait_until(lambda: received, timeout=15, what="a heartbeat once enrolled")
        self.assertEqual(received[0][0], b"hb/py-1")
        wait_until(lambda: not hb.refused, what="the publisher to see its handshake succeed")
        self.assertTrue(hb.complete())

    def test_a_consumer_recovers_once_its_key_is_enrolled_and_acks(self):
        push, events_endpoint = self.server.bind(zmq.PUSH)
        pull, ack_endpoint = self.server.bind(zmq.PULL)
        acks = []
        self.server.serve(pull, lambda s: acks.append(msgpack.unpackb(s.recv(), raw=False)))
        keys = self.server.client_keys("consumer")
        handled = []
        consumer = rmon.TimeoutConsumer("task-queue", events_endpoint, handled.append,
                                        ack_endpoint=ack_endpoint, poll_ms=20, context=self.ctx, curve=keys)
        with self.assertLogs("rmon", "WARNING") as logs:
            consumer.start()
            self.addCleanup(consumer.stop)
            wait_until(lambda: consumer.counters["refused"] >= 2, what="both sockets refused")
        self.assertIn(f"key not enrolled: {keys.public_key_text}", logs.output[0])

        self.server.enroll(keys, "consumer")

        def sent():  # the server's PUSH takes the event once the consumer is connected
            try:
                push.send(event("py-lost", "ev-1"), zmq.NOBLOCK)
                return True
            except zmq.Again:
                return False

        wait_until(sent, timeout=15, what="the consumer to connect once enrolled")
        wait_until(lambda: acks, timeout=15, what="the ack")
        self.assertEqual([e["event_id"] for e in handled], ["ev-1"])
        self.assertEqual(acks, [{"v": 1, "type": "ack", "group": "task-queue", "event_id": "ev-1"}])
        consumer.stop()

    def test_closing_refused_clients_never_holds_the_context(self):
        # Refused sockets holding queued messages (the DEALER its request, the
        # PUB its terminal repeats): with libzmq's default linger, zmq_ctx_term
        # would wait for them for ever. term_context (cleanup) checks it ends.
        keys = self.server.client_keys("queued")
        _, hb_endpoint = self.server.bind(zmq.SUB)
        _, events_endpoint = self.server.bind(zmq.PUSH)
        _, ack_endpoint = self.server.bind(zmq.PULL)
        with self.assertLogs("rmon", "WARNING"):
            c = self.client(self.router(), keys)
            with self.assertRaises(rmon.NotEnrolled):
                c.ping()
            hb = rmon.HeartbeatPublisher(hb_endpoint, "py-2", "t-1", "local", "local-process",
                                         interval_ms=20, context=self.ctx, curve=keys)
            self.addCleanup(hb.close)
            consumer = rmon.TimeoutConsumer("g", events_endpoint, lambda e: None,
                                            ack_endpoint=ack_endpoint, poll_ms=20, context=self.ctx,
                                            curve=keys)
            self.addCleanup(consumer.stop)
            hb.start()
            consumer.start()
            wait_until(lambda: hb.refused and consumer.counters["refused"] >= 2, what="refusals")
            hb.fail()
            hb.close()
            consumer.stop()
            c.close()
        # Whatever the timing, no socket of theirs could hold the context.
        kinds = {kind for kind, _ in self.ctx.closed_with}
        self.assertLessEqual({zmq.DEALER, zmq.PUB, zmq.PULL, zmq.PUSH, zmq.PAIR}, kinds)
        self.assertEqual([(k, l) for k, l in self.ctx.closed_with if l < 0], [])

if __name__ == "__main__":
    unittest.main()
