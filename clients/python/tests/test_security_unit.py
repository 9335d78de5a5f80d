"""CurveKeys and ClientSecurity (files, environment, flags), the new error codes,
and the refusal backoff and log limit, with no server at all."""

import argparse
import os
import shutil
import struct
import tempfile
import unittest

import zmq
import zmq.auth

import rmon
from rmon import _client_socket
from rmon._client_socket import LogLimit, Refusals, parse_event
from tests import keys as testkeys

ENV = {
    "RMON_CLIENT_SECURITY": "curve",
    "RMON_CLIENT_CURVE_SECRET_FILE": "",
    "RMON_CLIENT_CURVE_SERVERS_DIR": "",
}


def czmq_certificate(public: bytes, secret: bytes = None, **metadata) -> str:
    """A certificate as czmq's zcert (and rmon-keygen) writes it: quoted values."""
    text = "#   ****  Generated on 2026-12-06 10:00:00 UTC by rmon-keygen  ****\n\nmetadata\n"
    text += "".join(f'    {k} = "{v}"\n' for k, v in metadata.items())
    text += f'curve\n    public-key = "{public.decode()}"\n'
    if secret is not None:
        text += f'    secret-key = "{secret.decode()}"\n'
    return text


class KeysTestCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="rmon-py-keys-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.servers = os.path.join(self.dir, "servers")
        os.mkdir(self.servers)
        self.server_public_file, _ = testkeys.create(self.dir, "runner-monitor")
        shutil.copy(self.server_public_file, os.path.join(self.servers, "runner-monitor.key"))
        self.server_public, _ = zmq.auth.load_certificate(self.server_public_file)
        _, self.secret_file = testkeys.create(self.dir, "runner-1", role="runner", runner_prefix="py-")
        self.public, self.secret = zmq.auth.load_certificate(self.secret_file)

    def path(self, name, text, mode=0o600):
        p = os.path.join(self.dir, name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)
        return p


