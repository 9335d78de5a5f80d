"""CurveZMQ keys for the clients of a stack run with ``--security curve``.

Keys are CurveZMQ certificates in the format pyzmq's ``zmq.auth`` and czmq's
``zcert`` read and write: ``NAME.key`` holds a public key, ``NAME.key_secret``
the public and the secret key (keep it mode 0600). A client needs its own
``.key_secret`` and the public ``.key`` of the server it connects to.
``rmon-keygen init DIR`` writes them for a whole stack: the clients' pairs in
``DIR/clients/`` and the servers' public keys in ``DIR/servers/``, named after
the services (``runner-monitor.key``, ``task-queue.key``, ``pool-manager.key``).

The settings are those of the C++ client tools: ``security`` (``off`` or
``curve``), ``curve_secret_file`` (the client's own ``.key_secret``) and
``curve_servers_dir`` (the folder of the servers' public keys); see
:class:`ClientSecurity`. The environment variables carry a prefix of their
own (``RMON_CLIENT_`` by default): a client never reads the services'
``RMON_CURVE_SECRET_FILE``, which is a service's own secret.
"""

from __future__ import annotations

import argparse
import logging
import os
import stat
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Tuple, Union

import zmq
import zmq.auth
from zmq.utils import z85

log = logging.getLogger("rmon")

PathLike = Union[str, "os.PathLike[str]"]

SECURITY_MODES = ("off", "curve")
#: The services, as their public key files are named (``<service>.key``).
MONITOR_SERVICE = "runner-monitor"
TASK_QUEUE_SERVICE = "task-queue"
POOL_MANAGER_SERVICE = "pool-manager"
SERVICES = (MONITOR_SERVICE, TASK_QUEUE_SERVICE, POOL_MANAGER_SERVICE)

#: Default prefix of the environment variables read by :meth:`ClientSecurity.from_env`.
ENV_PREFIX = "RMON_CLIENT_"
#: The variables after the prefix: ``RMON_CLIENT_SECURITY``, ...
ENV_NAMES = ("SECURITY", "CURVE_SECRET_FILE", "CURVE_SERVERS_DIR")

_Z85_KEY_CHARS = 40


def curve_available() -> bool:
    """True when this libzmq can do CURVE (``zmq.has('curve')``)."""
    return bool(zmq.has("curve"))


def _check_z85_key(key: bytes, source: str, what: str) -> bytes:
    if len(key) != _Z85_KEY_CHARS:
        raise ValueError(f"{source}: {what} is not a 40-character Z85 key")
    try:
        z85.decode(key)
    except Exception:
        raise ValueError(f"{source}: {what} is not a 40-character Z85 key") from None
    return key


def _load(path: PathLike, what: str) -> Tuple[bytes, Optional[bytes]]:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: {what}: no such file")
    try:
        return zmq.auth.load_certificate(path)
    except ValueError as e:  # "No public key found in ..."
        raise ValueError(f"{path}: {what}: no public-key in it ({e})") from None


