#!/usr/bin/python3
"""Makes one dead task for the console's retry test and prints its id:
submits it to pool "console-test" with one attempt and the highest priority
(a lease takes that pool's tasks and pool-less ones, best first), leases it
as runner "console-runner" and fails it for good. With the rmon package
(clients/python on PYTHONPATH).

    dead_task.py TASK_QUEUE_ENDPOINT
"""
import sys

from rmon.task_queue import TaskQueueClient


def main():
    tq = TaskQueueClient(sys.argv[1], timeout_ms=3000)
    task_id, _ = tq.submit({"job": "console-retry", "n": 1}, pool="console-test", max_attempts=1,
                           priority=1_000_000)
    task = tq.lease("console-runner", pool="console-test")
    assert task is not None and task["task_id"] == task_id, task
    state = tq.fail(task_id, task["attempt"], error="out of memory (console test)", retry=False)
    assert state == "dead", state
    print(task_id)


if __name__ == "__main__":
    main()
