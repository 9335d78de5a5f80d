#!/usr/bin/python3
"""One runner that heartbeats every 100 ms with a 300 ms timeout for about a
second, then dies without a word (the console's crash test). Prints the wall
time of its last heartbeat (ms).

    crash_runner.py HEARTBEAT_ENDPOINT RUNNER_ID
"""
import sys
import time

import msgpack
import zmq


def main():
    endpoint, runner_id = sys.argv[1], sys.argv[2]
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 2000)
    pub.connect(endpoint)
    last = 0
    for seq in range(1, 12):
        pub.send_multipart([("hb/" + runner_id).encode(), msgpack.packb({
            "v": 1, "runner_id": runner_id, "task_id": "crash-task", "attempt": 1, "pool": "local",
            "pool_type": "local-process", "pid": 777, "state": "running", "seq": seq,
            "timeout_ms": 300, "interval_ms": 100})])
        last = int(time.time() * 1000)
        time.sleep(0.1)
    pub.close()
    ctx.term()
    print(last)


if __name__ == "__main__":
    main()
