"""Request/reply over a DEALER socket, shared by the three service clients."""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Union

import zmq

from . import _codec
from ._client_socket import ClientSocket, EVENT_FAILED_AUTH
from .errors import NotEnrolled, ProtocolError, TimeoutError, error_from_reply
from .security import CurveKeys

log = logging.getLogger("rmon")


class RpcClient:
    """One request in flight at a time over a DEALER socket.

    Requests go out as ``["", request]`` (the REQ envelope, which every
    service's ROUTER accepts) and the reply is the last frame back. A request
    that gets no reply within ``timeout_ms`` raises :class:`rmon.TimeoutError`
    and the socket is thrown away (``linger`` 0), so a reply arriving late can
    never be read as the answer to a later request. The next request connects
    a fresh socket.

    With ``curve`` the socket is a CURVE client. When the server refuses the
    key at the handshake, the request raises :class:`rmon.NotEnrolled` as
    soon as the refusal is known (not after ``timeout_ms``), ``key not
    enrolled: <public key>`` is logged (logger ``rmon``), and a fresh socket
    is connected once a backoff has passed (100 ms doubling to 5 s); until
    then requests raise ``NotEnrolled`` at once, sending nothing.

    Several endpoints (replicas of a service on a shared store): requests go
    to one of them; a request that gets no reply within ``timeout_ms`` is
    sent again to the next endpoint, once around the list, and the client
    stays with the endpoint that answered (a ``submit`` with an
    ``idempotency_key`` is safe to send twice; a ``lease`` whose answer was
    lost is taken back by reconciliation).

    Thread safety: an internal lock serialises requests, so one client may be
    shared by threads (they take turns); for parallel requests give each
    thread its own client. Not fork-safe: create clients after forking.
    """

    #: Default endpoint of the service (overridden by subclasses).
    DEFAULT_ENDPOINT = ""
    #: The service's name, as its public key file is named (``<SERVICE>.key``).
    SERVICE = ""
    #: The service drops the connection of a peer sending a bigger frame.
    MAX_REQUEST_BYTES = _codec.MAX_FRAME
    #: Replies bigger than this are refused by the socket.
    MAX_REPLY_BYTES = _codec.MAX_REPLY_FRAME

    def __init__(
        self,
        endpoint: Union[None, str, Sequence[str]] = None,
        timeout_ms: int = 5000,
        *,
        context: Optional[zmq.Context] = None,
        curve: Optional[CurveKeys] = None,
    ) -> None:
        """
        Args:
            endpoint: ZeroMQ endpoint of the service's API (``tcp://host:port``
                or ``ipc://path``), or a list of them (replicas); the
                service's default when None.
            timeout_ms: how long a request waits for its reply.
            context: the ZeroMQ context; ``zmq.Context.instance()`` when None.
            curve: this client's CURVE keys with the server's public key
                (e.g. ``CurveKeys.for_service(secret_file, servers_dir,
                cls.SERVICE)``); None for a plain connection (``--security off``).
        """
        given = endpoint if endpoint is not None else self.DEFAULT_ENDPOINT
        endpoints = [given] if isinstance(given, str) else given
        if (
            isinstance(given, (bytes, bytearray))
            or not isinstance(endpoints, (list, tuple))
            or not endpoints
            or not all(isinstance(e, str) and e for e in endpoints)
        ):
            raise ValueError("endpoint must be a non-empty str or a non-empty list of them")
        #: Every endpoint, in the order they are tried.
        self.endpoints: List[str] = list(endpoints)
        self._current = 0
        if curve is not None and not isinstance(curve, CurveKeys):
            raise ValueError(f"curve must be a rmon.CurveKeys or None, not {type(curve).__name__}")
        self.timeout_ms = _codec.check_uint(timeout_ms, "timeout_ms", minimum=1)
        self.curve = curve
        self._context = context if context is not None else zmq.Context.instance()
        self._socket: Optional[ClientSocket] = None
        self._lock = threading.Lock()
        self._closed = False

    # -- lifecycle ---------------------------------------------------------
    def close(self) -> None:
        """Closes the socket. Idempotent; a closed client refuses requests."""
        with self._lock:
            self._closed = True
            self._drop_socket()

    def __enter__(self) -> "RpcClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def endpoint(self) -> str:
        """The endpoint requests go to now."""
        return self.endpoints[self._current]

    def __repr__(self) -> str:
        curve = f", curve={self.curve.public_key_text!r}" if self.curve is not None else ""
        where = self.endpoint if len(self.endpoints) == 1 else self.endpoints
        return f"{type(self).__name__}({where!r}, timeout_ms={self.timeout_ms}{curve})"

    def _drop_socket(self) -> None:
        # Only after a timeout or an error, or at close: the refusal backoff
        # lives in the ClientSocket, which a refusal keeps.
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def _connect(self) -> ClientSocket:
        if self._socket is None:
            self._socket = ClientSocket(
                self._context,
                zmq.DEALER,
                self.endpoint,
                self.curve,
                linger_ms=0,  # a refused DEALER with queued requests must not hold ctx.term()
                options=[(zmq.MAXMSGSIZE, self.MAX_REPLY_BYTES + 1024)],
            )
        return self._socket

    def _not_enrolled(self, cs: ClientSocket) -> NotEnrolled:
        assert self.curve is not None
        retry = cs.retry_in()
        when = f"; a fresh connection in {int(retry * 1000)} ms" if retry is not None else ""
        return NotEnrolled(
            f"{self.endpoint} refused the key {self.curve.public_key_text} at the handshake "
            f"(not in the server's clients directory, or a role this endpoint does not "
            f"admit){when}"
        )

    # -- requests ----------------------------------------------------------
    def request(self, op: str, **keys: Any) -> Dict[str, Any]:
        """Sends ``{v: 1, op, **keys}`` (keys whose value is None are left out)
        and returns the reply map when ``ok`` is true.

        Raises:
            RmonError subclass: the service answered ``ok: false``.
            rmon.TimeoutError: no reply within ``timeout_ms``.
            ProtocolError: the reply does not follow the contract.
            ValueError: the request is over the service's frame limit.
        """
        msg: Dict[str, Any] = {"v": _codec.VERSION, "op": op}
        msg.update(_codec.without_none(keys))
        return self.request_raw(_codec.encode(msg), op)

    def request_raw(self, frame: bytes, what: str = "request") -> Dict[str, Any]:
        """Sends one already encoded request frame and decodes the reply.

        For tests and tools; :meth:`request` is the usual way.
        """
        if len(frame) > self.MAX_REQUEST_BYTES:
            raise ValueError(
                f"{what} request is {len(frame)} bytes encoded; the service accepts at most "
                f"{self.MAX_REQUEST_BYTES}"
            )
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{type(self).__name__} is closed")
            tried: List[str] = []
            while True:
                try:
                    frames = self._exchange(frame, what)
                    break
                except TimeoutError:
                    tried.append(self.endpoint)
                    if len(tried) == len(self.endpoints):
                        if len(tried) == 1:
                            raise
                        raise TimeoutError(
                            f"no reply to '{what}' from {', '.join(tried)} within "
                            f"{self.timeout_ms} ms each"
                        ) from None
                    # No answer from this one: the next replica.
                    self._current = (self._current + 1) % len(self.endpoints)
        if not frames:
            raise ProtocolError("empty reply")
        return parse_reply(frames[-1], self.MAX_REPLY_BYTES)

    def _exchange(self, frame: bytes, what: str) -> List[bytes]:
        """One try on the current endpoint (under the lock)."""
        cs = self._connect()
        cs.maintain()  # a refused socket is replaced here once its backoff has passed
        if cs.waiting():
            raise self._not_enrolled(cs)
        try:
            cs.socket.send_multipart([b"", frame])
            return self._await_reply(cs, what)
        except zmq.ZMQError:
            self._drop_socket()
            raise

    def _await_reply(self, cs: ClientSocket, what: str) -> List[bytes]:
        """The reply's frames; raises NotEnrolled on a refusal, TimeoutError at the deadline."""
        deadline = time.monotonic() + self.timeout_ms / 1000.0
        poller = zmq.Poller()
        poller.register(cs.socket, zmq.POLLIN)
        if cs.events is not None:
            poller.register(cs.events, zmq.POLLIN)
        while True:
            remaining = deadline - time.monotonic()
            ready = dict(poller.poll(max(0, math.ceil(remaining * 1000)))) if remaining > 0 else {}
            if cs.socket in ready:
                return cs.socket.recv_multipart()
            if cs.events is not None and cs.events in ready:
                if EVENT_FAILED_AUTH in cs.poll_events():
                    # libzmq will not retry: nothing was delivered; the
                    # socket is replaced after the backoff.
                    raise self._not_enrolled(cs)
                continue
            if time.monotonic() >= deadline:
                self._drop_socket()
                raise TimeoutError(
                    f"no reply to '{what}' from {self.endpoint} within {self.timeout_ms} ms"
                )


