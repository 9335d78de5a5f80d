"""rmon: Python clients of the runner-monitoring stack (protocol version 1).

Pure Python over ZeroMQ (pyzmq) and MessagePack (msgpack):

- :class:`HeartbeatPublisher`: a runner's heartbeats to the runner-monitor.
- :class:`TaskQueueClient`: the task-queue API (submit, lease, complete, fail, ...).
- :class:`PoolManagerClient`: the pool-manager API (acquire, release, status, ...).
- :class:`RunnerMonitorClient`: the monitor's control API, plus the method
  names of the in-process ``RunnerMonitor`` it replaces.
- :class:`TimeoutConsumer`: a consumer group's ``runner_timeout`` events,
  acknowledged after its handler returns.

Errors are :class:`RmonError` subclasses chosen by the service's error code.

With ``--security curve`` every client takes ``curve=`` a :class:`CurveKeys`
(its own key pair and the server's public key): ``CurveKeys.for_service(
secret_file, servers_dir, "runner-monitor")``, or ``CurveKeys.from_env(...)``
(None when security is off). A key the server refuses at the handshake raises
:class:`NotEnrolled` (request clients) or is logged and retried (publisher,
consumer); an op the key's role may not do raises :class:`Forbidden`.
"""

from ._codec import MAX_FRAME, MAX_HEARTBEAT_FRAME, MAX_PROGRESS_BYTES, POOL_TYPES, VERSION
from .consumer import TimeoutConsumer, decode_timeout_event, encode_ack
from .errors import (
    BadRequest,
    Conflict,
    Exists,
    Forbidden,
    Internal,
    NotEnrolled,
    NotFound,
    PoolFull,
    ProtocolError,
    RmonError,
    StaleAttempt,
    TimeoutError,
    Unavailable,
    UnknownOp,
)
from .heartbeat import HeartbeatPublisher
from .monitor import RunnerMonitorClient
from .pool_manager import PoolManagerClient
from .security import SERVICES, ClientSecurity, CurveKeys, curve_available
from .task_queue import TaskQueueClient

__version__ = "0.1.0"
PROTOCOL_VERSION = VERSION

__all__ = [
    "HeartbeatPublisher",
    "TaskQueueClient",
    "PoolManagerClient",
    "RunnerMonitorClient",
    "TimeoutConsumer",
    "CurveKeys",
    "ClientSecurity",
    "curve_available",
    "SERVICES",
    "decode_timeout_event",
    "encode_ack",
    "RmonError",
    "NotFound",
    "StaleAttempt",
    "Conflict",
    "PoolFull",
    "BadRequest",
    "Unavailable",
    "UnknownOp",
    "Exists",
    "Internal",
    "Forbidden",
    "NotEnrolled",
    "ProtocolError",
    "TimeoutError",
    "PROTOCOL_VERSION",
    "POOL_TYPES",
    "MAX_FRAME",
    "MAX_HEARTBEAT_FRAME",
    "MAX_PROGRESS_BYTES",
]
