"""Fake ZeroMQ context and socket recording what is sent (unit tests)."""

from __future__ import annotations

import threading
from typing import Any, List


class FakeSocket:
    def __init__(self, kind: int) -> None:
        self.kind = kind
        self.options: dict = {}
        self.connected: List[str] = []
        self.sent: List[List[bytes]] = []
        self.sent_at: List[float] = []
        self.closed = False
        self.cond = threading.Condition()

    def setsockopt(self, opt: int, value: Any) -> None:
        self.options[opt] = value

    def connect(self, endpoint: str) -> None:
        self.connected.append(endpoint)

    def send_multipart(self, frames: List[bytes], flags: int = 0) -> None:
        import time

        assert not self.closed, "send on a closed socket"
        with self.cond:
            self.sent.append([bytes(f) for f in frames])
            self.sent_at.append(time.monotonic())
            self.cond.notify_all()

    def send(self, frame: bytes, flags: int = 0) -> None:
        self.send_multipart([frame], flags)

    def close(self, linger: Any = None) -> None:
        self.closed = True

    def wait_for(self, n: int, timeout: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.sent) >= n, timeout)


class FakeContext:
    def __init__(self) -> None:
        self.sockets: List[FakeSocket] = []

    def socket(self, kind: int) -> FakeSocket:
        s = FakeSocket(kind)
        self.sockets.append(s)
        return s
