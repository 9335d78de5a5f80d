"""Starts the real services (runner-monitor, task-queue, pool-manager) as child processes.

Their executables come from RMON_MONITOR_BIN, RMON_TASK_QUEUE_BIN and
RMON_POOL_MANAGER_BIN (ctest sets them from the build tree). Every endpoint is
an ipc:// socket in a fresh temporary folder, every data folder too, and
metrics are off, so stacks never collide with each other or with a running
system. Readiness is a successful ``ping`` within a deadline.

:class:`CurveMonitor` is a runner-monitor with ``--security curve`` on
``tcp://127.0.0.1`` ports it picks itself (read back from its start line).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import rmon

ENV_BINS = {
    "monitor": "RMON_MONITOR_BIN",
    "task-queue": "RMON_TASK_QUEUE_BIN",
    "pool-manager": "RMON_POOL_MANAGER_BIN",
    "keygen": "RMON_KEYGEN_BIN",
}


def binary(name: str) -> Optional[str]:
    path = os.environ.get(ENV_BINS[name], "")
    if not path and name == "keygen" and binary("monitor"):
        # ctest sets no RMON_KEYGEN_BIN: the build tree's tools/rmon-keygen,
        # beside services/runner-monitor/runner-monitor.
        build = os.path.dirname(os.path.dirname(os.path.dirname(binary("monitor"))))
        path = os.path.join(build, "tools", "rmon-keygen")
    return path if path and os.access(path, os.X_OK) else None


def require(*names: str) -> None:
    """Skips the calling test class unless every named executable is configured."""
    missing = [ENV_BINS[n] for n in names if binary(n) is None]
    if missing:
        raise unittest.SkipTest(
            "integration tests need the service executables: set "
            + ", ".join(missing)
            + " (ctest -R python sets them from the build tree)"
        )


def wait_until(pred: Callable[[], object], timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    """Polls ``pred`` until it returns a truthy value (returned) or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Stack:
    """The monitor and, optionally, task-queue and pool-manager, wired over ipc://."""

    def __init__(
        self,
        services=("monitor", "task-queue", "pool-manager"),
        groups=("task-queue", "pool-manager"),
        monitor_args: Optional[List[str]] = None,
        task_queue_args: Optional[List[str]] = None,
        pool_manager_args: Optional[List[str]] = None,
    ) -> None:
        self.dir = tempfile.mkdtemp(prefix="rmon-py-")
        d = self.dir
        self.heartbeat = f"ipc://{d}/hb"
        self.control = f"ipc://{d}/control"
        self.acks = f"ipc://{d}/acks"
        self.group_endpoints: Dict[str, str] = {g: f"ipc://{d}/events-{g}" for g in groups}
        self.task_queue = f"ipc://{d}/task-queue"
        self.pool_manager = f"ipc://{d}/pool-manager"
        self.procs: Dict[str, subprocess.Popen] = {}
        self.logs: Dict[str, str] = {}
        self._clients: List[rmon._rpc.RpcClient] = []
        try:
            if "monitor" in services:
                self._spawn(
                    "monitor",
                    [
                        "--heartbeat-endpoint", self.heartbeat,
                        "--group", ",".join(f"{g}={e}" for g, e in self.group_endpoints.items()),
                        "--ack-endpoint", self.acks,
                        "--control-endpoint", self.control,
                        "--metrics-address", "",
                        "--instance", "pytest",
                        "--data-dir", os.path.join(d, "data-runner-monitor"),
                    ]
                    + (monitor_args or []),
                )
            for name, api, extra in (
                ("task-queue", self.task_queue, task_queue_args),
                ("pool-manager", self.pool_manager, pool_manager_args),
            ):
                if name in services:
                    data = os.path.join(d, f"data-{name}")
                    os.mkdir(data)
                    self._spawn(
                        name,
                        [
                            "--api-endpoint", api,
                            "--events-endpoint", self.group_endpoints[name],
                            "--ack-endpoint", self.acks,
                            "--monitor-endpoint", self.control,
                            "--data-dir", data,
                            "--metrics-address", "",
                        ]
                        + (extra or []),
                    )
            self._wait_ready(services)
        except BaseException:
            self.close()
            raise

    # -- clients ---------------------------------------------------------------
    def _client(self, c):
        self._clients.append(c)
        return c

    def monitor_client(self, timeout_ms: int = 3000) -> rmon.RunnerMonitorClient:
        return self._client(rmon.RunnerMonitorClient(self.control, timeout_ms=timeout_ms))

    def task_queue_client(self, timeout_ms: int = 3000) -> rmon.TaskQueueClient:
        return self._client(rmon.TaskQueueClient(self.task_queue, timeout_ms=timeout_ms))

    def pool_manager_client(self, timeout_ms: int = 3000) -> rmon.PoolManagerClient:
        return self._client(rmon.PoolManagerClient(self.pool_manager, timeout_ms=timeout_ms))

    # -- processes -------------------------------------------------------------
    def _spawn(self, name: str, args: List[str]) -> None:
        log_path = os.path.join(self.dir, f"{name}.log")
        self.logs[name] = log_path
        with open(log_path, "wb") as log:
            self.procs[name] = subprocess.Popen(
                [binary(name)] + args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )

    def _wait_ready(self, services, timeout: float = 15.0) -> None:
        probes = {
            "monitor": lambda: rmon.RunnerMonitorClient(self.control, timeout_ms=200),
            "task-queue": lambda: rmon.TaskQueueClient(self.task_queue, timeout_ms=200),
            "pool-manager": lambda: rmon.PoolManagerClient(self.pool_manager, timeout_ms=200),
        }
        deadline = time.monotonic() + timeout
        for name in services:
            client = probes[name]()
            try:
                while True:
                    if self.procs[name].poll() is not None:
                        raise RuntimeError(
                            f"{name} exited with status {self.procs[name].returncode}:\n{self.log_tail(name)}"
                        )
                    try:
                        client.ping()
                        break
                    except rmon.TimeoutError:
                        if time.monotonic() >= deadline:
                            raise RuntimeError(f"{name} did not answer ping within {timeout} s:\n{self.log_tail(name)}")
                    except rmon.UnknownOp:
                        break  # it answers, though without `ping` (see ServicesTest.test_ping)
            finally:
                client.close()

    def log_tail(self, name: str, lines: int = 30) -> str:
        try:
            with open(self.logs[name], "r", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"

    def alive(self) -> Dict[str, Optional[int]]:
        return {n: p.poll() for n, p in self.procs.items()}

    def close(self) -> Dict[str, Optional[int]]:
        """Stops every process (SIGTERM, then SIGKILL after 10 s); returns their exit statuses."""
        for c in self._clients:
            c.close()
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        status: Dict[str, Optional[int]] = {}
        for name, p in self.procs.items():
            try:
                status[name] = p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                status[name] = p.wait()
        if os.environ.get("RMON_KEEP_TEST_DIR"):
            print(f"stack folder kept: {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        return status



@contextlib.contextmanager
def captured_logs(name: str = "rmon") -> Iterator[List[str]]:
    """Collects a logger's messages (none is fine, unlike assertLogs) and
    keeps them off stderr: ``with captured_logs() as messages: ...``."""
    logger = logging.getLogger(name)
    messages: List[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = Collect(logging.DEBUG)
    saved = (logger.propagate, logger.level)
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        logger.propagate, level = saved
        logger.setLevel(level)


class ChildService:
    """One service executable as a child process, logging to ``log_path``.

    :meth:`start` waits for its start line (``started_re``, searched in what
    this start logged) and returns the match. Stops with SIGTERM (SIGKILL
    after 10 s).
    """

    def __init__(self, name: str, log_path: str) -> None:
        self.name = name
        self.log_path = log_path
        self.proc: Optional[subprocess.Popen] = None

    def start(self, args: Sequence[str], started_re: str, timeout: float = 15.0) -> "re.Match[str]":
        offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [binary(self.name)] + list(args), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )

        def started():
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with status {self.proc.returncode}:\n{self.log_tail()}")
            with open(self.log_path, "r", errors="replace") as f:
                f.seek(offset)
                return re.search(started_re, f.read())

        try:
            return wait_until(started, timeout, what=f"{self.name}'s start line")
        except AssertionError as e:
            raise RuntimeError(f"{e}:\n{self.log_tail()}") from None

    def stop(self) -> Optional[int]:
        p, self.proc = self.proc, None
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            return p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            return p.wait()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"


def wait_answers(client: "rmon._rpc.RpcClient", timeout: float = 15.0, what: str = "ping") -> None:
    """Pings until answered (a service just started)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return
        except rmon.TimeoutError:
            if time.monotonic() >= deadline:
                raise RuntimeError(f"no answer to {what} within {timeout} s") from None


class CurveMonitor:
    """A runner-monitor child process with ``--security curve``.

    Every socket binds ``tcp://127.0.0.1:*`` (and with ``metrics``, /metrics
    ``127.0.0.1:0``: off by default, as serving it makes every stop take 2 s);
    the ports it got are read back from its start line (and its ``consumer
    group`` lines). :meth:`restart` starts it again on those same ports and
    data folder. Ready when an admin's ``ping`` is answered.
    """

    STARTED = r"runner-monitor started heartbeat=(\S+) ack=(\S+) control=(\S+) metrics_port=(\d+)"

    def __init__(
        self,
        secret_file: str,
        clients_dir: str,
        admin: "rmon.CurveKeys",
        groups: Sequence[str] = ("task-queue", "pool-manager"),
        args: Sequence[str] = (),
        metrics: bool = False,
    ) -> None:
        self.dir = tempfile.mkdtemp(prefix="rmon-py-curve-")
        self.secret_file = secret_file
        self.clients_dir = clients_dir
        self.admin_keys = admin
        self.groups = tuple(groups)
        self.args = list(args)
        self.child = ChildService("monitor", os.path.join(self.dir, "runner-monitor.log"))
        self._clients: List[rmon._rpc.RpcClient] = []
        self._endpoints = {
            "heartbeat": "tcp://127.0.0.1:*",
            "ack": "tcp://127.0.0.1:*",
            "control": "tcp://127.0.0.1:*",
            "metrics": "127.0.0.1:0" if metrics else "",
            **{g: "tcp://127.0.0.1:*" for g in self.groups},
        }
        try:
            self.start()
        except BaseException:
            self.close()
            raise

    # -- endpoints ---------------------------------------------------------------
    @property
    def heartbeat(self) -> str:
        return self._endpoints["heartbeat"]

    @property
    def ack(self) -> str:
        return self._endpoints["ack"]

    @property
    def control(self) -> str:
        return self._endpoints["control"]

    def events(self, group: str) -> str:
        return self._endpoints[group]

    # -- clients -----------------------------------------------------------------
    def client(self, curve: Optional["rmon.CurveKeys"], timeout_ms: int = 3000) -> "rmon.RunnerMonitorClient":
        c = rmon.RunnerMonitorClient(self.control, timeout_ms=timeout_ms, curve=curve)
        self._clients.append(c)
        return c

    def metric(self, name: str) -> float:
        """The sum of a /metrics family's samples (0 when it has none); needs ``metrics``."""
        if not self._endpoints["metrics"]:
            raise RuntimeError("CurveMonitor started without metrics=True")
        port = self._endpoints["metrics"].rsplit(":", 1)[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.rsplit(" ", 1)[1])
        return total

    # -- process -----------------------------------------------------------------
    def start(self) -> None:
        e = self._endpoints
        args = [
            "--security", "curve",
            "--curve-secret-file", self.secret_file,
            "--curve-clients-dir", self.clients_dir,
            "--heartbeat-endpoint", e["heartbeat"],
            "--group", ",".join(f"{g}={e[g]}" for g in self.groups),
            "--ack-endpoint", e["ack"],
            "--control-endpoint", e["control"],
            "--metrics-address", e["metrics"],
            "--instance", "pycurve",
            "--data-dir", os.path.join(self.dir, "data"),
        ] + self.args
        # The group lines follow the start line.
        last_group = self.groups[-1]
        m = self.child.start(
            args, self.STARTED + r"[\s\S]*consumer group group=" + re.escape(last_group) + r" endpoint=\S+\n"
        )
        text = m.group(0)
        groups = dict(re.findall(r"consumer group group=(\S+) endpoint=(\S+)", text))
        if set(groups) != set(self.groups):
            raise RuntimeError(f"runner-monitor named groups {sorted(groups)}:\n{self.child.log_tail()}")
        e.update(heartbeat=m.group(1), ack=m.group(2), control=m.group(3), **groups)
        if e["metrics"]:
            e["metrics"] = f"127.0.0.1:{m.group(4)}"
        probe = rmon.RunnerMonitorClient(self.control, timeout_ms=200, curve=self.admin_keys)
        try:
            wait_answers(probe, what="the monitor's ping")
        finally:
            probe.close()

    def stop(self) -> Optional[int]:
        """SIGTERM, then SIGKILL after 10 s; returns the exit status."""
        return self.child.stop()

    def restart(self) -> None:
        """Stops and starts it again on the same ports, data folder and keys."""
        self.stop()
        self.start()

    def alive(self) -> bool:
        return self.child.alive()

    def log_tail(self, lines: int = 30) -> str:
        return self.child.log_tail(lines)

    def close(self) -> Optional[int]:
        for c in self._clients:
            c.close()
        status = self.stop()
        if os.environ.get("RMON_KEEP_TEST_DIR"):
            print(f"monitor folder kept: {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        return status


def takes_curve(name: str) -> bool:
    """Whether this executable of the task-queue or pool-manager takes
    ``--security curve`` as a client of the monitor (its --help says so)."""
    done = subprocess.run([binary(name), "--help"], capture_output=True, text=True, timeout=30)
    return "--monitor-public-key-file" in done.stdout + done.stderr


class CurveStack:
    """The three services with ``--security curve``, on the keys ``rmon-keygen
    init KEYS`` writes (KEYS/<service>/..., KEYS/clients/, KEYS/servers/),
    every socket on ``tcp://127.0.0.1`` ports read back from the start lines."""

    def __init__(
        self,
        keys_dir: str,
        monitor_args: Sequence[str] = (),
        task_queue_args: Sequence[str] = (),
        pool_manager_args: Sequence[str] = (),
    ) -> None:
        self.keys_dir = keys_dir
        self.services: Dict[str, ChildService] = {}
        self.api: Dict[str, str] = {}
        self._clients: List[rmon._rpc.RpcClient] = []
        k = keys_dir
        self.monitor = CurveMonitor(
            os.path.join(k, "runner-monitor", "runner-monitor.key_secret"),
            os.path.join(k, "runner-monitor", "clients"),
            self.keys("admin", "runner-monitor"),
            args=monitor_args,
        )
        try:
            for name, extra in (("task-queue", task_queue_args), ("pool-manager", pool_manager_args)):
                d = os.path.join(self.monitor.dir, name)
                os.mkdir(d)
                child = ChildService(name, os.path.join(self.monitor.dir, name + ".log"))
                self.services[name] = child
                m = child.start(
                    [
                        "--security", "curve",
                        "--curve-secret-file", os.path.join(k, name, name + ".key_secret"),
                        "--curve-clients-dir", os.path.join(k, name, "clients"),
                        "--monitor-curve-secret-file", os.path.join(k, name, f"consumer-{name}.key_secret"),
                        "--monitor-public-key-file", os.path.join(k, name, "runner-monitor.key"),
                        "--api-endpoint", "tcp://127.0.0.1:*",
                        "--events-endpoint", self.monitor.events(name),
                        "--ack-endpoint", self.monitor.ack,
                        "--monitor-endpoint", self.monitor.control,
                        "--data-dir", os.path.join(d, "data"),
                        "--metrics-address", "",
                    ]
                    + list(extra),
                    re.escape(name) + r" started api=(\S+) .*\n",
                )
                self.api[name] = m.group(1)
                probe = self.client(name, "admin", timeout_ms=200)
                wait_answers(probe, what=f"{name}'s ping")
        except BaseException:
            self.close()
            raise

    def keys(self, client: str, service: str) -> "rmon.CurveKeys":
        """The keys of ``KEYS/clients/<client>.key_secret`` for ``service``."""
        return rmon.CurveKeys.for_service(
            os.path.join(self.keys_dir, "clients", client + ".key_secret"),
            os.path.join(self.keys_dir, "servers"),
            service,
        )

    def client(self, service: str, client: str, timeout_ms: int = 3000):
        """A request client of ``service`` with the key of ``client`` (admin, reader, ...)."""
        cls = {
            "task-queue": rmon.TaskQueueClient,
            "pool-manager": rmon.PoolManagerClient,
            "runner-monitor": rmon.RunnerMonitorClient,
        }[service]
        endpoint = self.monitor.control if service == "runner-monitor" else self.api[service]
        c = cls(endpoint, timeout_ms=timeout_ms, curve=self.keys(client, service))
        self._clients.append(c)
        return c

    def alive(self) -> Dict[str, bool]:
        return {"runner-monitor": self.monitor.alive(), **{n: c.alive() for n, c in self.services.items()}}

    def log_tails(self) -> str:
        return "\n".join(
            [self.monitor.log_tail()] + [c.log_tail() for c in self.services.values()]
        )

    def close(self) -> Dict[str, Optional[int]]:
        for c in self._clients:
            c.close()
        status = {n: c.stop() for n, c in self.services.items()}
        status["runner-monitor"] = self.monitor.close()
        return status