def _warn_if_readable_by_others(path: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if mode & 0o077:
        log.warning(
            "%s: secret key file has mode %04o, readable by others; chmod 600 it",
            path,
            stat.S_IMODE(mode),
        )


def _check_service(service: Any) -> str:
    if (
        not isinstance(service, str)
        or not service
        or service in (".", "..")
        or "/" in service
        or os.sep in service
        or "\0" in service
    ):
        raise ValueError(f"service must be a file name such as 'runner-monitor', got {service!r}")
    return service


@dataclass(frozen=True)
class CurveKeys:
    """A CURVE client's keys: its own pair and the server's public key (Z85 bytes).

    Give it to a client as ``curve=``; the client sets ``curve_secretkey``,
    ``curve_publickey`` and ``curve_serverkey`` on its sockets before
    connecting. ``repr`` never shows the secret key. Immutable, so one value
    may be shared by clients and threads.
    """

    public_key: bytes
    secret_key: bytes = field(repr=False)
    server_key: bytes

    def __post_init__(self) -> None:
        for name in ("public_key", "secret_key", "server_key"):
            value = getattr(self, name)
            if not isinstance(value, bytes):
                raise ValueError(
                    f"CurveKeys: {name} must be Z85 bytes (as zmq.auth.load_certificate "
                    f"returns), not {type(value).__name__}"
                )
            _check_z85_key(value, "CurveKeys", name)
        if zmq.curve_public(self.secret_key) != self.public_key:
            raise ValueError("CurveKeys: secret_key does not belong to public_key")

    # -- constructors ----------------------------------------------------------
    @classmethod
    def load(cls, secret_file: PathLike, server_public_file: PathLike) -> "CurveKeys":
        """Reads the client's ``NAME.key_secret`` and the server's public ``.key``.

        Logs a WARN when the secret file is readable by group or others.

        Raises:
            FileNotFoundError / OSError: a file cannot be read (its path first).
            ValueError: a file is not a certificate of the kind expected: no
                public key, a public certificate given as ``secret_file``, a
                secret key not of that public key, a malformed key (its path
                first).
        """
        secret_path = os.fspath(secret_file)
        public, secret = _load(secret_path, "curve_secret_file")
        _check_z85_key(public, secret_path, "public-key")
        if secret is None:
            raise ValueError(
                f"{secret_path}: no secret-key (a public certificate; give the .key_secret file)"
            )
        _check_z85_key(secret, secret_path, "secret-key")
        if zmq.curve_public(secret) != public:
            raise ValueError(f"{secret_path}: secret-key does not belong to the public-key")
        _warn_if_readable_by_others(secret_path)

        server_path = os.fspath(server_public_file)
        server, _ = _load(server_path, "the server's public key")
        _check_z85_key(server, server_path, "public-key")
        return cls(public_key=public, secret_key=secret, server_key=server)

    @classmethod
    def for_service(
        cls, secret_file: PathLike, servers_dir: PathLike, service: str
    ) -> "CurveKeys":
        """:meth:`load` with the server's key ``<servers_dir>/<service>.key``.

        ``service`` is ``runner-monitor``, ``task-queue`` or ``pool-manager``
        (or another server's key name). Raises as :meth:`load`, and
        ValueError for a service that is not a plain file name.
        """
        name = _check_service(service)
        return cls.load(secret_file, os.path.join(os.fspath(servers_dir), name + ".key"))

    @classmethod
    def from_env(
        cls,
        service: str,
        environ: Optional[Mapping[str, str]] = None,
        prefix: str = ENV_PREFIX,
    ) -> Optional["CurveKeys"]:
        """The keys for ``service`` as the environment says, or None with security off.

        Reads ``RMON_CLIENT_SECURITY`` (``off`` when unset or empty, or
        ``curve``), ``RMON_CLIENT_CURVE_SECRET_FILE`` and
        ``RMON_CLIENT_CURVE_SERVERS_DIR`` (another ``prefix`` replaces
        ``RMON_CLIENT_``). Raises ValueError for a bad mode or a missing
        variable (naming it), and as :meth:`for_service`.
        """
        return ClientSecurity.from_env(environ, prefix).keys_for(service)

    # -- use -------------------------------------------------------------------
    @property
    def public_key_text(self) -> str:
        """The client's public key in Z85, as logs and the server's keyring show it."""
        return self.public_key.decode("ascii")

    def apply(self, socket: Any) -> None:
        """Makes ``socket`` a CURVE client with these keys. Call before connect().

        Raises RuntimeError when libzmq has no CURVE support.
        """
        if not curve_available():
            raise RuntimeError(
                "this libzmq has no CURVE support (zmq.has('curve') is False): "
                "install a libzmq built with libsodium"
            )
        socket.setsockopt(zmq.CURVE_SECRETKEY, self.secret_key)
        socket.setsockopt(zmq.CURVE_PUBLICKEY, self.public_key)
        socket.setsockopt(zmq.CURVE_SERVERKEY, self.server_key)


@dataclass(frozen=True)
class ClientSecurity:
    """A client's ``--security`` settings, as the C++ client tools take them.

    ``security`` is ``off`` (plain sockets) or ``curve``; with ``curve``,
    ``curve_secret_file`` is the client's own ``NAME.key_secret`` and
    ``curve_servers_dir`` the folder of the servers' public keys
    (``runner-monitor.key``, ``task-queue.key``, ``pool-manager.key``).
    """

    security: str = "off"
    curve_secret_file: Optional[str] = None
    curve_servers_dir: Optional[str] = None

    @property
    def curve(self) -> bool:
        return self.security == "curve"

    def validate(self) -> None:
        """Raises ValueError when the settings do not go together."""
        if self.security not in SECURITY_MODES:
            raise ValueError(f"security must be off or curve, not {self.security!r}")
        if not self.curve:
            return
        if not self.curve_secret_file:
            raise ValueError("security curve needs curve_secret_file (the client's .key_secret)")
        if not self.curve_servers_dir:
            raise ValueError("security curve needs curve_servers_dir (the servers' public keys)")

    def keys_for(self, service: str) -> Optional[CurveKeys]:
        """The keys for a connection to ``service``; None with security off.

        Raises as :meth:`validate` and :meth:`CurveKeys.for_service`.
        """
        self.validate()
        if not self.curve:
            return None
        assert self.curve_secret_file and self.curve_servers_dir
        return CurveKeys.for_service(self.curve_secret_file, self.curve_servers_dir, service)

    @classmethod
    def from_env(
        cls, environ: Optional[Mapping[str, str]] = None, prefix: str = ENV_PREFIX
    ) -> "ClientSecurity":
        """Reads ``<prefix>SECURITY``, ``<prefix>CURVE_SECRET_FILE`` and
        ``<prefix>CURVE_SERVERS_DIR`` (``os.environ`` when ``environ`` is None).

        An unset or empty ``SECURITY`` is ``off``; with ``curve`` both files
        must be set. Raises ValueError naming the variable otherwise.
        """
        env = os.environ if environ is None else environ
        names = [prefix + n for n in ENV_NAMES]
        mode = env.get(names[0], "") or "off"
        settings = cls(
            security=mode,
            curve_secret_file=env.get(names[1]) or None,
            curve_servers_dir=env.get(names[2]) or None,
        )
        if mode not in SECURITY_MODES:
            raise ValueError(f"{names[0]} must be off or curve, not {mode!r}")
        if settings.curve:
            for name, value in zip(names[1:], (settings.curve_secret_file, settings.curve_servers_dir)):
                if not value:
                    raise ValueError(f"{names[0]}=curve needs {name}")
        return settings

    @staticmethod
    def add_arguments(
        parser: argparse.ArgumentParser,
        environ: Optional[Mapping[str, str]] = None,
        prefix: str = ENV_PREFIX,
    ) -> None:
        """Adds ``--security``, ``--curve-secret-file`` and ``--curve-servers-dir``
        to an argparse parser, their defaults from the environment (as
        :meth:`from_env`). Read them back with :meth:`from_args`.
        """
        env = os.environ if environ is None else environ
        names = [prefix + n for n in ENV_NAMES]
        group = parser.add_argument_group("security")
        group.add_argument(
            "--security",
            choices=SECURITY_MODES,
            default=env.get(names[0]) or "off",
            help=f"off: plain sockets; curve: CurveZMQ with the keys below (env {names[0]})",
        )
        group.add_argument(
            "--curve-secret-file",
            default=env.get(names[1]) or None,
            metavar="FILE",
            help=f"this client's NAME.key_secret (env {names[1]})",
        )
        group.add_argument(
            "--curve-servers-dir",
            default=env.get(names[2]) or None,
            metavar="DIR",
            help=f"folder of the servers' public keys, <service>.key (env {names[2]})",
        )

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "ClientSecurity":
        """The settings parsed by a parser set up with :meth:`add_arguments`;
        raises ValueError as :meth:`validate`."""
        settings = cls(
            security=args.security,
            curve_secret_file=args.curve_secret_file,
            curve_servers_dir=args.curve_servers_dir,
        )
        settings.validate()
        return settings
