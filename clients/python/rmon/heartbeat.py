"""Heartbeat publisher for runners (PUB, connect; default monitor ``tcp://127.0.0.1:5555``)."""

from __future__ import annotations

import logging
import random
import threading
import time
from types import TracebackType
from typing import Any, Dict, Iterable, List, Optional, Sequence, Type, Union

import zmq

from . import _codec
from ._client_socket import ClientSocket
from .security import MONITOR_SERVICE, CurveKeys

#: Monitors one publisher may send to, at most.
MAX_MONITORS = 16


def _endpoint_list(endpoint: Union[None, str, Sequence[str]], default: str) -> List[str]:
    """One endpoint or a list of them (1 to MAX_MONITORS, each a non-empty str)."""
    if endpoint is None:
        return [default]
    if isinstance(endpoint, str):
        return [endpoint or default]
    try:
        out = list(endpoint)
    except TypeError:
        raise ValueError(f"endpoint must be a str or a list of str, not {type(endpoint).__name__}")
    if not 1 <= len(out) <= MAX_MONITORS:
        raise ValueError(f"endpoint must list 1 to {MAX_MONITORS} monitors, got {len(out)}")
    for e in out:
        if not isinstance(e, str) or not e:
            raise ValueError(f"each endpoint must be a non-empty str, got {e!r}")
    if len(set(out)) != len(out):
        raise ValueError("each monitor is listed once")
    return out


def _earliest(delays: Iterable[Optional[float]]) -> Optional[float]:
    """The smallest of the delays that are not None (None when all are)."""
    present = [d for d in delays if d is not None]
    return min(present) if present else None

log = logging.getLogger("rmon")

_UNSET: Any = object()


