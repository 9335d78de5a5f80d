#!/usr/bin/python3
"""Task-queue lifecycle probe: throughput as users run it, beside a baseline.

What it measures
    Full task lifecycles per second (submit -> lease -> complete) and requests
    per second from N client processes (default 16), each a ZeroMQ REQ socket
    with one request in flight, looping for --seconds (default 5) after a
    common start signal. Two targets, in the same run, one after the other
    (the machine is shared and noisy: compare the ratio, not the raw rates
    of different runs):

    ours      the real task-queue executable started with NO arguments, its
              working folder a fresh temp folder: the default configuration
              (data in ./rmon-data/, --sync full, API tcp://127.0.0.1:5560,
              metrics on 0.0.0.0:9465; RMON_* variables are removed from its
              environment so none of them changes a default). It is stopped
              with SIGTERM and must exit with status 0.
    baseline  a minimal single-threaded Python server of the same three ops
              (same MessagePack maps as docs/PROTOCOL.md, "task-queue API")
              on a ROUTER socket on a free 127.0.0.1 port, in its own process,
              with SQLite in WAL mode and synchronous=FULL and ONE TRANSACTION
              PER OPERATION, i.e. one commit and one fsync of the log per
              request, answered after it. Its database is in a temp folder on
              the same disk as ours.

    Reported for each: lifecycles/s, requests/s, and the CPU seconds the
    server process used during the window (utime + stime of /proc/<pid>/stat,
    all threads, before and after): CPU far below the wall time means the
    server mostly waited (on the disk or for requests), CPU near one core
    means it computed. Then the ratio ours/baseline. After each window the
    probe checks, with `stats`, that every lifecycle counted by the clients
    is `completed` on the server and nothing is left queued or leased.

How to run (from the repository root; needs Debian's python3 with
python3-zmq and python3-msgpack, i.e. /usr/bin/python3 if another python3
comes first in PATH):

    python3 bench/lifecycle_probe.py
    python3 bench/lifecycle_probe.py --clients 16 --seconds 5 --only both \
        --task-queue build/services/task-queue/task-queue

It fails (exit status 1, with a message) when 127.0.0.1:5560 or port 9465 is
already taken (checked before starting), when the task-queue does not answer
within a bounded wait after starting, on any request not answered within
10 s, on any unexpected reply, and when the task-queue does not exit 0 after
SIGTERM. Everything it starts is stopped before it exits.
"""

import argparse
import ctypes
import multiprocessing
import os
import queue
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    import msgpack
    import zmq
except ImportError as e:  # pragma: no cover - environment check
    sys.exit(
        f"lifecycle_probe: {e}; this probe needs Debian's python3-zmq and python3-msgpack "
        f"(run it with /usr/bin/python3; this interpreter is {sys.executable})"
    )

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TASK_QUEUE = "build/services/task-queue/task-queue"
API_HOST, API_PORT = "127.0.0.1", 5560  # the contract's default task-queue API
API_ENDPOINT = f"tcp://{API_HOST}:{API_PORT}"
METRICS_PORT = 9465  # the task-queue's default --metrics-address 0.0.0.0:9465
REQUEST_TIMEOUT_MS = 10_000  # every request, every socket
READY_TIMEOUT_S = 20.0  # a server answering its first request after start
READY_PROBE_MS = 250  # one readiness attempt (receive timeout, not a sleep)
STOP_TIMEOUT_S = 20.0  # SIGTERM to exit
PROC_START_TIMEOUT_S = 60.0  # client processes connected and ready


class ProbeError(Exception):
    """A failure that ends the probe with a message and exit status 1."""


# --------------------------------------------------------------------------
# wire helpers


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def unpack(frame):
    return msgpack.unpackb(frame, raw=False)


def make_req(ctx, endpoint, timeout_ms=REQUEST_TIMEOUT_MS):
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, timeout_ms)
    s.setsockopt(zmq.SNDTIMEO, timeout_ms)
    s.connect(endpoint)
    return s


