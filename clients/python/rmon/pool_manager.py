"""Client of the pool-manager service's API (ROUTER, default ``tcp://127.0.0.1:5561``)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from . import _codec
from ._rpc import RpcClient, expect
from .security import POOL_MANAGER_SERVICE


class PoolManagerClient(RpcClient):
    """Every op of the pool-manager API: acquire, release, status, stats, ping.

    Errors raise :class:`rmon.RmonError` subclasses (``PoolFull``,
    ``NotFound``, ``Conflict``, ``StaleAttempt``, ``BadRequest``, ...); no
    reply in time raises :class:`rmon.TimeoutError`. Requests are serialised
    by a lock, so a client may be shared between threads.
    """

    DEFAULT_ENDPOINT = "tcp://127.0.0.1:5561"
    SERVICE = POOL_MANAGER_SERVICE

    def ping(self) -> int:
        """Checks the service answers; returns its protocol version."""
        return expect(self.request("ping"), "version", _codec.is_uint, "ping")

    def acquire(self, pool: str, runner_id: str, task_id: str, attempt: int) -> int:
        """Takes a slot of ``pool`` for one task attempt; returns the slot index.

        Acquiring again for the same runner and attempt returns the same slot.
        Raises ``PoolFull`` when no slot is free, ``NotFound`` for an unknown
        pool, ``Conflict`` when the runner holds a slot there for another
        attempt.
        """
        _codec.check_id(pool, "pool")
        _codec.check_id(runner_id, "runner_id")
        _codec.check_id(task_id, "task_id")
        _codec.check_uint(attempt, "attempt", minimum=1)
        r = self.request("acquire", pool=pool, runner_id=runner_id, task_id=task_id, attempt=attempt)
        return expect(r, "slot", _codec.is_uint, "acquire")

    def release(self, runner_id: str, pool: Optional[str] = None) -> bool:
        """Releases what ``runner_id`` holds (in ``pool``, or everywhere).

        Returns False when it held nothing; never an error for that.
        """
        _codec.check_id(runner_id, "runner_id")
        _codec.check_opt_str(pool, "pool", _codec.MAX_ID_BYTES)
        r = self.request("release", runner_id=runner_id, pool=pool)
        return expect(r, "released", lambda v: isinstance(v, bool), "release")

    def status(self, pool: Optional[str] = None) -> List[Dict[str, Any]]:
        """Pools as maps of ``name``, ``type``, ``slots``, ``in_use`` and
        ``holders`` (maps of ``slot``, ``runner_id``, ``task_id``, ``attempt``,
        ``since_ms``). With ``pool``, that pool only (``NotFound`` if unknown).
        """
        _codec.check_opt_str(pool, "pool", _codec.MAX_ID_BYTES)
        r = self.request("status", pool=pool)
        return expect(r, "pools", lambda v: isinstance(v, list), "status")

    def stats(self) -> Dict[str, Any]:
        """Counters: ``acquired``, ``released``, ``released_by_timeout``,
        ``events_applied``, ``events_ignored`` (and what the service adds)."""
        r = self.request("stats")
        r.pop("ok", None)
        return r