@unittest.skipUnless(rmon.curve_available(), "this libzmq has no CURVE")
class CurveKeysTest(KeysTestCase):
    def test_load_reads_pyzmq_certificates(self):
        k = rmon.CurveKeys.load(self.secret_file, self.server_public_file)
        self.assertEqual((k.public_key, k.secret_key, k.server_key), (self.public, self.secret, self.server_public))
        self.assertEqual(k.public_key_text, self.public.decode())
        self.assertNotIn(self.secret.decode(), repr(k))
        self.assertIn(self.public.decode(), repr(k))

    def test_load_reads_czmq_certificates_with_quoted_metadata(self):
        pub, sec = zmq.curve_keypair()
        secret_file = self.path("c.key_secret", czmq_certificate(pub, sec, role="reader"))
        server_file = self.path("s.key", czmq_certificate(self.server_public), 0o644)
        k = rmon.CurveKeys.load(secret_file, server_file)
        self.assertEqual((k.public_key, k.secret_key, k.server_key), (pub, sec, self.server_public))

    def test_for_service_reads_the_servers_folder(self):
        k = rmon.CurveKeys.for_service(self.secret_file, self.servers, "runner-monitor")
        self.assertEqual(k.server_key, self.server_public)
        with self.assertRaises(FileNotFoundError) as cm:
            rmon.CurveKeys.for_service(self.secret_file, self.servers, "task-queue")
        self.assertIn(os.path.join(self.servers, "task-queue.key"), str(cm.exception))
        for bad in ("", "..", "a/b", None, 7):
            with self.subTest(service=bad), self.assertRaises(ValueError):
                rmon.CurveKeys.for_service(self.secret_file, self.servers, bad)

    def test_load_errors_name_the_file(self):
        missing = os.path.join(self.dir, "nope.key_secret")
        with self.assertRaises(FileNotFoundError) as cm:
            rmon.CurveKeys.load(missing, self.server_public_file)
        self.assertIn(missing, str(cm.exception))

        # A public certificate where the secret one belongs.
        with self.assertRaises(ValueError) as cm:
            rmon.CurveKeys.load(self.server_public_file, self.server_public_file)
        self.assertIn(self.server_public_file, str(cm.exception))
        self.assertIn("no secret-key", str(cm.exception))

        other_pub, _ = zmq.curve_keypair()
        mismatched = self.path("mismatch.key_secret", czmq_certificate(other_pub, self.secret))
        with self.assertRaisesRegex(ValueError, "does not belong"):
            rmon.CurveKeys.load(mismatched, self.server_public_file)

        short = self.path("short.key", czmq_certificate(b"tooshort"), 0o644)
        with self.assertRaisesRegex(ValueError, "short.key: public-key is not a 40-character"):
            rmon.CurveKeys.load(self.secret_file, short)
        empty = self.path("empty.key", "metadata\ncurve\n", 0o644)
        with self.assertRaisesRegex(ValueError, "empty.key"):
            rmon.CurveKeys.load(self.secret_file, empty)
        missing_server = os.path.join(self.dir, "servers", "nobody.key")
        with self.assertRaises(FileNotFoundError) as cm:
            rmon.CurveKeys.load(self.secret_file, missing_server)
        self.assertIn(missing_server, str(cm.exception))

    def test_a_secret_file_readable_by_others_is_warned_about(self):
        os.chmod(self.secret_file, 0o644)
        with self.assertLogs("rmon", "WARNING") as logs:
            rmon.CurveKeys.load(self.secret_file, self.server_public_file)
        self.assertIn(f"{self.secret_file}: secret key file has mode 0644", logs.output[0])
        os.chmod(self.secret_file, 0o600)
        with self.assertRaises(AssertionError):  # assertNoLogs needs Python 3.10
            with self.assertLogs("rmon", "WARNING"):
                rmon.CurveKeys.load(self.secret_file, self.server_public_file)

    def test_constructed_keys_are_checked(self):
        pub, sec = zmq.curve_keypair()
        srv, _ = zmq.curve_keypair()
        rmon.CurveKeys(pub, sec, srv)
        for args in ((pub.decode(), sec, srv), (pub, sec, b" " * 40), (pub, sec, srv[:39]), (srv, sec, srv)):
            with self.assertRaises(ValueError):
                rmon.CurveKeys(*args)

    def test_apply_sets_the_client_options(self):
        k = rmon.CurveKeys.load(self.secret_file, self.server_public_file)
        ctx = zmq.Context()
        s = ctx.socket(zmq.DEALER)
        try:
            k.apply(s)
            self.assertEqual(s.getsockopt(zmq.MECHANISM), zmq.CURVE)
            self.assertEqual(s.getsockopt(zmq.CURVE_SERVER), 0)
        finally:
            s.close(0)
            ctx.term()

    def test_clients_refuse_what_is_not_curve_keys(self):
        for make in (
            lambda: rmon.TaskQueueClient(curve="secret"),
            lambda: rmon.HeartbeatPublisher(None, "r", "t", "p", "docker", curve=("a", "b")),
            lambda: rmon.TimeoutConsumer("g", "tcp://127.0.0.1:1", print, curve=object()),
        ):
            with self.assertRaises(ValueError):
                make()

    def test_service_names_of_the_clients(self):
        self.assertEqual(rmon.RunnerMonitorClient.SERVICE, "runner-monitor")
        self.assertEqual(rmon.HeartbeatPublisher.SERVICE, "runner-monitor")
        self.assertEqual(rmon.TimeoutConsumer.SERVICE, "runner-monitor")
        self.assertEqual(rmon.TaskQueueClient.SERVICE, "task-queue")
        self.assertEqual(rmon.PoolManagerClient.SERVICE, "pool-manager")
        self.assertEqual(rmon.SERVICES, ("runner-monitor", "task-queue", "pool-manager"))