def call(sock, op, who, **fields):
    """One request, one reply; a map with ok: true, or ProbeError."""
    req = {"v": 1, "op": op}
    req.update(fields)
    try:
        sock.send(pack(req))
    except zmq.Again:
        raise ProbeError(f"{who}: could not send '{op}' within {REQUEST_TIMEOUT_MS} ms")
    try:
        frame = sock.recv()
    except zmq.Again:
        raise ProbeError(f"{who}: no reply to '{op}' within {REQUEST_TIMEOUT_MS} ms")
    try:
        reply = unpack(frame)
    except Exception as e:
        raise ProbeError(f"{who}: reply to '{op}' is not MessagePack ({e}): {frame[:80]!r}")
    if not isinstance(reply, dict):
        raise ProbeError(f"{who}: reply to '{op}' is not a map: {reply!r}")
    if reply.get("ok") is not True:
        raise ProbeError(
            f"{who}: '{op}' failed: error={reply.get('error')!r} detail={reply.get('detail')!r}"
        )
    return reply


# --------------------------------------------------------------------------
# client process


def client_main(idx, endpoint, ready_q, go, end_time, result_q):
    """Loop submit -> lease -> complete until the common end time."""
    who = f"client {idx}"
    runner_id = f"probe-runner-{os.getpid()}-{idx}"
    ctx = zmq.Context()
    sock = None
    try:
        sock = make_req(ctx, endpoint)
        ready_q.put(idx)
        if not go.wait(PROC_START_TIMEOUT_S):
            raise ProbeError(f"{who}: the start signal never came")
        end = end_time.value
        lifecycles = requests = 0
        while time.monotonic() < end:
            r = call(sock, "submit", who, payload={"client": idx, "n": lifecycles})
            task_id = r.get("task_id")
            if not isinstance(task_id, str) or not task_id or r.get("created") is not True:
                raise ProbeError(f"{who}: bad submit reply {r!r}")
            r = call(sock, "lease", who, runner_id=runner_id)
            task = r.get("task", "<missing>")
            if task is None:
                # Every lease follows this client's own committed submit, so a
                # queued task must exist when it is applied.
                raise ProbeError(f"{who}: lease answered task: nil although a submitted task is queued")
            if not isinstance(task, dict):
                raise ProbeError(f"{who}: bad lease reply {r!r}")
            leased_id, attempt = task.get("task_id"), task.get("attempt")
            if not isinstance(leased_id, str) or not isinstance(attempt, int) or attempt < 1:
                raise ProbeError(f"{who}: lease reply without task_id/attempt: {r!r}")
            if task.get("state", "leased") != "leased" or task.get("runner_id", runner_id) != runner_id:
                raise ProbeError(f"{who}: leased task not leased to this runner: {r!r}")
            call(sock, "complete", who, task_id=leased_id, attempt=attempt)
            lifecycles += 1
            requests += 3
        result_q.put((idx, "ok", lifecycles, requests, time.monotonic()))
    except ProbeError as e:
        result_q.put((idx, "error", str(e)))
    except KeyboardInterrupt:
        pass
    except Exception as e:  # anything unexpected still reaches the parent
        result_q.put((idx, "error", f"{who}: {type(e).__name__}: {e}"))
    finally:
        if sock is not None:
            sock.close(0)
        ctx.term()


# --------------------------------------------------------------------------
# baseline server process: one SQLite transaction (one fsync) per operation

