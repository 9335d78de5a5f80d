"""MessagePack encoding and strict decoding per the wire contract (v1).

Every message is one MessagePack map with string keys. Encoding uses the
MessagePack 2.0 format (``use_bin_type=True``: ``bytes`` go out as bin,
``str`` as str). Decoding gives ``str`` for str and ``bytes`` for bin, and
enforces the contract's size limits before anything is unpacked.

Strings that are not valid UTF-8 (possible inside opaque values such as a
task's ``payload`` written by another client) decode with
``surrogateescape`` and encode back the same way, so such values round-trip
byte for byte; identifiers are always checked to be valid UTF-8.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

import msgpack

from .errors import ProtocolError

VERSION = 1

#: Identifiers (runner_id, task_id, pool, group, event_id): 1 to 128 bytes.
MAX_ID_BYTES = 128
#: container_id, job_name: at most 256 bytes.
MAX_SHORT_STRING = 256
#: A heartbeat frame.
MAX_HEARTBEAT_FRAME = 8 * 1024
#: ``progress`` once encoded.
MAX_PROGRESS_BYTES = 4 * 1024
#: Event, ack and request frames (the monitor's control requests: below).
MAX_FRAME = 64 * 1024
#: The monitor's control requests: room for a ``lookup`` of MAX_LOOKUP_IDS
#: ids of MAX_ID_BYTES bytes (~131 KB).
MAX_CONTROL_REQUEST_FRAME = 160 * 1024
#: Runner ids in one ``lookup``.
MAX_LOOKUP_IDS = 1000
#: Replies to clients.
MAX_REPLY_FRAME = 64 * 1024 * 1024
#: Nesting of maps and arrays in an event.
MAX_DEPTH = 32

POOL_TYPES = ("local-process", "docker", "kubernetes")
HEARTBEAT_STATES = ("running", "completed", "failed")

_UNICODE_ERRORS = "surrogateescape"


def encode(obj: Any) -> bytes:
    """Encodes one value (normally a dict with str keys) as MessagePack."""
    return msgpack.packb(obj, use_bin_type=True, unicode_errors=_UNICODE_ERRORS)


def encoded_size(obj: Any) -> int:
    """The size of ``obj`` once encoded; raises TypeError when it cannot be."""
    return len(encode(obj))


def decode_map(frame: bytes, max_bytes: int, what: str = "message") -> Dict[str, Any]:
    """Decodes exactly one MessagePack map with string keys from ``frame``.

    Raises :class:`ProtocolError` (code ``malformed`` or ``too_large``) when the
    frame is larger than ``max_bytes``, is not valid MessagePack, has trailing
    bytes, is not a map, or has a key that is not a str.
    """
    if len(frame) > max_bytes:
        raise ProtocolError(
            f"{what} of {len(frame)} bytes is over the limit of {max_bytes}", code="too_large"
        )
    unpacker = msgpack.Unpacker(
        raw=False,
        strict_map_key=True,
        unicode_errors=_UNICODE_ERRORS,
        max_buffer_size=max(max_bytes, 1),
    )
    try:
        unpacker.feed(frame)
        obj = unpacker.unpack()
    except msgpack.OutOfData:
        raise ProtocolError(f"{what} is truncated or empty", code="malformed") from None
    except Exception as e:  # FormatError, StackError, ValueError, ...
        raise ProtocolError(f"{what} is not MessagePack: {e}", code="malformed") from None
    if unpacker.tell() != len(frame):
        raise ProtocolError(f"{what} has trailing bytes", code="malformed")
    if not isinstance(obj, dict):
        raise ProtocolError(f"{what} is not a map", code="malformed")
    for k in obj:
        if not isinstance(k, str):
            raise ProtocolError(f"{what} has a key that is not a string", code="malformed")
    return obj


def depth(obj: Any, limit: int = MAX_DEPTH) -> int:
    """Nesting depth of maps and arrays (a scalar is 0); stops counting past ``limit``."""
    best = 0
    stack = [(obj, 0)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, dict):
            d += 1
            children = list(o.keys()) + list(o.values())
        elif isinstance(o, (list, tuple)):
            d += 1
            children = list(o)
        else:
            continue
        best = max(best, d)
        if best > limit:
            return best
        stack.extend((c, d) for c in children)
    return best


def is_uint(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def utf8_len(s: str) -> Optional[int]:
    """Byte length of ``s`` in UTF-8, or None when it is not valid UTF-8."""
    try:
        return len(s.encode("utf-8"))
    except UnicodeEncodeError:
        return None


def check_id(value: Any, name: str, max_bytes: int = MAX_ID_BYTES) -> str:
    """Checks an identifier (1..max_bytes bytes of UTF-8); raises ValueError."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a str, not {type(value).__name__}")
    n = utf8_len(value)
    if n is None:
        raise ValueError(f"{name} is not valid UTF-8")
    if n < 1 or n > max_bytes:
        raise ValueError(f"{name} must be 1 to {max_bytes} bytes of UTF-8, got {n}")
    return value


def check_opt_str(value: Any, name: str, max_bytes: int = MAX_SHORT_STRING) -> Optional[str]:
    if value is None:
        return None
    return check_id(value, name, max_bytes)


def check_uint(value: Any, name: str, minimum: int = 0) -> int:
    """Checks an unsigned integer (not a bool) of at least ``minimum``; raises ValueError."""
    if not is_int(value):
        raise ValueError(f"{name} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    if value >= 1 << 64:
        raise ValueError(f"{name} does not fit in 64 bits")
    return value


def check_int(value: Any, name: str) -> int:
    if not is_int(value):
        raise ValueError(f"{name} must be an int, not {type(value).__name__}")
    if not -(1 << 63) <= value < (1 << 63):
        raise ValueError(f"{name} does not fit in a signed 64-bit integer")
    return value


def check_choice(value: Any, name: str, choices: tuple) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def without_none(d: Mapping[str, Any]) -> Dict[str, Any]:
    """A copy of ``d`` without the keys whose value is None (optional keys left out)."""
    return {k: v for k, v in d.items() if v is not None}
