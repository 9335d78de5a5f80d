"""Starts the real services (runner-monitor, task-queue, pool-manager) as child processes.

Their executables come from RMON_MONITOR_BIN, RMON_TASK_QUEUE_BIN and
RMON_POOL_MANAGER_BIN (ctest sets them from the build tree). Every endpoint is
an ipc:// socket in a fresh temporary folder, every data folder too, and
metrics are off, so stacks never collide with each other or with a running
system. Readiness is a successful ``ping`` within a deadline.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
from typing import Callable, Dict, List, Optional

import rmon

ENV_BINS = {
    "monitor": "RMON_MONITOR_BIN",
    "task-queue": "RMON_TASK_QUEUE_BIN",
    "pool-manager": "RMON_POOL_MANAGER_BIN",
}


def binary(name: str) -> Optional[str]:
    path = os.environ.get(ENV_BINS[name], "")
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