BASELINE_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  state TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  max_attempts INTEGER NOT NULL,
  priority INTEGER NOT NULL,
  payload BLOB NOT NULL,
  pool TEXT,
  runner_id TEXT,
  result BLOB,
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  available_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_queued ON tasks(priority DESC, seq) WHERE state = 'queued';
"""

ENDED = ("completed", "dead", "cancelled")


class BadRequest(Exception):
    def __init__(self, error, detail):
        super().__init__(detail)
        self.error, self.detail = error, detail


class Baseline:
    """submit, lease, complete (+ stats, ping) over SQLite, one transaction each."""

    TAG = "b0b0b0"

    def __init__(self, db_path):
        self.db = sqlite3.connect(db_path, isolation_level=None)  # explicit transactions
        mode = self.db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        self.db.execute("PRAGMA synchronous=FULL")
        sync = self.db.execute("PRAGMA synchronous").fetchone()[0]
        if mode.lower() != "wal" or sync != 2:
            raise RuntimeError(f"baseline: journal_mode={mode} synchronous={sync}, wanted wal/2 (FULL)")
        self.db.executescript(BASELINE_SCHEMA)

    def close(self):
        self.db.close()

    @staticmethod
    def now_ms():
        return int(time.time() * 1000)

    @staticmethod
    def field(req, key, types, default=None, required=False):
        if key not in req or (req[key] is None and not required):
            if required:
                raise BadRequest("bad_request", f"missing_field: {key}")
            return default
        val = req[key]
        if not isinstance(val, types) or (types is int and isinstance(val, bool)):
            raise BadRequest("bad_request", f"wrong_type: {key}")
        return val

    def seq_of(self, task_id):
        prefix = f"t-{self.TAG}-"
        if not task_id.startswith(prefix) or not task_id[len(prefix):].isdigit():
            return None
        return int(task_id[len(prefix):])

    def task_map(self, row):
        (seq, state, attempt, max_attempts, priority, payload, pool, runner_id, result,
         created, updated, available) = row
        m = {
            "task_id": f"t-{self.TAG}-{seq}", "state": state, "attempt": attempt,
            "max_attempts": max_attempts, "priority": priority, "payload": unpack(payload),
            "created_at_ms": created, "updated_at_ms": updated, "available_at_ms": available,
        }
        if pool is not None:
            m["pool"] = pool
        if runner_id is not None:
            m["runner_id"] = runner_id
        if result is not None:
            m["result"] = unpack(result)
        return m

    def transaction(self, fn, *args):
        self.db.execute("BEGIN IMMEDIATE")
        try:
            reply = fn(*args)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")  # synchronous=FULL: the WAL is fsync'd here
        return reply

    def op_submit(self, req):
        if "payload" not in req:
            raise BadRequest("bad_request", "missing_field: payload")
        payload = pack(req["payload"])
        priority = self.field(req, "priority", int, 0)
        max_attempts = self.field(req, "max_attempts", int, 5)
        pool = self.field(req, "pool", str)
        delay_ms = self.field(req, "delay_ms", int, 0)
        if not 1 <= max_attempts <= 1000 or delay_ms < 0:
            raise BadRequest("bad_request", "out_of_range")

        def tx():
            now = self.now_ms()
            cur = self.db.execute(
                "INSERT INTO tasks (state, attempt, max_attempts, priority, payload, pool,"
                " created_at_ms, updated_at_ms, available_at_ms)"
                " VALUES ('queued', 0, ?, ?, ?, ?, ?, ?, ?)",
                (max_attempts, priority, payload, pool, now, now, now + delay_ms),
            )
            return {"ok": True, "task_id": f"t-{self.TAG}-{cur.lastrowid}", "created": True}

        return self.transaction(tx)

    def op_lease(self, req):
        runner_id = self.field(req, "runner_id", str, required=True)
        pool = self.field(req, "pool", str)

        def tx():
            now = self.now_ms()
            pool_cond = "pool IS NULL" if pool is None else "(pool IS NULL OR pool = ?)"
            args = (now,) if pool is None else (pool, now)
            row = self.db.execute(
                f"SELECT seq FROM tasks WHERE state = 'queued' AND {pool_cond}"
                " AND available_at_ms <= ? ORDER BY priority DESC, seq LIMIT 1",
                args,
            ).fetchone()
            if row is None:
                return {"ok": True, "task": None}
            self.db.execute(
                "UPDATE tasks SET state = 'leased', attempt = attempt + 1, runner_id = ?,"
                " updated_at_ms = ? WHERE seq = ?",
                (runner_id, now, row[0]),
            )
            full = self.db.execute("SELECT * FROM tasks WHERE seq = ?", (row[0],)).fetchone()
            return {"ok": True, "task": self.task_map(full)}

        return self.transaction(tx)

    def op_complete(self, req):
        task_id = self.field(req, "task_id", str, required=True)
        attempt = self.field(req, "attempt", int, required=True)
        result = pack(req["result"]) if req.get("result") is not None else None
        seq = self.seq_of(task_id)

        def tx():
            row = None if seq is None else self.db.execute(
                "SELECT state, attempt FROM tasks WHERE seq = ?", (seq,)).fetchone()
            if row is None:
                raise BadRequest("not_found", f"no task {task_id}")
            state, current = row
            if state in ENDED:
                raise BadRequest("conflict", f"task {task_id} is {state}")
            if state != "leased" or current != attempt:
                raise BadRequest("stale_attempt", f"task {task_id} is {state}, attempt {current}")
            self.db.execute(
                "UPDATE tasks SET state = 'completed', runner_id = NULL, result = ?,"
                " updated_at_ms = ? WHERE seq = ?",
                (result, self.now_ms(), seq),
            )
            return {"ok": True}

        return self.transaction(tx)

    def op_stats(self, req):
        counts = dict(self.db.execute("SELECT state, count(*) FROM tasks GROUP BY state"))
        reply = {"ok": True}
        for s in ("queued", "leased", "completed", "dead", "cancelled"):
            reply[s] = counts.get(s, 0)
        reply.update(reassigned=0, events_applied=0, events_ignored=0)
        return reply

    def op_ping(self, req):
        return {"ok": True, "version": "lifecycle_probe-baseline"}

    def handle(self, frame):
        try:
            try:
                req = unpack(frame)
            except Exception:
                raise BadRequest("bad_request", "not_msgpack")
            if not isinstance(req, dict):
                raise BadRequest("bad_request", "not_a_map")
            if req.get("v") != 1 or isinstance(req.get("v"), bool):
                raise BadRequest("bad_request", "bad_version")
            op = req.get("op")
            if not isinstance(op, str):
                raise BadRequest("bad_request", "missing_field: op")
            fn = getattr(self, "op_" + op, None)
            if fn is None:
                raise BadRequest("unknown_op", op)
            return fn(req)
        except BadRequest as e:
            return {"ok": False, "error": e.error, "detail": e.detail}
        except Exception as e:
            return {"ok": False, "error": "internal", "detail": f"{type(e).__name__}: {e}"}


def baseline_main(db_path, endpoint_q):
    """The baseline server: ROUTER on a free port, single-threaded; SIGTERM stops it."""
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    parent = os.getppid()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDTIMEO, REQUEST_TIMEOUT_MS)
    sock.setsockopt(zmq.RCVTIMEO, REQUEST_TIMEOUT_MS)
    server = None
    try:
        server = Baseline(db_path)
        sock.bind(f"tcp://{API_HOST}:*")
        endpoint_q.put(("ok", sock.getsockopt_string(zmq.LAST_ENDPOINT)))
        while not stopping and os.getppid() == parent:
            if not sock.poll(200):
                continue
            frames = sock.recv_multipart()
            reply = server.handle(frames[-1])
            sock.send_multipart(frames[:-1] + [pack(reply)])
    except Exception as e:
        endpoint_q.put(("error", f"baseline server: {type(e).__name__}: {e}"))
        raise SystemExit(1)
    finally:
        if server is not None:
            server.close()
        sock.close(0)
        ctx.term()


# --------------------------------------------------------------------------
# helpers of the parent


def cpu_seconds(pid):
    """utime + stime of every thread of the process, in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError as e:
        raise ProbeError(f"cannot read /proc/{pid}/stat: {e}")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def port_taken(host, port):
    """True if binding host:port fails the way the service's bind would."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as ZeroMQ and civetweb do
        s.bind((host, port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def filesystem_of(path):
    best = ("?", "?", "")
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                dev, mnt, typ = line.split()[:3]
                mnt = mnt.replace("\\040", " ")
                inside = path == mnt or path.startswith(mnt.rstrip("/") + "/")
                if inside and len(mnt) >= len(best[2]):
                    best = (dev, typ, mnt)
    except OSError:
        pass
    return best


def log_tail(path, lines=15):
    try:
        with open(path, errors="replace") as f:
            text = f.read().splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + l for l in text[-lines:]) or "    (empty)"


def set_pdeathsig():
    """In the task-queue child: SIGTERM it if the probe dies without stopping it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def wait_ready(ctx, endpoint, deadline, alive, what):
    """Poll with a deadline until the server answers any reply."""
    attempts = 0
    while True:
        alive()
        if time.monotonic() >= deadline:
            raise ProbeError(f"{what} did not answer at {endpoint} within {READY_TIMEOUT_S:.0f} s "
                             f"({attempts} attempts)")
        attempts += 1
        s = make_req(ctx, endpoint, READY_PROBE_MS)
        try:
            s.send(pack({"v": 1, "op": "stats"}))
            s.recv()
            return
        except zmq.Again:
            continue
        finally:
            s.close(0)


