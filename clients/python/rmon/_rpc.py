"""Request/reply over a DEALER socket, shared by the three service clients."""

from __future__ import annotations

import logging
import threading
from typing import Any, Dict, Optional

import zmq

from . import _codec
from .errors import ProtocolError, TimeoutError, error_from_reply

log = logging.getLogger("rmon")


class RpcClient:
    """One request in flight at a time over a DEALER socket.

    Requests go out as ``["", request]`` (the REQ envelope, which every
    service's ROUTER accepts) and the reply is the last frame back. A request
    that gets no reply within ``timeout_ms`` raises :class:`rmon.TimeoutError`
    and the socket is thrown away (``linger`` 0), so a reply arriving late can
    never be read as the answer to a later request. The next request connects
    a fresh socket.

    Thread safety: an internal lock serialises requests, so one client may be
    shared by threads (they take turns); for parallel requests give each
    thread its own client. Not fork-safe: create clients after forking.
    """

    #: Default endpoint of the service (overridden by subclasses).
    DEFAULT_ENDPOINT = ""
    #: The service drops the connection of a peer sending a bigger frame.
    MAX_REQUEST_BYTES = _codec.MAX_FRAME
    #: Replies bigger than this are refused by the socket.
    MAX_REPLY_BYTES = _codec.MAX_REPLY_FRAME

    def __init__(
        self,
        endpoint: Optional[str] = None,
        timeout_ms: int = 5000,
        *,
        context: Optional[zmq.Context] = None,
    ) -> None:
        """
        Args:
            endpoint: ZeroMQ endpoint of the service's API (``tcp://host:port``
                or ``ipc://path``); the service's default when None.
            timeout_ms: how long a request waits for its reply.
            context: the ZeroMQ context; ``zmq.Context.instance()`` when None.
        """
        self.endpoint = endpoint or self.DEFAULT_ENDPOINT
        if not isinstance(self.endpoint, str) or not self.endpoint:
            raise ValueError("endpoint must be a non-empty str")
        self.timeout_ms = _codec.check_uint(timeout_ms, "timeout_ms", minimum=1)
        self._context = context if context is not None else zmq.Context.instance()
        self._socket: Optional[zmq.Socket] = None
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

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.endpoint!r}, timeout_ms={self.timeout_ms})"

    def _drop_socket(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def _connect(self) -> zmq.Socket:
        if self._socket is None:
            s = self._context.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.MAXMSGSIZE, self.MAX_REPLY_BYTES + 1024)
            s.connect(self.endpoint)
            self._socket = s
        return self._socket

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
            sock = self._connect()
            try:
                sock.send_multipart([b"", frame])
                if not sock.poll(self.timeout_ms, zmq.POLLIN):
                    self._drop_socket()
                    raise TimeoutError(
                        f"no reply to '{what}' from {self.endpoint} within {self.timeout_ms} ms"
                    )
                frames = sock.recv_multipart()
            except zmq.ZMQError:
                self._drop_socket()
                raise
        if not frames:
            raise ProtocolError("empty reply")
        return parse_reply(frames[-1], self.MAX_REPLY_BYTES)


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