@unittest.skipUnless(rmon.curve_available(), "this libzmq has no CURVE")
class SettingsTest(KeysTestCase):
    def env(self, **over):
        e = dict(ENV, RMON_CLIENT_CURVE_SECRET_FILE=self.secret_file, RMON_CLIENT_CURVE_SERVERS_DIR=self.servers)
        e.update(over)
        return {k: v for k, v in e.items() if v is not None}

    def test_from_env_off_is_none(self):
        for env in ({}, {"RMON_CLIENT_SECURITY": ""}, {"RMON_CLIENT_SECURITY": "off"},
                    self.env(RMON_CLIENT_SECURITY="off")):
            with self.subTest(env=env):
                self.assertIsNone(rmon.CurveKeys.from_env("runner-monitor", environ=env))
                self.assertFalse(rmon.ClientSecurity.from_env(env).curve)

    def test_from_env_curve_loads_the_services_key(self):
        k = rmon.CurveKeys.from_env("runner-monitor", environ=self.env())
        self.assertEqual((k.public_key, k.server_key), (self.public, self.server_public))
        s = rmon.ClientSecurity.from_env(self.env())
        self.assertEqual(s, rmon.ClientSecurity("curve", self.secret_file, self.servers))

    def test_from_env_errors_name_the_variable(self):
        cases = {
            "RMON_CLIENT_SECURITY must be off or curve": self.env(RMON_CLIENT_SECURITY="CURVE"),
            "needs RMON_CLIENT_CURVE_SECRET_FILE": self.env(RMON_CLIENT_CURVE_SECRET_FILE=None),
            "needs RMON_CLIENT_CURVE_SERVERS_DIR": self.env(RMON_CLIENT_CURVE_SERVERS_DIR=""),
        }
        for message, env in cases.items():
            with self.subTest(message=message), self.assertRaisesRegex(ValueError, message):
                rmon.CurveKeys.from_env("runner-monitor", environ=env)

    def test_from_env_with_a_prefix_of_the_callers_own(self):
        env = {"MY_SECURITY": "curve", "MY_CURVE_SECRET_FILE": self.secret_file,
               "MY_CURVE_SERVERS_DIR": self.servers, "RMON_CLIENT_SECURITY": "bogus"}
        k = rmon.CurveKeys.from_env("runner-monitor", environ=env, prefix="MY_")
        self.assertEqual(k.public_key, self.public)

    def test_the_services_own_variables_are_not_read(self):
        # RMON_CURVE_SECRET_FILE is a service's own secret (runner-monitor --help).
        env = {"RMON_SECURITY": "curve", "RMON_CURVE_SECRET_FILE": self.secret_file,
               "RMON_CURVE_SERVERS_DIR": self.servers}
        self.assertIsNone(rmon.CurveKeys.from_env("runner-monitor", environ=env))

    def test_from_os_environ(self):
        saved = {k: os.environ.get(k) for k in ENV}
        self.addCleanup(lambda: [os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
                                 for k, v in saved.items()])
        os.environ.update(self.env())
        self.assertEqual(rmon.CurveKeys.from_env("runner-monitor").public_key, self.public)

    def test_validate(self):
        rmon.ClientSecurity().validate()
        rmon.ClientSecurity("off", None, None).validate()
        for bad in (rmon.ClientSecurity("on"), rmon.ClientSecurity("curve", None, self.servers),
                    rmon.ClientSecurity("curve", self.secret_file, None)):
            with self.subTest(settings=bad), self.assertRaises(ValueError):
                bad.validate()
        self.assertIsNone(rmon.ClientSecurity().keys_for("runner-monitor"))

    def test_flags_with_defaults_from_the_environment(self):
        parser = argparse.ArgumentParser()
        rmon.ClientSecurity.add_arguments(parser, environ=self.env())
        s = rmon.ClientSecurity.from_args(parser.parse_args([]))
        self.assertEqual(s, rmon.ClientSecurity("curve", self.secret_file, self.servers))
        s = rmon.ClientSecurity.from_args(parser.parse_args(["--security", "off"]))
        self.assertIsNone(s.keys_for("runner-monitor"))

        parser = argparse.ArgumentParser()
        rmon.ClientSecurity.add_arguments(parser, environ={})
        args = parser.parse_args(["--security", "curve", "--curve-secret-file", self.secret_file,
                                  "--curve-servers-dir", self.servers])
        k = rmon.ClientSecurity.from_args(args).keys_for("runner-monitor")
        self.assertEqual(k.server_key, self.server_public)
        with self.assertRaises(ValueError):
            rmon.ClientSecurity.from_args(parser.parse_args(["--security", "curve"]))


