"""Consumer of the monitor's timeout events for one consumer group."""

from __future__ import annotations

import collections
import logging
import threading
from typing import Any, Callable, Dict, Optional

import zmq

from . import _codec
from ._client_socket import ClientSocket
from .errors import ProtocolError
from .security import MONITOR_SERVICE, CurveKeys

log = logging.getLogger("rmon")

#: Keys every ``runner_timeout`` event carries.
REQUIRED_EVENT_KEYS = (
    "v",
    "type",
    "event_id",
    "runner_id",
    "task_id",
    "attempt",
    "pool",
    "pool_type",
    "last_seq",
    "last_heartbeat_ms",
    "detected_at_ms",
    "timeout_ms",
    "delivery",
)

Handler = Callable[[Dict[str, Any]], Any]


def decode_timeout_event(frame: bytes) -> Dict[str, Any]:
    """Decodes and checks one ``runner_timeout`` event frame strictly.

    Returns the event as a dict (unknown keys kept). Raises
    :class:`ProtocolError` when the frame is over 64 KiB, not one map with
    string keys, of another version or type, or has a required key missing or
    of the wrong type.
    """
    ev = _codec.decode_map(frame, _codec.MAX_FRAME, "event")
    for key in REQUIRED_EVENT_KEYS:
        if key not in ev:
            raise ProtocolError(f"missing_field: {key}", code="missing_field")
    if not _codec.is_uint(ev["v"]):
        raise ProtocolError("wrong_type: v", code="wrong_type")
    if ev["v"] != _codec.VERSION:
        raise ProtocolError(f"bad_version: {ev['v']}", code="bad_version")
    if ev["type"] != "runner_timeout":
        raise ProtocolError(f"bad_value: type {ev['type']!r}", code="bad_value")

    def ident(key: str, max_bytes: int = _codec.MAX_ID_BYTES) -> None:
        v = ev[key]
        if not isinstance(v, str):
            raise ProtocolError(f"wrong_type: {key}", code="wrong_type")
        n = _codec.utf8_len(v)
        if n is None or not 1 <= n <= max_bytes:
            raise ProtocolError(f"bad_value: {key}", code="bad_value")

    for key in ("event_id", "runner_id", "task_id", "pool"):
        ident(key)
    if ev["pool_type"] not in _codec.POOL_TYPES:
        raise ProtocolError("bad_value: pool_type", code="bad_value")
    for key in ("attempt", "last_seq", "timeout_ms", "delivery"):
        if not _codec.is_uint(ev[key]):
            raise ProtocolError(f"wrong_type: {key}", code="wrong_type")
    for key in ("attempt", "delivery"):
        if ev[key] < 1:
            raise ProtocolError(f"bad_value: {key}", code="bad_value")
    for key in ("last_heartbeat_ms", "detected_at_ms"):
        if not _codec.is_int(ev[key]):
            raise ProtocolError(f"wrong_type: {key}", code="wrong_type")
    if "pid" in ev and not _codec.is_uint(ev["pid"]):
        raise ProtocolError("wrong_type: pid", code="wrong_type")
    for key in ("container_id", "job_name"):
        if key in ev:
            ident(key, _codec.MAX_SHORT_STRING)
    if "progress" in ev and _codec.depth(ev["progress"]) > _codec.MAX_DEPTH - 1:
        raise ProtocolError("too_large: progress nesting", code="too_large")
    return ev


def encode_ack(group: str, event_id: str) -> bytes:
    """The acknowledgement frame ``{v: 1, type: "ack", group, event_id}``."""
    return _codec.encode({"v": _codec.VERSION, "type": "ack", "group": group, "event_id": event_id})