def check_stats(ctx, endpoint, what, lifecycles):
    s = make_req(ctx, endpoint)
    try:
        st = call(s, "stats", f"{what} stats")
    finally:
        s.close(0)
    got = (st.get("completed"), st.get("queued"), st.get("leased"))
    if got != (lifecycles, 0, 0):
        raise ProbeError(
            f"{what}: stats after the run say completed={got[0]} queued={got[1]} leased={got[2]}, "
            f"but the clients completed {lifecycles} lifecycles (expected {lifecycles}/0/0)")
    return st


def run_clients(mp, endpoint, clients, seconds, server_pid, what):
    ready_q, result_q = mp.Queue(), mp.Queue()
    go, end_time = mp.Event(), mp.Value("d", 0.0)
    procs = [mp.Process(target=client_main, name=f"probe-client-{i}",
                        args=(i, endpoint, ready_q, go, end_time, result_q), daemon=True)
             for i in range(clients)]
    try:
        for p in procs:
            p.start()
        deadline = time.monotonic() + PROC_START_TIMEOUT_S
        ready = 0
        while ready < clients:
            try:
                ready_q.get(timeout=max(0.0, min(0.5, deadline - time.monotonic())))
                ready += 1
            except queue.Empty:
                dead = [p.name for p in procs if p.exitcode is not None]
                early = []
                while True:
                    try:
                        early.append(result_q.get_nowait())
                    except queue.Empty:
                        break
                if early:
                    raise ProbeError(f"{what}: {early[0][2]}")
                if dead:
                    raise ProbeError(f"{what}: client process(es) exited before starting: {dead}")
                if time.monotonic() >= deadline:
                    raise ProbeError(f"{what}: only {ready} of {clients} clients ready "
                                     f"within {PROC_START_TIMEOUT_S:.0f} s")
        cpu0 = cpu_seconds(server_pid)
        t0 = time.monotonic()
        end_time.value = t0 + seconds
        go.set()
        results, errors = [], []
        deadline = t0 + seconds + 3 * REQUEST_TIMEOUT_MS / 1000 + 10
        while len(results) + len(errors) < clients:
            try:
                r = result_q.get(timeout=max(0.0, min(0.5, deadline - time.monotonic())))
            except queue.Empty:
                if time.monotonic() >= deadline:
                    raise ProbeError(f"{what}: {clients - len(results) - len(errors)} clients "
                                     f"did not report by the deadline")
                if all(p.exitcode is not None for p in procs):
                    # everyone exited; drain what is left, then give up
                    try:
                        r = result_q.get(timeout=1.0)
                    except queue.Empty:
                        raise ProbeError(f"{what}: client processes exited without reporting")
                else:
                    continue
            (results if r[1] == "ok" else errors).append(r)
        cpu1 = cpu_seconds(server_pid)
        if errors:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise ProbeError(f"{what}: {errors[0][2]}{more}")
        elapsed = max(r[4] for r in results) - t0
        for p in procs:
            p.join(STOP_TIMEOUT_S)
        return {
            "lifecycles": sum(r[2] for r in results),
            "requests": sum(r[3] for r in results),
            "elapsed": elapsed,
            "cpu": cpu1 - cpu0,
        }
    finally:
        for p in procs:
            if p.exitcode is None:
                p.terminate()
        for p in procs:
            p.join(5)


