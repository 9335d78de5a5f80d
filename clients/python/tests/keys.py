"""CurveZMQ keys for tests, written with pyzmq's own ``zmq.auth.create_certificates``.

pyzmq writes a certificate's metadata (``role``, ``runner_prefix``, ``group``)
only into the ``.key_secret`` file, with bare values (``role = runner``);
its public ``.key`` has an empty metadata section, which a service refuses in
its clients directory (PROTOCOL.md, Security). So enrolling a key here writes
the public certificate with the metadata, as ``rmon-keygen --public-from``
does (quoted, czmq style) or bare (pyzmq style).
"""

from __future__ import annotations

import os
import shutil
from typing import Dict, Optional, Tuple

import zmq.auth

import rmon


def create(key_dir: str, name: str, **metadata: str) -> Tuple[str, str]:
    """``key_dir/NAME.key`` and ``NAME.key_secret`` (mode 0600) by pyzmq, with
    ``metadata`` in the secret file; returns their paths."""
    os.makedirs(key_dir, exist_ok=True)
    public, secret = zmq.auth.create_certificates(key_dir, name, metadata=metadata or None)
    os.chmod(secret, 0o600)  # pyzmq leaves it to the umask
    return public, secret


def write_public(path: str, public_key: bytes, metadata: Dict[str, str], quoted: bool = True) -> None:
    """A public certificate with its metadata, written atomically (a reloading
    service never reads half a file)."""
    lines = ["#   ZeroMQ CURVE Public Certificate (rmon tests)", "", "metadata"]
    for k, v in metadata.items():
        lines.append(f'    {k} = "{v}"' if quoted else f"    {k} = {v}")
    lines += ["curve", f'    public-key = "{public_key.decode()}"', ""]
    tmp = os.path.join(os.path.dirname(path), ".tmp-" + os.path.basename(path))
    with open(tmp, "w") as f:
        f.write("\n".join(lines))
    os.replace(tmp, path)


class MonitorKeys:
    """A monitor's key pair, its clients directory and client keys, all by pyzmq.

    Layout under ``root``: ``runner-monitor/runner-monitor.key_secret`` (the
    monitor's pair), ``runner-monitor/clients/`` (the keys it admits),
    ``servers/runner-monitor.key`` (its public key, for the clients) and
    ``own/NAME.key_secret`` (each client's pair).
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self.clients_dir = os.path.join(root, "runner-monitor", "clients")
        self.servers_dir = os.path.join(root, "servers")
        self.own_dir = os.path.join(root, "own")
        for d in (self.clients_dir, self.servers_dir, self.own_dir):
            os.makedirs(d, exist_ok=True)
        public, self.monitor_secret_file = create(os.path.join(root, "runner-monitor"), "runner-monitor")
        shutil.copy(public, os.path.join(self.servers_dir, "runner-monitor.key"))
        self._metadata: Dict[str, Dict[str, str]] = {}

    def secret_file(self, name: str) -> str:
        return os.path.join(self.own_dir, name + ".key_secret")

    def client(self, name: str, enrolled: bool = True, quoted: bool = True, **metadata: str) -> rmon.CurveKeys:
        """A new client key pair with ``metadata`` (``role``, ``runner_prefix``
        or ``group``), enrolled in the monitor's clients directory unless
        told otherwise; returns its keys for the monitor."""
        create(self.own_dir, name, **metadata)
        self._metadata[name] = dict(metadata)
        if enrolled:
            self.enroll(name, quoted=quoted)
        return self.keys(name)

    def keys(self, name: str) -> rmon.CurveKeys:
        return rmon.CurveKeys.for_service(self.secret_file(name), self.servers_dir, "runner-monitor")

    def enroll(self, name: str, quoted: bool = True, clients_dir: Optional[str] = None) -> str:
        """Writes the client's public certificate, with its metadata, into the
        clients directory; returns its path."""
        public, _ = zmq.auth.load_certificate(self.secret_file(name))
        path = os.path.join(clients_dir or self.clients_dir, name + ".key")
        write_public(path, public, self._metadata[name], quoted=quoted)
        return path
