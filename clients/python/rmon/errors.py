"""Exceptions raised by the rmon clients.

Every error a service answers (``{ok: false, error, detail}``) becomes an
:class:`RmonError` subclass chosen by its ``error`` code, so callers can write
``except rmon.StaleAttempt:``. Codes this package does not know become a plain
:class:`RmonError` carrying the code.
"""

from __future__ import annotations

import builtins
from typing import Dict, Optional, Type


class RmonError(Exception):
    """Base class of every error of this package.

    Attributes:
        code: the service's error code (``"not_found"``, ``"conflict"``, ...),
            or ``"timeout"`` / ``"malformed_reply"`` for client-side failures.
        detail: the service's explanation (free text), or the client's.
    """

    code: str = "error"

    def __init__(self, detail: str = "", code: Optional[str] = None) -> None:
        super().__init__(detail)
        if code is not None:
            self.code = code
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}" if self.detail else self.code

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, detail={self.detail!r})"


class NotFound(RmonError):
    """The runner, task or pool does not exist (``not_found``)."""

    code = "not_found"


class StaleAttempt(RmonError):
    """The call names an attempt that is no longer the task's current leased one."""

    code = "stale_attempt"


class Conflict(RmonError):
    """The call contradicts the current state (e.g. completing an ended task)."""

    code = "conflict"


class PoolFull(RmonError):
    """No free slot in the pool (``pool_full``)."""

    code = "pool_full"


class BadRequest(RmonError):
    """The service could not accept the request (missing or mistyped key, ...)."""

    code = "bad_request"


class Unavailable(RmonError):
    """The service cannot serve the request now (storage failure, queue full); retry later."""

    code = "unavailable"


class UnknownOp(RmonError):
    """The service does not know the requested op (``unknown_op``)."""

    code = "unknown_op"


class Exists(RmonError):
    """The monitor's ``add`` named a runner that is live (``exists``)."""

    code = "exists"


class Internal(RmonError):
    """The service failed on a bug rather than on the request (``internal``)."""

    code = "internal"


class Forbidden(RmonError):
    """The service knows the caller's key but its role may not do this (``forbidden``).

    Only with ``--security curve``. ``detail`` names the principal and the op.
    Also the answer on an open connection once the caller's key is removed
    from the server's clients directory.
    """

    code = "forbidden"


class NotEnrolled(RmonError):
    """The server refused this client's CURVE key at the handshake (ZAP status 400).

    Its public key is not in the server's clients directory, or its role may
    not use that endpoint at all (a ``submitter`` on the monitor's control
    socket): the server answers both the same way. The request was never
    delivered, so it is safe to repeat. The client logs
    ``key not enrolled: <public key>`` and connects a fresh socket after a
    backoff (100 ms doubling to 5 s); until then requests raise this at once.
    """

    code = "not_enrolled"


class ProtocolError(RmonError):
    """A reply or event that does not follow the wire contract."""

    code = "malformed_reply"


class TimeoutError(RmonError, builtins.TimeoutError):  # noqa: A001 (shadows on purpose)
    """No reply within the client's timeout.

    The request may or may not have been applied by the service. The client
    has discarded its socket, so a late reply is never taken for the answer to
    a later request. Also a :class:`builtins.TimeoutError`.
    """

    code = "timeout"


_BY_CODE: Dict[str, Type[RmonError]] = {
    cls.code: cls
    for cls in (
        NotFound,
        StaleAttempt,
        Conflict,
        PoolFull,
        BadRequest,
        Unavailable,
        UnknownOp,
        Exists,
        Internal,
        Forbidden,
    )
}


def error_from_reply(code: str, detail: str) -> RmonError:
    """The exception for a service's ``{ok: false, error: code, detail}`` reply."""
    cls = _BY_CODE.get(code)
    if cls is None:
        return RmonError(detail, code=code)
    return cls(detail)
