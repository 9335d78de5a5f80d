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
    )
}


def error_from_reply(code: str, detail: str) -> RmonError:
    """The exception for a service's ``{ok: false, error: code, detail}`` reply."""
    cls = _BY_CODE.get(code)
    if cls is None:
        return RmonError(detail, code=code)
    return cls(detail)
