"""Client of the runner-monitor's control API (ROUTER, default ``tcp://127.0.0.1:5559``)."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from . import _codec
from ._rpc import RpcClient, expect
from .security import MONITOR_SERVICE
from .errors import NotFound, ProtocolError

RUNNER_STATES = ("running", "suspect", "completed", "failed")
SETTABLE_STATES = ("running", "completed", "failed")


def _state_name(state: Any) -> str:
    # Accepts enum members whose value is the state word (as an in-process
    # monitor's RunnerState enum might be).
    value = getattr(state, "value", state)
    if not isinstance(value, str):
        raise ValueError(f"state must be a str, not {type(state).__name__}")
    return value.lower()


class RunnerMonitorClient(RpcClient):
    """The monitor's control and query API.

    Runner maps have the heartbeat's keys plus ``state`` (``running``,
    ``suspect``, ``completed``, ``failed``), ``last_seq``,
    ``last_heartbeat_ms``, ``silence_ms``, ``timeout_ms`` and ``added_at_ms``.

    Besides the protocol's ops (:meth:`ping`, :meth:`get`, :meth:`list`,
    :meth:`count`, :meth:`add`, :meth:`remove`, :meth:`set_state`,
    :meth:`stats`, :meth:`lookup`) it offers the method names of the in-process
    ``RunnerMonitor`` it replaces: :meth:`add_runner`, :meth:`remove_runner`,
    :meth:`get_runner_status`, :meth:`get_all_runners`,
    :meth:`get_running_count`, :meth:`update_runner_state`.
    """

    DEFAULT_ENDPOINT = "tcp://127.0.0.1:5559"
    SERVICE = MONITOR_SERVICE
    #: A ``lookup`` of 1000 full-length ids is over the other services' 64 KiB.
    MAX_REQUEST_BYTES = _codec.MAX_CONTROL_REQUEST_FRAME

    # -- the protocol's ops ------------------------------------------------
    def ping(self) -> int:
        """Checks the monitor answers; returns its protocol version."""
        return expect(self.request("ping"), "version", _codec.is_uint, "ping")

    def get(self, runner_id: str) -> Dict[str, Any]:
        """The runner map; raises ``NotFound`` for an unknown runner."""
        _codec.check_id(runner_id, "runner_id")
        r = self.request("get", runner_id=runner_id)
        return expect(r, "runner", lambda v: isinstance(v, dict), "get")

    def list(
        self,
        state: Optional[str] = None,
        pool: Optional[str] = None,
        limit: Optional[int] = None,
        after: Optional[str] = None,
    ) -> Tuple[List[Dict[str, Any]], bool]:
        """One page of runners sorted by ``runner_id``; returns ``(runners, more)``.

        ``limit`` defaults to the monitor's (1000). ``more`` says further
        runners match: call again with ``after`` set to the last id returned,
        or use :meth:`iter_runners`.
        """
        if state is not None:
            _codec.check_choice(state, "state", RUNNER_STATES)
        _codec.check_opt_str(pool, "pool", _codec.MAX_ID_BYTES)
        if limit is not None:
            _codec.check_uint(limit, "limit", minimum=1)
        _codec.check_opt_str(after, "after", _codec.MAX_ID_BYTES)
        r = self.request("list", state=state, pool=pool, limit=limit, after=after)
        runners = expect(r, "runners", lambda v: isinstance(v, list), "list")
        # `more` is this project's addition; a monitor without it sends none.
        more = r.get("more", False)
        if not isinstance(more, bool):
            raise ProtocolError(f"'list' reply has a mistyped 'more': {more!r}")
        return runners, more

    def iter_runners(
        self, state: Optional[str] = None, pool: Optional[str] = None, page_size: int = 1000
    ) -> Iterator[Dict[str, Any]]:
        """Every matching runner, fetching pages of ``page_size`` as it goes."""
        after: Optional[str] = None
        while True:
            runners, more = self.list(state=state, pool=pool, limit=page_size, after=after)
            yield from runners
            if not more or not runners:
                return
            after = runners[-1]["runner_id"]

    def count(self, state: Optional[str] = None, pool: Optional[str] = None) -> int:
        """How many runners match (both filters combine)."""
        if state is not None:
            _codec.check_choice(state, "state", RUNNER_STATES)
        _codec.check_opt_str(pool, "pool", _codec.MAX_ID_BYTES)
        return expect(self.request("count", state=state, pool=pool), "count", _codec.is_uint, "count")

    def add(self, runner: Mapping[str, Any]) -> None:
        """Registers a runner before its first heartbeat.

        ``runner`` has a heartbeat's keys without ``v`` and ``seq``: at least
        ``runner_id``, ``task_id``, ``pool``, ``pool_type``; optionally
        ``attempt``, ``pid``/``container_id``/``job_name``, ``timeout_ms``,
        ``interval_ms``, ``progress``, and ``state`` (``running`` when left
        out; the monitor requires it). Raises ``Exists`` when the runner is
        live, ``Conflict`` when it would bring back an ended attempt.
        """
        if not isinstance(runner, Mapping):
            raise ValueError("runner must be a mapping")
        r = dict(runner)
        r.setdefault("state", "running")
        _codec.check_choice(r["state"], "state", _codec.HEARTBEAT_STATES)
        for key in ("runner_id", "task_id", "pool"):
            _codec.check_id(r.get(key), key)
        _codec.check_choice(r.get("pool_type"), "pool_type", _codec.POOL_TYPES)
        self.request("add", runner=r)

    def remove(self, runner_id: str) -> bool:
        """Forgets a runner; returns False when it was unknown."""
        _codec.check_id(runner_id, "runner_id")
        r = self.request("remove", runner_id=runner_id)
        return expect(r, "removed", lambda v: isinstance(v, bool), "remove")

    def set_state(self, runner_id: str, state: str) -> None:
        """Sets a runner's state: ``running`` (restarts its timer), ``completed``
        or ``failed`` (ends the attempt without a timeout event).

        Raises ``NotFound`` for an unknown runner, ``Conflict`` for ``running``
        on an attempt that timed out.
        """
        _codec.check_id(runner_id, "runner_id")
        _codec.check_choice(state, "state", SETTABLE_STATES)
        self.request("set_state", runner_id=runner_id, state=state)

    def lookup(self, runner_ids: Sequence[str]) -> List[Optional[Dict[str, Any]]]:
        """The short state of each runner, for reconciliation: a list in the
        order of ``runner_ids`` (1 to 1000 ids; a repeated id is answered each
        time), each None when the monitor does not know that runner, else a
        dict with exactly ``task_id``, ``attempt``, ``state`` (``running``,
        ``suspect``, ``completed``, ``failed``), ``timed_out`` (True: failed
        because this attempt timed out) and ``state_for_ms`` (how long it has
        been in that state).

        Raises ``ValueError`` for an empty or too long list or a bad id (the
        monitor would answer ``bad_request``), ``ProtocolError`` when the
        reply does not hold one entry per id.
        """
        if isinstance(runner_ids, (str, bytes)) or not isinstance(runner_ids, Sequence):
            raise ValueError("runner_ids must be a list of str")
        ids = list(runner_ids)
        if not 1 <= len(ids) <= _codec.MAX_LOOKUP_IDS:
            raise ValueError(f"runner_ids must hold 1 to {_codec.MAX_LOOKUP_IDS} ids, got {len(ids)}")
        for i, runner_id in enumerate(ids):
            _codec.check_id(runner_id, f"runner_ids[{i}]")
        r = self.request("lookup", runner_ids=ids)
        runners = expect(
            r,
            "runners",
            lambda v: isinstance(v, list)
            and len(v) == len(ids)
            and all(e is None or isinstance(e, dict) for e in v),
            "lookup",
        )
        return runners

    def stats(self) -> Dict[str, Any]:
        """Counters: ``heartbeats``, ``rejected``, ``duplicates``, ``late``,
        ``stale_attempts``, ``timeouts``, ``runners``, ``running``,
        ``suspect``, ``completed``, ``failed``, ``events_pending``,
        ``redeliveries``, ``acks``, the storm brake's and stall guard's
        ``brake_engaged``, ``brake_held``, ``brake_since_ms``,
        ``brake_engagements``, ``stalled``, ``stalls``, ``stall_hold_expired``,
        ``backlog_alerts``, ``lookups``, and ``pending_<group>`` per
        consumer group."""
        r = self.request("stats")
        r.pop("ok", None)
        return r

    def release_brake(self) -> bool:
        """Releases the monitor's storm brake (an operator's decision): the
        runners it holds time out at once. Returns whether it was engaged."""
        r = self.request("release_brake")
        return bool(r.get("brake_engaged", 0))

    # -- the in-process RunnerMonitor's names --------------------------------
    def add_runner(
        self, runner_id: str, task_id: str, pool: str, pool_type: str = "local-process", **extra: Any
    ) -> None:
        """Alias of :meth:`add`: ``extra`` holds the other runner keys
        (``attempt``, ``pid``, ``timeout_ms``, ...). Raises as :meth:`add`."""
        runner: Dict[str, Any] = dict(extra)
        runner.update(runner_id=runner_id, task_id=task_id, pool=pool, pool_type=pool_type)
        self.add(runner)

    def remove_runner(self, runner_id: str) -> bool:
        """Alias of :meth:`remove`: True when the runner was known and is now forgotten."""
        return self.remove(runner_id)

    def get_runner_status(self, runner_id: str) -> Optional[str]:
        """The runner's state word (``running``, ``suspect``, ``completed``,
        ``failed``), or None when the monitor does not know it."""
        try:
            return self.get(runner_id).get("state")
        except NotFound:
            return None

    def get_all_runners(self) -> List[Dict[str, Any]]:
        """Every runner map the monitor knows, paging through all of them."""
        return list(self.iter_runners())

    def get_running_count(self, include_suspect: bool = False) -> int:
        """How many runners are in state ``running`` (with ``include_suspect``,
        also those shown as ``suspect``: silent for part of their timeout)."""
        n = self.count(state="running")
        if include_suspect:
            n += self.count(state="suspect")
        return n

    def update_runner_state(self, runner_id: str, state: Any) -> bool:
        """Alias of :meth:`set_state`; ``state`` may also be an enum whose value
        is the word. Returns False when the runner is unknown."""
        try:
            self.set_state(runner_id, _state_name(state))
        except NotFound:
            return False
        return True