class ErrorsTest(unittest.TestCase):
    def test_forbidden_reply_maps_to_forbidden(self):
        with self.assertRaises(rmon.Forbidden) as cm:
            rmon._rpc.parse_reply(
                rmon._codec.encode({"ok": False, "error": "forbidden", "detail": 'reader (reader) may not "remove"'})
            )
        self.assertEqual(cm.exception.code, "forbidden")
        self.assertIn("reader", cm.exception.detail)
        self.assertIsInstance(cm.exception, rmon.RmonError)

    def test_not_enrolled_is_an_rmon_error(self):
        e = rmon.NotEnrolled("refused")
        self.assertIsInstance(e, rmon.RmonError)
        self.assertEqual(e.code, "not_enrolled")
        self.assertEqual(str(e), "not_enrolled: refused")


class RefusalsTest(unittest.TestCase):
    """The backoff table in rmon/_client_socket.py, one row at a time."""

    def test_backoff_doubles_from_100_ms_to_5_s(self):
        r = Refusals()
        now = 1000.0
        delays = [r.refuse(now) for _ in range(9)]
        self.assertEqual(delays, [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0])
        self.assertTrue(r.refused)
        self.assertEqual(r.count, 9)

    def test_refusal_schedules_the_replacement(self):
        r = Refusals()
        self.assertFalse(r.due(0.0))
        self.assertIsNone(r.retry_in(0.0))
        r.refuse(10.0)
        self.assertTrue(r.waiting(10.05))
        self.assertFalse(r.due(10.05))
        self.assertAlmostEqual(r.retry_in(10.05), 0.05)
        self.assertTrue(r.due(10.1))
        self.assertEqual(r.retry_in(11.0), 0.0)

    def test_replacement_done_leaves_refused_until_a_success(self):
        r = Refusals()
        r.refuse(0.0)
        r.reopened()
        self.assertFalse(r.due(100.0))
        self.assertIsNone(r.retry_in(100.0))
        self.assertTrue(r.refused)

    def test_success_resets(self):
        r = Refusals()
        for _ in range(4):
            r.refuse(0.0)
        r.succeeded()
        self.assertFalse(r.refused)
        self.assertIsNone(r.reopen_at)
        self.assertEqual(r.refuse(0.0), 0.1)


class LogLimitTest(unittest.TestCase):
    def test_burst_then_suppressed_then_counted(self):
        limit = LogLimit(burst=2, window=10.0)
        self.assertEqual(limit.allow("k", 0.0), (True, 0))
        self.assertEqual(limit.allow("k", 1.0), (True, 0))
        self.assertEqual(limit.allow("k", 2.0), (False, 0))
        self.assertEqual(limit.allow("k", 3.0), (False, 0))
        self.assertEqual(limit.allow("other", 3.0), (True, 0))  # per key
        self.assertEqual(limit.allow("k", 10.0), (True, 2))  # a new window says what it dropped
        self.assertEqual(limit.allow("k", 11.0), (True, 0))


class MonitorEventTest(unittest.TestCase):
    def test_parse_event(self):
        frame = struct.pack("=HI", zmq.EVENT_HANDSHAKE_FAILED_AUTH, 400)
        self.assertEqual(parse_event([frame, b"tcp://127.0.0.1:5559"]),
                         (_client_socket.EVENT_FAILED_AUTH, 400, "tcp://127.0.0.1:5559"))
        self.assertIsNone(parse_event([frame]))
        self.assertIsNone(parse_event([b"abc", b""]))

    def test_event_values_are_libzmqs(self):
        self.assertEqual(_client_socket.EVENT_SUCCEEDED, zmq.EVENT_HANDSHAKE_SUCCEEDED)
        self.assertEqual(_client_socket.EVENT_FAILED_AUTH, zmq.EVENT_HANDSHAKE_FAILED_AUTH)
        self.assertEqual(_client_socket.EVENT_FAILED_PROTOCOL, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL)
        self.assertEqual(_client_socket.EVENT_FAILED_NO_DETAIL, zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)


if __name__ == "__main__":
    unittest.main()
