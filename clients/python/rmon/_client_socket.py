"""A connecting socket, CURVE or plain, that recovers from a refused handshake.

A server whose ZAP handler refuses the client's key answers status 400, and
libzmq never retries that connection: the socket stays connected to nothing
for ever, and a DEALER or PUSH holding queued messages would block
``zmq_ctx_term`` (hence a finite linger on every CURVE socket). So the client
watches its handshakes through libzmq's socket monitor, logs
``key not enrolled: <its public key>`` and replaces the socket after a backoff
(100 ms doubling to 5 s), which lets a client whose key is enrolled later
recover by itself. This is the Python side of the C++ ``ClientSocket``
(``rmon/security/client.hpp``).

What happens on each handshake event (:class:`Refusals`, pure):

==========================  =======  ===============  =====================
event                       refused  backoff          socket replaced at
==========================  =======  ===============  =====================
succeeded                   False    reset            nothing pending
refused by ZAP (auth, 400)  True     doubled, 0.1-5s  now + backoff
other failure (protocol)    as was   as was           libzmq retries itself
replacement due, done       as was   as was           nothing pending
==========================  =======  ===============  =====================
"""

from __future__ import annotations

import itertools
import logging
import struct
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import zmq

from .security import CurveKeys

log = logging.getLogger("rmon")

Clock = Callable[[], float]

FIRST_BACKOFF_S = 0.1
MAX_BACKOFF_S = 5.0

#: The handshake events watched (libzmq's ZMQ_EVENT_HANDSHAKE_*).
EVENT_SUCCEEDED = 0x1000
EVENT_FAILED_NO_DETAIL = 0x0800
EVENT_FAILED_PROTOCOL = 0x2000
EVENT_FAILED_AUTH = 0x4000
HANDSHAKE_EVENTS = EVENT_SUCCEEDED | EVENT_FAILED_NO_DETAIL | EVENT_FAILED_PROTOCOL | EVENT_FAILED_AUTH

_monitor_ids = itertools.count(1)


def not_enrolled_message(keys: CurveKeys) -> str:
    """``key not enrolled: <public key in Z85>``, the line a refused client logs."""
    return "key not enrolled: " + keys.public_key_text


class Refusals:
    """Backoff after refused handshakes (the table above). Pure: times are
    seconds on a monotonic clock, passed in. Not thread-safe."""

    def __init__(self, first: float = FIRST_BACKOFF_S, maximum: float = MAX_BACKOFF_S) -> None:
        self.first = first
        self.maximum = maximum
        self.refused = False  # refused at the last handshake, none succeeded since
        self.count = 0  # refusals so far
        self.backoff = 0.0  # the last delay chosen
        self.reopen_at: Optional[float] = None

    def succeeded(self) -> None:
        self.refused = False
        self.backoff = 0.0
        self.reopen_at = None

    def refuse(self, now: float) -> float:
        """Records a refusal; returns the delay before the socket is replaced."""
        self.refused = True
        self.count += 1
        self.backoff = min(self.maximum, max(self.first, self.backoff * 2))
        self.reopen_at = now + self.backoff
        return self.backoff

    def due(self, now: float) -> bool:
        return self.reopen_at is not None and now >= self.reopen_at

    def waiting(self, now: float) -> bool:
        """A replacement is pending and not due yet."""
        return self.reopen_at is not None and now < self.reopen_at

    def reopened(self) -> None:
        self.reopen_at = None

    def retry_in(self, now: float) -> Optional[float]:
        """Seconds until the replacement is due (0 when due), None when none is pending."""
        if self.reopen_at is None:
            return None
        return max(0.0, self.reopen_at - now)


class LogLimit:
    """At most ``burst`` lines per key per ``window`` seconds; counts the rest.
    Thread-safe. One for the process: a fleet of sockets refused with the same
    key logs a few lines, not one per socket and attempt."""

    def __init__(self, burst: int = 5, window: float = 10.0) -> None:
        self.burst = burst
        self.window = window
        self._lock = threading.Lock()
        self._state: Dict[str, Tuple[float, int, int]] = {}  # key: window start, lines, suppressed

    def allow(self, key: str, now: float) -> Tuple[bool, int]:
        """Whether to log now, and how many lines were suppressed since the last one logged."""
        with self._lock:
            start, lines, suppressed = self._state.get(key, (now, 0, 0))
            if now - start >= self.window:
                start, lines = now, 0
            if lines >= self.burst:
                self._state[key] = (start, lines, suppressed + 1)
                return False, 0
            self._state[key] = (start, lines + 1, 0)
            if len(self._state) > 4096:  # bounded: forget the oldest windows
                for k in sorted(self._state, key=lambda k: self._state[k][0])[:1024]:
                    del self._state[k]
            return True, suppressed


REFUSAL_LOG_LIMIT = LogLimit()


def parse_event(frames: Sequence[bytes]) -> Optional[Tuple[int, int, str]]:
    """``(event, value, endpoint)`` of a libzmq monitor message, None when malformed."""
    if len(frames) != 2 or len(frames[0]) != 6:
        return None
    event, value = struct.unpack("=HI", bytes(frames[0]))
    return event, value, bytes(frames[1]).decode("utf-8", "replace")