class HeartbeatPublisher:
    """Publishes a runner's heartbeats for one task attempt from a background thread.

    Every message is the two frames ``hb/<runner_id>`` and the contract's
    payload map (``v`` 1, ``runner_id``, ``task_id``, ``attempt``, ``pool``,
    ``pool_type``, ``pid``/``container_id``/``job_name`` where given,
    ``state``, ``seq``, ``timeout_ms`` where given, ``interval_ms``,
    ``sent_at_ms``, ``progress`` where set). ``seq`` starts at 1 and grows by
    one with every message.

    Heartbeats go out every ``interval_ms``, each period drawn uniformly in
    ``interval_ms × (1 ± jitter)`` so a fleet started together does not beat
    in lockstep. The first one goes out when :meth:`start` is called.

    :meth:`complete` / :meth:`fail` stop the thread and send the terminal
    state ``terminal_repeats`` times, ``terminal_gap_ms`` apart, because PUB
    drops messages (while connecting, or when no monitor is there). The
    repeats are the same message (same ``seq``): the monitor takes the first
    that arrives and counts the others as duplicates. :meth:`close` stops
    heartbeating *without* a terminal state (the monitor then times the
    runner out, which is what a crash looks like).

    As a context manager it starts on entry and, on exit, sends ``completed``
    when the block ended normally, ``failed`` when it raised (unless a
    terminal state was already sent), then closes::

        with HeartbeatPublisher("tcp://monitor:5555", "runner-1", task["task_id"],
                                "local", "local-process", attempt=task["attempt"],
                                timeout_ms=10000) as hb:
            for step in work():
                hb.set_progress({"step": step})

    PUB cannot tell whether anyone received a message: heartbeats sent before
    the connection is up are lost. Choose ``timeout_ms`` several intervals
    long. The methods are thread-safe.

    With ``curve`` the PUB socket is a CURVE client of the monitor. A monitor
    that refuses the key drops every heartbeat; the publisher notices it at
    its next beat, logs ``key not enrolled: <public key>`` (logger ``rmon``),
    sets :attr:`refused`, and connects a fresh socket after a backoff (100 ms
    doubling to 5 s, checked at each beat), so it recovers by itself once the
    key is enrolled.
    """

    DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
    #: The server's name, as its public key file is named.
    SERVICE = MONITOR_SERVICE

    def __init__(
        self,
        endpoint: Union[None, str, Sequence[str]],
        runner_id: str,
        task_id: str,
        pool: str,
        pool_type: str,
        attempt: int = 1,
        interval_ms: int = 1000,
        timeout_ms: Optional[int] = None,
        jitter: float = 0.1,
        pid: Optional[int] = None,
        container_id: Optional[str] = None,
        job_name: Optional[str] = None,
        progress: Any = None,
        *,
        terminal_repeats: int = 3,
        terminal_gap_ms: int = 50,
        context: Optional[zmq.Context] = None,
        rng: Optional[random.Random] = None,
        curve: Optional[CurveKeys] = None,
    ) -> None:
        """
        Args:
            endpoint: the monitor's heartbeat endpoint (default ``tcp://127.0.0.1:5555``),
                or a list of them (1 to 16) to publish to several monitors (an
                availability pair): one PUB socket connected to each, every
                message sent on all.
            runner_id, task_id, pool: identifiers, 1 to 128 bytes of UTF-8.
            pool_type: ``local-process``, ``docker`` or ``kubernetes``.
            attempt: the task's attempt number (from the lease), at least 1.
            interval_ms: heartbeat period.
            timeout_ms: this runner's timeout; the monitor's default when None.
            jitter: share of ``interval_ms`` each period varies by, in [0, 1).
            pid, container_id, job_name: where the runner runs (each optional).
            progress: initial progress details (any MessagePack value, at most
                4 KiB encoded); None sends none.
            terminal_repeats: how many times the terminal state is sent (≥ 1).
            terminal_gap_ms: pause between those repeats.
            context: ZeroMQ context; ``zmq.Context.instance()`` when None.
            rng: random source for the jitter (tests).
            curve: the runner's CURVE keys with the monitor's public key
                (``CurveKeys.for_service(secret_file, servers_dir,
                "runner-monitor")``); None for a plain connection.

        Raises:
            ValueError: an argument breaks the contract (empty or too long id,
                unknown pool_type, attempt 0, progress too large, ...).
        """
        self.endpoints = _endpoint_list(endpoint, self.DEFAULT_ENDPOINT)
        self.endpoint = self.endpoints[0]
        self.runner_id = _codec.check_id(runner_id, "runner_id")
        self.task_id = _codec.check_id(task_id, "task_id")
        self.pool = _codec.check_id(pool, "pool")
        self.pool_type = _codec.check_choice(pool_type, "pool_type", _codec.POOL_TYPES)
        self.attempt = _codec.check_uint(attempt, "attempt", minimum=1)
        self.interval_ms = _codec.check_uint(interval_ms, "interval_ms", minimum=1)
        self.timeout_ms = (
            None if timeout_ms is None else _codec.check_uint(timeout_ms, "timeout_ms", minimum=1)
        )
        if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not 0 <= jitter < 1:
            raise ValueError(f"jitter must be a number in [0, 1), got {jitter!r}")
        self.jitter = float(jitter)
        self.pid = None if pid is None else _codec.check_uint(pid, "pid")
        self.container_id = _codec.check_opt_str(container_id, "container_id")
        self.job_name = _codec.check_opt_str(job_name, "job_name")
        self.terminal_repeats = _codec.check_uint(terminal_repeats, "terminal_repeats", minimum=1)
        self.terminal_gap_ms = _codec.check_uint(terminal_gap_ms, "terminal_gap_ms")
        self._topic = ("hb/" + self.runner_id).encode("utf-8")
        self._rng = rng if rng is not None else random.Random()

        self._lock = threading.Lock()  # guards the fields below and the socket
        self._progress: Any = None
        self._seq = 0
        self._state = "running"
        self._terminal_sent = False
        self._closed = False
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        if progress is not None:
            self._progress = self._check_progress(progress)
        self._check_frame(self._payload_locked("running", 2**64 - 1))

        if curve is not None and not isinstance(curve, CurveKeys):
            raise ValueError(f"curve must be a rmon.CurveKeys or None, not {type(curve).__name__}")
        self.curve = curve

        ctx = context if context is not None else zmq.Context.instance()
        # Linger: let queued messages (the terminal repeats above all) leave
        # after close(), but never hold the context's termination for long.
        self._sockets: List[ClientSocket] = []
        try:
            for e in self.endpoints:
                self._sockets.append(ClientSocket(ctx, zmq.PUB, e, curve, linger_ms=1000))
        except Exception:
            for sock in self._sockets:
                sock.close()
            raise

    # -- properties ----------------------------------------------------------
    @property
    def seq(self) -> int:
        """The ``seq`` of the last message sent (0 before the first)."""
        with self._lock:
            return self._seq

    @property
    def state(self) -> str:
        """``running`` until :meth:`complete` or :meth:`fail` sent a terminal state."""
        with self._lock:
            return self._state

    @property
    def progress(self) -> Any:
        with self._lock:
            return self._progress

    @property
    def refused(self) -> bool:
        """True when a monitor refused this runner's CURVE key at the last
        handshake seen (checked at each beat), until one succeeds."""
        with self._lock:
            return any(s.refused for s in self._sockets)

    @property
    def running(self) -> bool:
        """True while the background thread is heartbeating."""
        t = self._thread
        return t is not None and t.is_alive()

    # -- control -------------------------------------------------------------
    def start(self) -> "HeartbeatPublisher":
        """Sends the first heartbeat now and starts the background thread; returns self.

        Raises RuntimeError when already started, ended or closed.
        """
        with self._lock:
            if self._closed or self._terminal_sent:
                raise RuntimeError("heartbeat publisher has ended; create a new one")
            if self._thread is not None:
                raise RuntimeError("heartbeat publisher already started")
            self._thread = threading.Thread(
                target=self._run, name=f"rmon-heartbeat-{self.runner_id}", daemon=True
            )
        self._thread.start()
        return self

    def set_progress(self, progress: Any) -> None:
        """Sets the progress details the next heartbeats carry (None: none).

        Raises ValueError when it is over 4 KiB encoded, TypeError when
        MessagePack cannot encode it.
        """
        checked = None if progress is None else self._check_progress(progress)
        with self._lock:
            self._check_frame(self._payload_locked(self._state, 2**64 - 1, checked))
            self._progress = checked

    def complete(self, progress: Any = _UNSET) -> bool:
        """Sends ``completed`` (repeated), then stops heartbeating.

        ``progress``, when given, replaces the progress details first. Returns
        False (and sends nothing) when a terminal state was already sent.
        Raises RuntimeError after :meth:`close`.
        """
        return self._finish("completed", progress)

    def fail(self, progress: Any = _UNSET) -> bool:
        """Sends ``failed`` (repeated), then stops heartbeating; as :meth:`complete`."""
        return self._finish("failed", progress)

    def close(self) -> None:
        """Stops heartbeating and closes the socket, sending no terminal state.

        Idempotent. After :meth:`complete` / :meth:`fail` it only releases
        the socket (their messages still leave, within a 1 s linger).
        """
        self._stop_thread()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for sock in self._sockets:
                sock.close()  # with the 1 s linger

    def __enter__(self) -> "HeartbeatPublisher":
        if self._thread is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        try:
            with self._lock:
                pending = not self._terminal_sent and not self._closed
            if pending:
                self._finish("completed" if exc_type is None else "failed", _UNSET)
        finally:
            self.close()

    def __repr__(self) -> str:
        return (
            f"HeartbeatPublisher(runner_id={self.runner_id!r}, task_id={self.task_id!r}, "
            f"attempt={self.attempt}, state={self._state!r}, seq={self._seq})"
        )

    # -- internals -----------------------------------------------------------
    def _check_progress(self, progress: Any) -> Any:
        n = _codec.encoded_size(progress)
        if n > _codec.MAX_PROGRESS_BYTES:
            raise ValueError(
                f"progress is {n} bytes encoded; at most {_codec.MAX_PROGRESS_BYTES} allowed"
            )
        return progress

    @staticmethod
    def _check_frame(payload: Dict[str, Any]) -> None:
        n = _codec.encoded_size(payload)
        if n > _codec.MAX_HEARTBEAT_FRAME:
            raise ValueError(
                f"heartbeat would be {n} bytes; the monitor rejects frames over "
                f"{_codec.MAX_HEARTBEAT_FRAME}"
            )

    def _payload_locked(self, state: str, seq: int, progress: Any = _UNSET) -> Dict[str, Any]:
        p: Dict[str, Any] = {
            "v": _codec.VERSION,
            "runner_id": self.runner_id,
            "task_id": self.task_id,
            "attempt": self.attempt,
            "pool": self.pool,
            "pool_type": self.pool_type,
        }
        if self.pid is not None:
            p["pid"] = self.pid
        if self.container_id is not None:
            p["container_id"] = self.container_id
        if self.job_name is not None:
            p["job_name"] = self.job_name
        p["state"] = state
        p["seq"] = seq
        if self.timeout_ms is not None:
            p["timeout_ms"] = self.timeout_ms
        p["interval_ms"] = self.interval_ms
        p["sent_at_ms"] = int(time.time() * 1000)
        prog = self._progress if progress is _UNSET else progress
        if prog is not None:
            p["progress"] = prog
        return p

    def _next_frames_locked(self, state: str) -> List[bytes]:
        self._seq += 1
        return [self._topic, _codec.encode(self._payload_locked(state, self._seq))]

    def _send_locked(self, frames: List[bytes]) -> None:
        # Reads the handshake events; replaces a refused socket once its
        # backoff has passed (what was queued on it is lost anyway).
        # Each monitor on its own: one whose socket fails does not silence
        # the others.
        for sock in self._sockets:
            try:
                sock.maintain()
                sock.socket.send_multipart(frames, flags=zmq.NOBLOCK)
            except zmq.Again:
                log.warning(
                    "heartbeat dropped (send queue full) runner_id=%s endpoint=%s",
                    self.runner_id,
                    sock.endpoint,
                )
            except Exception:
                log.exception(
                    "heartbeat not sent runner_id=%s endpoint=%s", self.runner_id, sock.endpoint
                )

    def next_delay(self) -> float:
        """Seconds until the next heartbeat: ``interval_ms × (1 ± jitter)`` / 1000."""
        factor = 1.0 + self._rng.uniform(-self.jitter, self.jitter) if self.jitter else 1.0
        return self.interval_ms * factor / 1000.0

    def _run(self) -> None:
        next_beat = time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                if self._closed or self._terminal_sent:
                    return
                try:
                    if time.monotonic() >= next_beat:
                        self._send_locked(self._next_frames_locked("running"))
                        next_beat = time.monotonic() + self.next_delay()
                    else:  # woken early to replace a refused socket
                        for sock in self._sockets:
                            sock.maintain()
                    retry = _earliest(sock.retry_in() for sock in self._sockets)
                except Exception:  # keep beating; a dead thread would look like a crash
                    log.exception("heartbeat send failed runner_id=%s", self.runner_id)
                    next_beat = time.monotonic() + self.next_delay()
                    retry = None  # no early wake-up: it could fail the same way at once
                wait = next_beat - time.monotonic()
            if retry is not None:
                wait = min(wait, retry)
            if self._stop.wait(max(0.0, wait)):
                return

    def _stop_thread(self) -> None:
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join()

    def _finish(self, state: str, progress: Any) -> bool:
        if progress is not _UNSET:
            self.set_progress(progress)
        self._stop_thread()
        with self._lock:
            if self._closed:
                raise RuntimeError("heartbeat publisher is closed")
            if self._terminal_sent:
                return False
            self._terminal_sent = True
            self._state = state
            frames = self._next_frames_locked(state)
        for i in range(self.terminal_repeats):
            if i:
                time.sleep(self.terminal_gap_ms / 1000.0)
            with self._lock:
                if self._closed:
                    break
                self._send_locked(frames)
        return True