def run_ours(mp, exe, clients, seconds, workdir):
    for host, port, why in ((API_HOST, API_PORT, "the contract's default API endpoint " + API_ENDPOINT),
                            ("0.0.0.0", METRICS_PORT, "the default metrics address 0.0.0.0:9465")):
        if port_taken(host, port):
            raise ProbeError(
                f"port {port} is already in use ({why}); the probe runs the task-queue with no "
                f"arguments, so that port must be free. Stop whatever holds it (`ss -ltnp | grep :{port}`) "
                f"and retry, or use --only baseline")
    cwd = tempfile.mkdtemp(prefix="ours-", dir=workdir)
    log_path = os.path.join(workdir, "task-queue.log")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RMON_")}
    ctx = zmq.Context()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([exe], cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=set_pdeathsig)
    stopped = False
    try:
        def alive():
            if proc.poll() is not None:
                raise ProbeError(f"the task-queue exited with status {proc.returncode} before it "
                                 f"answered; its log:\n{log_tail(log_path)}")

        wait_ready(ctx, API_ENDPOINT, time.monotonic() + READY_TIMEOUT_S, alive, "the task-queue")
        check_stats(ctx, API_ENDPOINT, "ours (fresh)", 0)
        try:
            res = run_clients(mp, API_ENDPOINT, clients, seconds, proc.pid, "ours")
        except ProbeError as e:
            if proc.poll() is not None:
                raise ProbeError(f"{e}\nthe task-queue exited with status {proc.returncode}; "
                                 f"its log:\n{log_tail(log_path)}")
            raise
        res["stats"] = check_stats(ctx, API_ENDPOINT, "ours", res["lifecycles"])
        res["db"] = os.path.join(cwd, "rmon-data")
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise ProbeError(f"the task-queue did not exit within {STOP_TIMEOUT_S:.0f} s of SIGTERM; "
                             f"its log:\n{log_tail(log_path)}")
        stopped = True
        if rc != 0:
            raise ProbeError(f"the task-queue exited with status {rc} after SIGTERM (expected 0); "
                             f"its log:\n{log_tail(log_path)}")
        with open(log_path, errors="replace") as f:
            res["log_problems"] = [l for l in f.read().splitlines()
                                   if len(l.split()) > 1 and l.split()[1] in ("warn", "warning", "error",
                                                                              "critical")]
        return res
    finally:
        if not stopped and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        ctx.term()


