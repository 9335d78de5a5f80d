"""Client of the task-queue service's API (ROUTER, default ``tcp://127.0.0.1:5560``)."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional, Tuple

from . import _codec
from ._rpc import RpcClient, expect
from .security import TASK_QUEUE_SERVICE

TASK_STATES = ("queued", "leased", "completed", "dead", "cancelled")

#: ``payload`` and ``result``: at most 64 KiB once encoded.
MAX_PAYLOAD_BYTES = 64 * 1024


def _is_list(v: Any) -> bool:
    return isinstance(v, list)


class TaskQueueClient(RpcClient):
    """Every op of the task-queue API.

    A task is returned as the service's task map (a dict): ``task_id``,
    ``state``, ``attempt``, ``max_attempts``, ``priority``, ``payload``,
    ``runner_id`` (while leased), ``pool``, ``idempotency_key``,
    ``created_at_ms``, ``updated_at_ms``, ``available_at_ms``, ``last_error``,
    ``result`` (the last four only where present).

    Errors raise :class:`rmon.RmonError` subclasses (``NotFound``,
    ``StaleAttempt``, ``Conflict``, ``BadRequest``, ``Unavailable``, ...);
    no reply in time raises :class:`rmon.TimeoutError`. Requests are
    serialised by a lock, so a client may be shared between threads.
    """

    DEFAULT_ENDPOINT = "tcp://127.0.0.1:5560"
    SERVICE = TASK_QUEUE_SERVICE
    #: The task-queue accepts request frames up to 80 KiB (a 64 KiB payload plus keys).
    MAX_REQUEST_BYTES = MAX_PAYLOAD_BYTES + 16 * 1024

    def ping(self) -> int:
        """Checks the service answers; returns its protocol version."""
        return expect(self.request("ping"), "version", _codec.is_uint, "ping")

    def submit(
        self,
        payload: Any,
        priority: int = 0,
        max_attempts: int = 5,
        pool: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        delay_ms: int = 0,
    ) -> Tuple[str, bool]:
        """Queues a task; returns ``(task_id, created)``.

        ``created`` is False when a task with ``idempotency_key`` already
        exists: its id is returned and nothing else changes. ``payload`` is any
        MessagePack-encodable value (at most 64 KiB encoded); ``pool``
        restricts the task to runners leasing with that pool; ``delay_ms``
        postpones its first lease.
        """
        _codec.check_int(priority, "priority")
        _codec.check_uint(max_attempts, "max_attempts", minimum=1)
        _codec.check_opt_str(pool, "pool", _codec.MAX_ID_BYTES)
        _codec.check_opt_str(idempotency_key, "idempotency_key", _codec.MAX_SHORT_STRING)
        _codec.check_uint(delay_ms, "delay_ms")
        r = self.request(
            "submit",
            payload=payload,
            priority=priority,
            max_attempts=max_attempts,
            pool=pool,
            idempotency_key=idempotency_key,
            delay_ms=delay_ms,
        )
        task_id = expect(r, "task_id", lambda v: isinstance(v, str) and v, "submit")
        created = expect(r, "created", lambda v: isinstance(v, bool), "submit")
        return task_id, created

    def lease(self, runner_id: str, pool: Optional[str] = None) -> Optional[Dict[str, Any]]:
        """Leases the next available task for ``runner_id``, or returns None.

        With ``pool``, tasks of that pool or of none; without, only tasks of
        none. The returned task's ``attempt`` is the fencing token to give to
        :meth:`complete`, :meth:`fail`, the pool-manager and the heartbeats.
        """
        _codec.check_id(runner_id, "runner_id")
        _codec.check_opt_str(pool, "pool", _codec.MAX_ID_BYTES)
        r = self.request("lease", runner_id=runner_id, pool=pool)
        return expect(r, "task", lambda v: v is None or isinstance(v, dict), "lease")

    def complete(self, task_id: str, attempt: int, result: Any = None) -> None:
        """Completes the leased ``attempt`` of a task, storing ``result`` when given.

        Raises ``StaleAttempt`` when ``attempt`` is not the current leased
        attempt (e.g. the runner was presumed dead and the task requeued),
        ``Conflict`` when the task has already ended, ``NotFound``.
        """
        _codec.check_id(task_id, "task_id")
        _codec.check_uint(attempt, "attempt", minimum=1)
        self.request("complete", task_id=task_id, attempt=attempt, result=result)

    def fail(
        self, task_id: str, attempt: int, error: Optional[str] = None, retry: bool = True
    ) -> str:
        """Reports a failed attempt; returns the task's state after it.

        ``queued`` (retried after a backoff) or ``dead`` (``retry=False`` or no
        attempts left). Same errors as :meth:`complete`.
        """
        _codec.check_id(task_id, "task_id")
        _codec.check_uint(attempt, "attempt", minimum=1)
        if error is not None and not isinstance(error, str):
            raise ValueError("error must be a str")
        if not isinstance(retry, bool):
            raise ValueError("retry must be a bool")
        r = self.request("fail", task_id=task_id, attempt=attempt, error=error, retry=retry)
        return expect(r, "state", lambda v: isinstance(v, str), "fail")

    def cancel(self, task_id: str) -> str:
        """Cancels a queued or leased task; returns its state (``cancelled``).

        Cancelling a cancelled task succeeds again; a completed or dead one
        raises ``Conflict``.
        """
        _codec.check_id(task_id, "task_id")
        r = self.request("cancel", task_id=task_id)
        return expect(r, "state", lambda v: isinstance(v, str), "cancel")

    def get(self, task_id: str) -> Dict[str, Any]:
        """The task map; raises ``NotFound`` for an unknown task."""
        _codec.check_id(task_id, "task_id")
        return expect(self.request("get", task_id=task_id), "task", lambda v: isinstance(v, dict), "get")

    def list(
        self,
        state: Optional[str] = None,
        pool: Optional[str] = None,
        limit: int = 100,
        after: Optional[str] = None,
    ) -> Tuple[List[Dict[str, Any]], bool]:
        """One page of tasks in submission order; returns ``(tasks, more)``.

        ``more`` says further tasks match: call again with ``after`` set to the
        last ``task_id`` returned, or use :meth:`iter_tasks`. ``limit`` is
        capped by the service (1000).
        """
        if state is not None:
            _codec.check_choice(state, "state", TASK_STATES)
        _codec.check_opt_str(pool, "pool", _codec.MAX_ID_BYTES)
        _codec.check_uint(limit, "limit", minimum=1)
        _codec.check_opt_str(after, "after", _codec.MAX_ID_BYTES)
        r = self.request("list", state=state, pool=pool, limit=limit, after=after)
        tasks = expect(r, "tasks", _is_list, "list")
        more = expect(r, "more", lambda v: isinstance(v, bool), "list")
        return tasks, more

    def iter_tasks(
        self, state: Optional[str] = None, pool: Optional[str] = None, page_size: int = 100
    ) -> Iterator[Dict[str, Any]]:
        """Every matching task, fetching pages of ``page_size`` as it goes."""
        after: Optional[str] = None
        while True:
            tasks, more = self.list(state=state, pool=pool, limit=page_size, after=after)
            yield from tasks
            if not more or not tasks:
                return
            after = tasks[-1]["task_id"]

    def stats(self) -> Dict[str, Any]:
        """Counters: ``queued``, ``leased``, ``completed``, ``dead``,
        ``cancelled``, ``reassigned``, ``events_applied``, ``events_ignored``."""
        r = self.request("stats")
        r.pop("ok", None)
        return r