class ClientSocket:
    """A connecting socket; with ``curve`` a CURVE client that recovers from refusals.

    Without ``curve`` it is a plain socket and costs nothing more (it works
    with any context-like object, e.g. a test fake). With ``curve`` its
    handshakes are watched from before its connect; call :meth:`maintain`
    regularly (or :meth:`poll_events` when the caller wants to react to a
    refusal itself) on the socket's thread. After a refusal the socket is
    replaced by a fresh one once the backoff has passed: whatever was queued
    on the old one is gone.

    Not thread-safe: use it from one thread at a time, like a ZeroMQ socket.
    """

    def __init__(
        self,
        context: Any,
        socket_type: int,
        endpoint: str,
        curve: Optional[CurveKeys] = None,
        *,
        linger_ms: int,
        options: Sequence[Tuple[int, Any]] = (),
        clock: Clock = time.monotonic,
        log_limit: LogLimit = REFUSAL_LOG_LIMIT,
    ) -> None:
        if curve is not None and not isinstance(curve, CurveKeys):
            raise ValueError(f"curve must be a rmon.CurveKeys or None, not {type(curve).__name__}")
        self._context = context
        self._type = socket_type
        self.endpoint = endpoint
        self.keys = curve
        self._linger_ms = linger_ms
        self._options = tuple(options)
        self._clock = clock
        self._log_limit = log_limit
        self._refusals = Refusals()
        self._socket: Any = None
        self._events: Any = None
        self._open()

    # -- state -----------------------------------------------------------------
    @property
    def socket(self) -> Any:
        """The current socket (replaced after a refusal: do not keep it)."""
        return self._socket

    @property
    def events(self) -> Any:
        """The handshake events' PAIR socket, readable when some are queued
        (for a poller); None without CURVE."""
        return self._events

    @property
    def curve(self) -> bool:
        return self.keys is not None

    @property
    def refused(self) -> bool:
        """Refused at the last handshake, and no handshake succeeded since."""
        return self._refusals.refused

    @property
    def refusals(self) -> int:
        return self._refusals.count

    def waiting(self) -> bool:
        """Refused, and the fresh socket is not due yet."""
        return self._refusals.waiting(self._clock())

    def retry_in(self) -> Optional[float]:
        """Seconds until the socket is replaced, None when no replacement is pending."""
        return self._refusals.retry_in(self._clock())

    # -- events ----------------------------------------------------------------
    def poll_events(self) -> List[int]:
        """Reads the queued handshake events without blocking and applies them
        (logging a refusal); returns the event kinds read. Never replaces the socket."""
        if self._events is None:
            return []
        kinds: List[int] = []
        while True:
            try:
                frames = self._events.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return kinds
            parsed = parse_event(frames)
            if parsed is None:
                continue
            event, value, endpoint = parsed
            kinds.append(event)
            self._apply(event, value, endpoint)

    def maintain(self) -> bool:
        """:meth:`poll_events`, then replaces the socket if a refusal's backoff
        has passed. True when this call replaced it."""
        self.poll_events()
        if self._refusals.due(self._clock()):
            self.reopen()
            return True
        return False

    def _apply(self, event: int, value: int, endpoint: str) -> None:
        assert self.keys is not None
        if event == EVENT_SUCCEEDED:
            self._refusals.succeeded()
        elif event == EVENT_FAILED_AUTH:
            now = self._clock()
            delay = self._refusals.refuse(now)
            allowed, suppressed = self._log_limit.allow(self.keys.public_key_text, now)
            if allowed:
                log.warning(
                    "%s endpoint=%s status=%d retry_in_ms=%d suppressed=%d",
                    not_enrolled_message(self.keys),
                    endpoint or self.endpoint,
                    value,
                    int(delay * 1000),
                    suppressed,
                )
        else:  # libzmq reconnects by itself after these
            log.debug(
                "CURVE handshake failed endpoint=%s event=0x%x value=%d (a wrong server key?)",
                endpoint or self.endpoint,
                event,
                value,
            )

    # -- lifecycle -------------------------------------------------------------
    def reopen(self) -> None:
        """Replaces the socket by a fresh one now (queued messages are dropped)."""
        self._refusals.reopened()
        self._close_current(linger=0)
        self._open()

    def close(self, linger: Optional[int] = None) -> None:
        """Closes the socket (with ``linger`` ms, or the one it was made with). Idempotent."""
        self._close_current(linger)

    def _open(self) -> None:
        s = self._context.socket(self._type)
        events = None
        try:
            for opt, value in self._options:
                s.setsockopt(opt, value)
            s.setsockopt(zmq.LINGER, self._linger_ms)
            if self.keys is not None:
                self.keys.apply(s)
                # Before connect, so the first handshake is seen.
                addr = f"inproc://rmon-handshakes-{next(_monitor_ids)}"
                s.monitor(addr, HANDSHAKE_EVENTS)
                events = self._context.socket(zmq.PAIR)
                events.setsockopt(zmq.LINGER, 0)
                events.connect(addr)
            s.connect(self.endpoint)
        except BaseException:
            if events is not None:
                events.close(linger=0)
            s.close(linger=0)
            raise
        self._socket, self._events = s, events

    def _close_current(self, linger: Optional[int]) -> None:
        s, events = self._socket, self._events
        self._socket = self._events = None
        if events is not None:
            try:
                s.monitor(None, 0)
            except zmq.ZMQError:
                pass
            events.close(linger=0)
        if s is not None:
            s.close(linger=self._linger_ms if linger is None else linger)