def run_baseline(mp, clients, seconds, workdir):
    folder = tempfile.mkdtemp(prefix="baseline-", dir=workdir)
    endpoint_q = mp.Queue()
    server = mp.Process(target=baseline_main, name="probe-baseline",
                        args=(os.path.join(folder, "baseline.db"), endpoint_q), daemon=True)
    server.start()
    ctx = zmq.Context()
    try:
        try:
            status, endpoint = endpoint_q.get(timeout=PROC_START_TIMEOUT_S)
        except queue.Empty:
            raise ProbeError(f"the baseline server did not start within {PROC_START_TIMEOUT_S:.0f} s "
                             f"(exit code {server.exitcode})")
        if status != "ok":
            raise ProbeError(endpoint)

        def alive():
            if server.exitcode is not None:
                raise ProbeError(f"the baseline server exited with status {server.exitcode}")

        wait_ready(ctx, endpoint, time.monotonic() + READY_TIMEOUT_S, alive, "the baseline server")
        res = run_clients(mp, endpoint, clients, seconds, server.pid, "baseline")
        res["stats"] = check_stats(ctx, endpoint, "baseline", res["lifecycles"])
        res["endpoint"] = endpoint
        server.terminate()  # SIGTERM
        server.join(STOP_TIMEOUT_S)
        if server.exitcode != 0:
            raise ProbeError(f"the baseline server exited with status {server.exitcode} after SIGTERM")
        return res
    finally:
        if server.exitcode is None:
            server.terminate()
            server.join(STOP_TIMEOUT_S)
            if server.exitcode is None:
                server.kill()
                server.join()
        ctx.term()