class TimeoutConsumer:
    """Receives one consumer group's ``runner_timeout`` events and acknowledges them.

    A PULL socket connects to the group's event endpoint (the monitor binds a
    PUSH per group: by default ``tcp://127.0.0.1:5556`` for ``task-queue``
    and ``:5557`` for ``pool-manager``) and a PUSH socket to the monitor's
    ack endpoint. Each event is decoded strictly and ``handler(event)`` is
    called with the event dict. The event is acknowledged only after the
    handler returns. If the handler raises, the exception is logged (logger
    ``rmon``) and the event is not acknowledged, so the monitor redelivers it
    after its redelivery interval (``delivery`` 2, 3, ...). Frames that are
    not valid events are logged and dropped.

    Delivery is at least once: the handler must treat a repeated
    ``event_id``, and a repeated (``task_id``, ``attempt``), as already
    done. To spare it the common case, the consumer remembers the last
    ``dedupe`` event ids it acknowledged and acknowledges a repeat of one of
    them again without calling the handler (``dedupe=0`` turns that off).

    Several consumers of one group share its events (PUSH load-balances).

    Use :meth:`run` to consume in the calling thread until a stop event is
    set, or :meth:`start` / :meth:`stop` for a background thread.

    With ``curve`` both sockets are CURVE clients of the monitor, with the
    group's consumer key (role ``consumer``, ``group`` this group). A socket
    whose key the monitor refuses at the handshake (not enrolled, or a key of
    another group on this group's event socket) logs ``key not enrolled:
    <public key>`` (logger ``rmon``), counts ``refused`` and is replaced by a
    fresh one after a backoff (100 ms doubling to 5 s), so the consumer
    recovers by itself once the key is enrolled.
    """

    #: The server's name, as its public key file is named.
    SERVICE = MONITOR_SERVICE

    def __init__(
        self,
        group: str,
        events_endpoint: str,
        handler: Handler,
        ack_endpoint: str = "tcp://127.0.0.1:5558",
        *,
        dedupe: int = 1024,
        poll_ms: int = 100,
        context: Optional[zmq.Context] = None,
        curve: Optional[CurveKeys] = None,
    ) -> None:
        """
        Args:
            group: the consumer group's name, as configured in the monitor
                (it goes into every ack).
            events_endpoint: the monitor's endpoint for this group's events.
            handler: called with each event dict; returns when the event is
                durably applied, raises when it is not.
            ack_endpoint: the monitor's acknowledgement endpoint.
            dedupe: how many acknowledged event ids to remember.
            poll_ms: how often :meth:`run` checks its stop event.
            context: ZeroMQ context; ``zmq.Context.instance()`` when None.
            curve: the consumer's CURVE keys with the monitor's public key
                (``CurveKeys.for_service(secret_file, servers_dir,
                "runner-monitor")``); None for plain connections.
        """
        self.group = _codec.check_id(group, "group")
        if not isinstance(events_endpoint, str) or not events_endpoint:
            raise ValueError("events_endpoint must be a non-empty str")
        if not isinstance(ack_endpoint, str) or not ack_endpoint:
            raise ValueError("ack_endpoint must be a non-empty str")
        if not callable(handler):
            raise ValueError("handler must be callable")
        if curve is not None and not isinstance(curve, CurveKeys):
            raise ValueError(f"curve must be a rmon.CurveKeys or None, not {type(curve).__name__}")
        self.curve = curve
        self.events_endpoint = events_endpoint
        self.ack_endpoint = ack_endpoint
        self.handler = handler
        self.poll_ms = _codec.check_uint(poll_ms, "poll_ms", minimum=1)
        self._dedupe = _codec.check_uint(dedupe, "dedupe")
        self._acked: "collections.OrderedDict[str, None]" = collections.OrderedDict()
        self._context = context if context is not None else zmq.Context.instance()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        #: Counters: ``handled`` (handler returned), ``failed`` (handler
        #: raised), ``rejected`` (malformed frames), ``repeats`` (acked again
        #: without calling the handler), ``ack_dropped`` (ack could not be queued),
        #: ``refused`` (handshakes the monitor refused, on either socket).
        self.counters: Dict[str, int] = collections.Counter()

    # -- running -------------------------------------------------------------
    def run(self, stop_event: Optional[threading.Event] = None) -> None:
        """Consumes events in this thread until ``stop_event`` (or :meth:`stop`) is set."""
        stop = stop_event if stop_event is not None else self._stop
        pull = ClientSocket(
            self._context,
            zmq.PULL,
            self.events_endpoint,
            self.curve,
            linger_ms=0,
            options=[(zmq.MAXMSGSIZE, _codec.MAX_FRAME)],
        )
        try:
            # A linger, so a refused PUSH holding acks never blocks the context's end.
            push = ClientSocket(self._context, zmq.PUSH, self.ack_endpoint, self.curve, linger_ms=1000)
        except BaseException:
            pull.close()
            raise
        try:
            poller = self._poller(pull, push)
            while not stop.is_set() and not self._stop.is_set():
                ready = dict(poller.poll(self.poll_ms))
                if self.curve is not None:
                    refused = pull.refusals + push.refusals
                    replaced = pull.maintain() | push.maintain()
                    self.counters["refused"] += pull.refusals + push.refusals - refused
                    if replaced:
                        poller = self._poller(pull, push)
                        continue
                if pull.socket not in ready:
                    continue
                frames = pull.socket.recv_multipart(zmq.NOBLOCK)
                self.process(frames, push.socket)
        finally:
            pull.close()
            push.close()

    @staticmethod
    def _poller(pull: ClientSocket, push: ClientSocket) -> zmq.Poller:
        poller = zmq.Poller()
        poller.register(pull.socket, zmq.POLLIN)
        for cs in (pull, push):
            if cs.events is not None:
                poller.register(cs.events, zmq.POLLIN)
        return poller

    def start(self) -> "TimeoutConsumer":
        """Runs :meth:`run` in a daemon thread; returns self."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise RuntimeError("consumer already started")
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run_logged, name=f"rmon-consumer-{self.group}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout: Optional[float] = None) -> None:
        """Stops the consumer (within ``poll_ms``) and waits for its thread."""
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)

    def __enter__(self) -> "TimeoutConsumer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _run_logged(self) -> None:
        try:
            self.run()
        except Exception:
            log.exception("timeout consumer stopped on an error group=%s", self.group)

    # -- one message ---------------------------------------------------------
    def process(self, frames: list, ack_socket: Any) -> bool:
        """Handles one received message; returns True when it was acknowledged.

        Public for tests and for callers with their own sockets.
        """
        if len(frames) != 1:
            self.counters["rejected"] += 1
            log.warning(
                "timeout event dropped: %d frames, expected 1 group=%s", len(frames), self.group
            )
            return False
        try:
            ev = decode_timeout_event(bytes(frames[0]))
        except ProtocolError as e:
            self.counters["rejected"] += 1
            log.warning("timeout event dropped: %s group=%s", e.detail, self.group)
            return False
        event_id = ev["event_id"]
        if event_id in self._acked:
            self._acked.move_to_end(event_id)
            self.counters["repeats"] += 1
            log.debug("timeout event repeated, acked again event_id=%s", event_id)
            return self._ack(ack_socket, event_id)
        try:
            self.handler(ev)
        except Exception:
            self.counters["failed"] += 1
            log.exception(
                "timeout event handler failed; not acknowledged, the monitor will redeliver "
                "event_id=%s task_id=%s attempt=%s delivery=%s group=%s",
                event_id,
                ev["task_id"],
                ev["attempt"],
                ev["delivery"],
                self.group,
            )
            return False
        self.counters["handled"] += 1
        if self._dedupe:
            self._acked[event_id] = None
            while len(self._acked) > self._dedupe:
                self._acked.popitem(last=False)
        return self._ack(ack_socket, event_id)

    def _ack(self, sock: Any, event_id: str) -> bool:
        try:
            sock.send(encode_ack(self.group, event_id), flags=zmq.NOBLOCK)
        except zmq.Again:
            # The monitor redelivers; the repeat is acknowledged then.
            self.counters["ack_dropped"] += 1
            log.warning("ack not sent (queue full) event_id=%s group=%s", event_id, self.group)
            return False
        return True
