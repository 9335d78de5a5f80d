#!/usr/bin/python3
"""Publishes one heartbeat for each of N runners (ids PREFIX000000...), with a
long timeout, so the monitor holds a big fleet for the console's paging test.

    fleet.py HEARTBEAT_ENDPOINT N [PREFIX]

Heartbeats as PROTOCOL.md has them (topic "hb/<id>", a MessagePack map). The
PUB socket queues without limit (SNDHWM 0), so nothing is dropped while the
monitor drains it; the first id is sent ten times over a second first, so
the monitor's subscription has arrived before the rest (a PUB drops what it
sends before). scripts/console-test.sh then waits until the monitor holds
them all.
Debian's python3-zmq and python3-msgpack.
"""
import sys
import time

import msgpack
import zmq


def heartbeat(runner_id, seq=1):
    return [("hb/" + runner_id).encode(), msgpack.packb({
        "v": 1, "runner_id": runner_id, "task_id": "idle-" + runner_id, "attempt": 1,
        "pool": "local", "pool_type": "local-process", "pid": 4242, "state": "running",
        "seq": seq, "timeout_ms": 600000, "interval_ms": 60000})]


def main():
    endpoint, n = sys.argv[1], int(sys.argv[2])
    prefix = sys.argv[3] if len(sys.argv) > 3 else "fleet-"
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.SNDHWM, 0)
    pub.setsockopt(zmq.LINGER, 30000)
    pub.connect(endpoint)
    # The subscription takes a moment to arrive. The first id is sent again
    # with a growing seq for a second before the rest follow.
    seq = 1
    while seq <= 10:
        pub.send_multipart(heartbeat(f"{prefix}{0:06d}", seq))
        seq += 1
        time.sleep(0.1)
    for i in range(1, n):
        pub.send_multipart(heartbeat(f"{prefix}{i:06d}"))
    pub.close()  # lingers until everything is sent
    ctx.term()


if __name__ == "__main__":
    main()