def describe(name, res):
    lps = res["lifecycles"] / res["elapsed"]
    rps = res["requests"] / res["elapsed"]
    share = 100.0 * res["cpu"] / res["elapsed"]
    print(f"{name:<9} {res['lifecycles']:>8} lifecycles in {res['elapsed']:.2f} s: "
          f"{lps:>9.1f} lifecycles/s, {rps:>9.1f} requests/s; server CPU {res['cpu']:.2f} s "
          f"({share:.0f}% of one core over the window)")
    return lps


def main():
    ap = argparse.ArgumentParser(
        description="Task-queue lifecycles/s (submit, lease, complete) in its default configuration, "
                    "beside a one-transaction-per-operation SQLite baseline in the same run.")
    ap.add_argument("--task-queue", default=DEFAULT_TASK_QUEUE, metavar="PATH",
                    help="the task-queue executable (default: %(default)s, relative to the repository root; "
                         "a relative PATH given here is taken from the current folder)")
    ap.add_argument("--clients", type=int, default=16, help="client processes (default %(default)s)")
    ap.add_argument("--seconds", type=float, default=5.0, help="measured window per target (default %(default)s)")
    ap.add_argument("--only", choices=("ours", "baseline", "both"), default="both",
                    help="which targets to run (default %(default)s)")
    args = ap.parse_args()
    if args.clients < 1:
        ap.error("--clients must be at least 1")
    if not args.seconds > 0:
        ap.error("--seconds must be positive")

    if args.task_queue == DEFAULT_TASK_QUEUE:
        exe = REPO_ROOT / DEFAULT_TASK_QUEUE
    else:
        exe = Path(args.task_queue).expanduser().resolve()
    if args.only in ("ours", "both") and not (exe.is_file() and os.access(exe, os.X_OK)):
        raise ProbeError(f"no task-queue executable at {exe} (build it, or pass --task-queue PATH)")

    # A SIGTERM to the probe unwinds like Ctrl-C, so everything started is stopped.
    def on_sigterm(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    mp = multiprocessing.get_context("spawn")  # no fork of a process holding ZeroMQ contexts
    workdir = tempfile.mkdtemp(prefix="lifecycle_probe-")
    dev, fstype, mnt = filesystem_of(os.path.realpath(workdir))
    try:
        print(f"lifecycle_probe: {args.clients} clients, {args.seconds:g} s per target, "
              f"temp folders in {workdir} ({fstype} {dev} on {mnt})")
        if fstype in ("tmpfs", "ramfs"):
            print("lifecycle_probe: warning: the temp folder is in memory; fsync costs nothing there "
                  "(set TMPDIR to a folder on a disk)")
        results = {}
        if args.only in ("ours", "both"):
            print(f"ours:     {exe}, no arguments (API {API_ENDPOINT}, ./rmon-data, --sync full)")
            sys.stdout.flush()
            results["ours"] = run_ours(mp, str(exe), args.clients, args.seconds, workdir)
        if args.only in ("baseline", "both"):
            print("baseline: Python + SQLite (WAL, synchronous=FULL), one transaction per operation, "
                  "single-threaded ROUTER")
            sys.stdout.flush()
            results["baseline"] = run_baseline(mp, args.clients, args.seconds, workdir)
        print()
        rates = {name: describe(name, res) for name, res in results.items()}
        if "ours" in results and results["ours"]["log_problems"]:
            probs = results["ours"]["log_problems"]
            print(f"note: the task-queue logged {len(probs)} warning/error line(s), e.g.:\n    {probs[0]}")
        if len(rates) == 2:
            if rates["baseline"] > 0:
                print(f"ratio ours/baseline: {rates['ours'] / rates['baseline']:.2f}x lifecycles/s")
            else:
                print("ratio ours/baseline: undefined (the baseline completed nothing)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except ProbeError as e:
        sys.exit(f"lifecycle_probe: FAILED: {e}")
    except KeyboardInterrupt:
        sys.exit("lifecycle_probe: interrupted")