def parse_reply(frame: bytes, max_bytes: int = _codec.MAX_REPLY_FRAME) -> Dict[str, Any]:
    """Decodes a reply frame: returns the map when ``ok`` is true, raises otherwise."""
    reply = _codec.decode_map(frame, max_bytes, "reply")
    if "v" in reply and (not _codec.is_uint(reply["v"]) or reply["v"] != _codec.VERSION):
        raise ProtocolError(f"reply has protocol version {reply['v']!r}, expected 1")
    ok = reply.get("ok")
    if not isinstance(ok, bool):
        raise ProtocolError("reply has no boolean 'ok'")
    if ok:
        return reply
    code = reply.get("error")
    detail = reply.get("detail", "")
    if not isinstance(code, str) or not code:
        raise ProtocolError("error reply has no 'error' code")
    if not isinstance(detail, str):
        detail = repr(detail)
    raise error_from_reply(code, detail)


def expect(reply: Dict[str, Any], key: str, check, what: str) -> Any:
    """``reply[key]`` after checking it with ``check``; ProtocolError otherwise."""
    if key not in reply:
        raise ProtocolError(f"'{what}' reply has no '{key}'")
    value = reply[key]
    if not check(value):
        raise ProtocolError(f"'{what}' reply has a mistyped '{key}': {value!r}")
    return value
