"""The workers as a user runs them (issue 11): processing, end to end, event to letter.

Every stack here is ``make run`` itself (``python -m server.devrun``: the gRPC server, the
gateway and the workers as it starts them, with their defaults) on a fresh data dir, rate
limit off, SQLite (and PostgreSQL when ``DATABASE_URL`` is one). Figures come from what the
stack leaves in public: each event's ``received_at`` (set in the ingest transaction, so
"commit") and ``processed_at``, workflow runs and messages, and the letters an aiosmtpd
sink in this process receives. Each figure is printed beside its ceiling from this run.

1. Processing alone: ``BENCH_BACKLOG`` events (default 20,000) stored by ``python -m server``
   alone (no worker), then ``make run`` drains them for at most ``BENCH_DRAIN_SECONDS``
   (default 20); once with no workflow, once with a workflow whose first block is a timer.
   Ceiling: a bare loop on the same database that claims 500 unprocessed events, parses
   their bodies and marks them processed in one transaction.
2. End to end: open-loop load at each of ``BENCH_E2E_RATES`` (default 500,1000,2000,3000)
   for ``BENCH_E2E_SECONDS`` (default 15) with the workers running; the ladder stops at the
   first rate whose backlog is not bounded. Ceiling: what the stack accepts with no worker.
3. Event to letter: 200 events/s for ``BENCH_E2E_SECONDS`` into a workflow of one email
   block; the time from commit to the letter at the SMTP sink.

Run alone: ``make proto && .venv/bin/python -m bench.workers_bench`` (``make bench`` runs
it after the ingest rows). Method and figures: docs/bench.md, "Workers".
"""

from __future__ import annotations

import base64
import itertools
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT, ROOT / "clients" / "python"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import grpc
import httpx
import orjson

from bench import h2load, stack
from bench.payloads import kb_body, request
from bench.report import RESULTS, machine
from eventflow.v1 import (
    events_pb2,
    templates_pb2,
    templates_pb2_grpc,
    workflows_pb2,
    workflows_pb2_grpc,
)


def _knob(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a number") from None


BACKLOG = max(500, int(_knob("BENCH_BACKLOG", 20_000)))
DRAIN_SECONDS = _knob("BENCH_DRAIN_SECONDS", 20.0)
E2E_SECONDS = _knob("BENCH_E2E_SECONDS", 15.0)
RATES = [int(r) for r in os.environ.get("BENCH_E2E_RATES", "500,1000,2000,3000").split(",")
         if r.strip()]
MAIL_RATE = 200
# Which rows to run (all by default): processing, e2e, letter.
ROWS = {r.strip() for r in os.environ.get("BENCH_ROWS", "processing,e2e,letter").split(",")
        if r.strip()}
MAIL_WAIT = _knob("BENCH_MAIL_WAIT", 15.0)  # after the load, for letters still on their way
SETTLE = 5.0  # after each rate, for the backlog to clear before the next
CEILING_SECONDS = 3.0  # the ingest-alone ceiling's measured run (after 1 s of warm-up)
BARE_SECONDS = 5.0  # the bare processing loop's bound
SENDERS = 8  # load generator processes, each its own contact (a sender = a web shop visitor)
CONTACTS = 5_000  # distinct contacts in the backlog
BATCH = 500
TYPE = "bench_cart"  # kb_body's event type: the Python generator's fallback sends it too
RUDDERSTACK = 1_700  # events/s, RudderStack's published figure for 2 cores; not measured here
TARGETS = {"drain": 5_000, "drain_timer": 2_000, "e2e": 1_500, "mail_p99_ms": 1_000}
SERVICE = "/eventflow.v1.EventService/"
BEGAN = time.monotonic()
MSGID = re.compile(rb"(?im)^message-id:[ \t]*(<[^>\r\n]+>)")


# ---------------------------------------------------------------- the SMTP sink


class Sink:
    """aiosmtpd on a free port in a thread of this process: when each letter arrived."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str]] = []  # (time.time(), Message-ID)
        self.controller: Any = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        at = time.time()
        raw = envelope.original_content or envelope.content or b""
        found = MSGID.search(raw if isinstance(raw, bytes) else str(raw).encode())
        self.arrivals.append((at, found.group(1).decode() if found else ""))
        return "250 OK"

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self.controller = Controller(self, hostname="127.0.0.1", port=stack.free_port(),
                                     data_size_limit=25 << 20)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.controller.port}"


# ---------------------------------------------------------------- reading the database


def epoch(value: Any) -> float | None:
    """A stored time as seconds since the epoch (SQLite hands back naive UTC text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return float(value.timestamp())


class Db:
    """Read-only queries on the database of a stack (SQLite file or PostgreSQL schema)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite")

    @property
    def path(self) -> str:
        return self.url.split(":///", 1)[1].split("?", 1)[0]

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        if self.sqlite:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
            try:
                return list(conn.execute(sql, params).fetchall())
            finally:
                conn.close()
        import psycopg

        with psycopg.connect(self.url) as pg:
            return list(pg.execute(sql.replace("?", "%s"), params).fetchall())

    def one(self, sql: str, *params: Any) -> int:
        return int(self.query(sql, *params)[0][0] or 0)

    def unprocessed(self) -> int:
        return self.one("SELECT count(*) FROM events WHERE processed_at IS NULL")

    def max_id(self) -> int:
        return self.one("SELECT coalesce(max(id), 0) FROM events")

    def times(self, after_id: int) -> list[tuple[float, float | None]]:
        """(received_at, processed_at) of the events after ``after_id``, in id order."""
        rows = self.query("SELECT received_at, processed_at FROM events WHERE id > ? "
                          "ORDER BY id", after_id)
        return [(epoch(r) or 0.0, epoch(p)) for r, p in rows]

    def letters(self, after_id: int) -> list[tuple[float, str | None]]:
        """(received_at, Message-ID of its letter or None) of the events after ``after_id``."""
        rows = self.query(
            "SELECT e.received_at, m.message_id FROM events e "
            "LEFT JOIN workflow_runs r ON r.event_id = e.id "
            "LEFT JOIN workflow_messages m ON m.run_id = r.id "
            "WHERE e.id > ? ORDER BY e.id", after_id)
        return [(epoch(at) or 0.0, None if mid is None else str(mid).strip())
                for at, mid in rows]

    def letter_stages(self, after_id: int) -> dict[str, list[float]]:
        """Where a letter's time went, per stage (seconds, each sorted): commit ->
        processed (the event pump), processed -> delivery record opened (the step's claim,
        reads and render), opened -> recorded sent (the SMTP talk and the step's record)."""
        rows = self.query(
            "SELECT e.received_at, e.processed_at, m.created_at, m.sent_at FROM events e "
            "JOIN workflow_runs r ON r.event_id = e.id "
            "JOIN workflow_messages m ON m.run_id = r.id "
            "WHERE e.id > ? AND m.sent_at IS NOT NULL", after_id)
        out: dict[str, list[float]] = {"event": [], "step": [], "send": []}
        for received, processed, opened, sent in rows:
            r, p, o, t = epoch(received), epoch(processed), epoch(opened), epoch(sent)
            if r is None or p is None or o is None or t is None:
                continue
            out["event"].append(p - r)
            out["step"].append(o - p)
            out["send"].append(t - o)
        return {k: sorted(v) for k, v in out.items()}


# ---------------------------------------------------------------- processes


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            out += [int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
        except OSError:
            pass
    return out


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / stack.CLK_TCK


def _is_worker(argv: list[str]) -> bool:
    return any(a == "-m" and b.split(".")[0] == "workers" for a, b in itertools.pairwise(argv))


@dataclass
class Cpu:
    """CPU seconds so far of a process tree, split into the workers' subtrees and the rest."""

    workers: float = 0.0
    rest: float = 0.0
    worker_processes: int = 0

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(self.workers - other.workers, self.rest - other.rest, self.worker_processes)


def tree(root: int) -> list[tuple[int, bool]]:
    """(pid, in a worker's subtree) for ``root`` and everything below it."""
    out: list[tuple[int, bool]] = []
    todo = [(root, False)]
    while todo:
        pid, under_worker = todo.pop()
        worker = under_worker or _is_worker(_cmdline(pid))
        out.append((pid, worker))
        todo += [(c, worker) for c in _children(pid)]
    return out


def tree_cpu(root: int) -> Cpu:
    cpu = Cpu()
    for pid, worker in tree(root):
        if worker:
            cpu.workers += _cpu(pid)
            # Workers that do the work: not a supervisor of other worker processes.
            cpu.worker_processes += (_is_worker(_cmdline(pid)) and not any(
                _is_worker(_cmdline(c)) for c in _children(pid)))
        else:
            cpu.rest += _cpu(pid)
    return cpu


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def gone(self) -> str:
        if self.popen.poll() is None:
            return ""
        tail = self.log.read_bytes()[-1500:].decode(errors="replace")
        return f"{self.name} exited with {self.popen.returncode}; end of {self.log}:\n{tail}"


@contextmanager
def started(name: str, module: str, env: dict[str, str], log: Path) -> Iterator[Proc]:
    """``python -m module``; stopped with SIGTERM, and whatever of its tree is left after
    40 s killed, one pid at a time."""
    with open(log, "ab") as out:
        popen = subprocess.Popen([sys.executable, "-m", module], env=stack._env(env), cwd=ROOT,
                                 stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    proc = Proc(name, popen, log)
    try:
        yield proc
    finally:
        below = [pid for pid, _ in tree(popen.pid)][1:]
        stopping = time.monotonic()
        if popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(timeout=40)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()
        for pid in below:
            try:
                os.kill(pid, signal.SIGKILL)  # only if it outlived its parent's shutdown
            except (ProcessLookupError, PermissionError):
                pass
        if (took := time.monotonic() - stopping) > 5:
            print(f"    ({name} took {took:.0f} s to stop)", flush=True)


# ---------------------------------------------------------------- a deployment


def _basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"bench:{key}".encode()).decode()


@dataclass
class Deployment:
    """One fresh eventflow: data dir, database, key prefix, ports; what ``make run`` reads."""

    name: str
    data: Path
    database_url: str
    redis_url: str
    smtp_url: str
    grpc_port: int = field(default_factory=stack.free_port)
    http_port: int = field(default_factory=stack.free_port)
    prefix: str = field(default_factory=lambda: f"wbench:{os.urandom(3).hex()}:")

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def db(self) -> Db:
        return Db(self.database_url)

    @property
    def meta(self) -> tuple[tuple[str, str]]:
        return (("authorization", _basic(stack.API_KEY)),)

    def env(self) -> dict[str, str]:
        # The user's settings otherwise (server and worker processes, log level...).
        return {"EVENTFLOW_DATA_DIR": str(self.data), "DATABASE_URL": self.database_url,
                "REDIS_URL": self.redis_url, "EVENTFLOW_REDIS_PREFIX": self.prefix,
                "EVENTFLOW_API_KEY": stack.API_KEY, "EVENTFLOW_RATE_LIMIT": "0",
                "EVENTFLOW_GRPC_ADDR": self.target,
                "EVENTFLOW_HTTP_ADDR": f"127.0.0.1:{self.http_port}",
                "EVENTFLOW_SMTP_URL": self.smtp_url}

    def log(self, what: str) -> Path:
        return self.data.parent / f"{self.name}-{what}.log"

    def _wait_grpc(self, proc: Proc, timeout: float = 90.0) -> None:
        """Until an authenticated call answers (every serving process is then up or close)."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if gone := proc.gone():
                raise RuntimeError(gone)
            try:
                with grpc.insecure_channel(self.target) as channel:
                    workflows_pb2_grpc.WorkflowServiceStub(channel).ListWorkflows(
                        workflows_pb2.ListWorkflowsRequest(), metadata=self.meta, timeout=2)
                return
            except grpc.RpcError as exc:
                last = str(exc)[:200]
            time.sleep(0.2)
        raise RuntimeError(f"{proc.name}: gRPC not answering within {timeout:.0f} s ({last})")

    @contextmanager
    def server_alone(self, what: str) -> Iterator[Proc]:
        """``python -m server`` (``make server``) with no worker: events stay unprocessed."""
        with started("server", "server", self.env(), self.log(what)) as proc:
            self._wait_grpc(proc)
            yield proc

    @contextmanager
    def make_run(self, what: str, *, wait: bool = True) -> Iterator[Proc]:
        """``make run``: server, gateway and workers as ``server.devrun`` starts them; with
        ``wait``, once the gateway and the gRPC server answer."""
        with started("make run", "server.devrun", self.env(), self.log(what)) as proc:
            if not wait:
                yield proc
                return
            deadline = time.monotonic() + 90
            while True:
                if gone := proc.gone():
                    raise RuntimeError(gone)
                try:
                    if httpx.get(f"http://127.0.0.1:{self.http_port}/healthz",
                                 timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"make run: gateway not up in 90 s, see {proc.log}")
                time.sleep(0.2)
            self._wait_grpc(proc)
            yield proc

    def create_workflow(self, definition: dict[str, Any]) -> None:
        with grpc.insecure_channel(self.target) as channel:
            workflows_pb2_grpc.WorkflowServiceStub(channel).CreateWorkflow(
                workflows_pb2.CreateWorkflowRequest(
                    definition_json=orjson.dumps(definition).decode()),
                metadata=self.meta, timeout=30)

    def create_template(self, **fields: str) -> int:
        with grpc.insecure_channel(self.target) as channel:
            made = templates_pb2_grpc.TemplateServiceStub(channel).CreateTemplate(
                templates_pb2.CreateTemplateRequest(**fields), metadata=self.meta, timeout=30)
        return int(made.id)

    def send_one(self, i: int = 0) -> None:
        with grpc.insecure_channel(self.target) as channel:
            call = channel.unary_unary(SERVICE + "GenerateEvent")
            call(request(kb_body(10_000_000 + i)).SerializeToString(), metadata=self.meta,
                 timeout=30)

    def wait_processed(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.db.unprocessed() == 0:
                return True
            time.sleep(0.25)
        return False


@contextmanager
def deployment(tmp: Path, name: str, *, pg_url: str, redis_url: str, smtp_url: str
               ) -> Iterator[Deployment]:
    data = tmp / name / "data"
    data.mkdir(parents=True)
    if pg_url:
        with stack.postgres_schema(pg_url) as url:
            yield Deployment(name, data, url, redis_url, smtp_url)
    else:
        yield Deployment(name, data, f"sqlite:///{data / 'eventflow.db'}", redis_url, smtp_url)


# ---------------------------------------------------------------- load


def ingest_backlog(dep: Deployment, total: int) -> dict[str, Any]:
    """``total`` events (whole batches of 500, ``CONTACTS`` contacts) by GenerateEvents, two
    calls in flight, as the ingest bench's batch row sends them."""
    batches = [events_pb2.GenerateEventsRequest(
        events=[request(kb_body((b * BATCH + i) % CONTACTS)) for i in range(BATCH)]
    ).SerializeToString() for b in range(max(1, CONTACTS // BATCH))]
    calls = math.ceil(total / BATCH)
    opts = [("grpc.max_send_message_length", 32 << 20),
            ("grpc.max_receive_message_length", 32 << 20)]
    with grpc.insecure_channel(dep.target, options=opts) as channel:
        call = channel.unary_unary(SERVICE + "GenerateEvents")

        def one(n: int) -> int:
            raw = call(batches[n % len(batches)], metadata=dep.meta, timeout=60)
            return int(events_pb2.GenerateEventsResponse.FromString(raw).success_count)

        started_at = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            accepted = sum(pool.map(one, range(calls)))
        seconds = time.perf_counter() - started_at
    if accepted != calls * BATCH:
        raise RuntimeError(f"backlog: {accepted} of {calls * BATCH} events accepted")
    return {"events": accepted, "seconds": round(seconds, 2),
            "events_per_s": round(accepted / seconds, 1)}


class Senders:
    """``SENDERS`` h2load processes, each one connection sending one contact's ~1 KB cart
    event as unary GenerateEvent calls (h2load sends one body per process); without h2load,
    the Python generator (bench/load.py, one contact)."""

    def __init__(self, work: Path, loadgen: str, binary: str) -> None:
        self.work, self.loadgen, self.binary = work, loadgen, binary
        self.bodies: list[Path] = []
        for k in range(SENDERS):
            body = work / f"sender{k}.bin"
            body.write_bytes(h2load.grpc_frame(request(kb_body(k)).SerializeToString()))
            self.bodies.append(body)
        self.runs = 0

    def _h2load(self, target: str, seconds: float, extra: list[str],
                rate: int | None = None) -> dict[str, Any]:
        """One h2load per sender; with ``rate``, split over them in whole calls/s (h2load's
        ``--rps`` is an integer per connection)."""
        self.runs += 1
        procs = []
        for k, body in enumerate(self.bodies):
            share: list[str] = []
            if rate is not None:
                rps = rate // SENDERS + (k < rate % SENDERS)
                if rps == 0:
                    continue
                share = ["--rps", str(rps)]
            out = self.work / f"run{self.runs:02d}-sender{k}.out"
            argv = [self.binary, "-D", f"{max(1, round(seconds * 1000))}ms", "-c", "1",
                    *extra, *share, "-d", str(body), "-H", "content-type:application/grpc",
                    "-H", "te:trailers", "-H", f"authorization:{_basic(stack.API_KEY)}",
                    f"http://{target}{SERVICE}GenerateEvent"]
            procs.append((subprocess.Popen(argv, stdout=open(out, "wb"),  # noqa: SIM115
                                           stderr=subprocess.STDOUT), out))
        sums = {"started": 0, "succeeded": 0, "failed": 0}
        for popen, out in procs:
            popen.wait(timeout=seconds + 60)
            text = out.read_text(errors="replace")
            found = h2load._SUMMARY.search(text)
            if found is None:
                raise RuntimeError(f"h2load failed ({popen.returncode}), see {out}: {text[-500:]}")
            _total, began, _done, ok, failed, errored, timeout = map(int, found.groups())
            sums["started"] += began
            sums["succeeded"] += ok
            sums["failed"] += failed + errored + timeout
        return sums

    def _python(self, spec: dict[str, Any]) -> dict[str, Any]:
        done = subprocess.run([sys.executable, "-m", "bench.load",
                               orjson.dumps({"api_key": stack.API_KEY, "warmup": 0, **spec}
                                            ).decode()],
                              env=stack._env({}), cwd=ROOT, capture_output=True, check=False,
                              timeout=float(spec["seconds"]) + 120)
        if done.returncode != 0:
            raise RuntimeError(f"load generator failed: {done.stderr.decode()[-1500:]}")
        got = orjson.loads(done.stdout.splitlines()[-1])
        return {"started": got["calls"] + got["errors"], "succeeded": got["calls"],
                "failed": got["errors"]}

    def open_loop(self, target: str, rate: int, seconds: float) -> dict[str, Any]:
        """``rate`` calls/s in all, on a fixed schedule whatever the answers."""
        if self.loadgen == "h2load":
            return self._h2load(target, seconds, ["-m", "64"], rate=int(rate))
        return self._python({"kind": "rate", "rate": rate, "seconds": seconds,
                             "target": target})

    def closed_loop(self, target: str, seconds: float) -> dict[str, Any]:
        """64 calls in flight (8 per connection), back to back."""
        if self.loadgen == "h2load":
            return self._h2load(target, seconds, ["-m", "8"])
        return self._python({"kind": "unary", "concurrency": 64, "connections": 8,
                             "seconds": seconds, "target": target})


# ---------------------------------------------------------------- figures


def pct(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(p * len(sorted_values)))]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


@dataclass
class Line:
    """One line of the table; ``kind`` is ceiling, figure or reference."""

    name: str
    kind: str = "figure"
    offered: float | None = None
    accepted_per_s: float | None = None
    processed_per_s: float | None = None
    backlog: int | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    lower_bound: bool = False  # percentiles include events not done yet (counted until now)
    worker_cpu_us: float | None = None
    ceiling: str = ""  # name of the line this one is compared with
    ratio: float | None = None
    target: str = ""
    note: str = ""
    failed: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _f(value: float | None, width: int, spec: str = ",.0f") -> str:
    return f"{'-':>{width}}" if value is None else f"{format(value, spec):>{width}}"


def table(lines: list[Line]) -> str:
    head = (f"{'scenario':<58} {'offered':>7} {'accept/s':>8} {'proc/s':>7} {'ratio':>6} "
            f"{'backlog':>7} {'p50 ms':>8} {'p99 ms':>8} {'wCPU us/ev':>10}  note")
    out = [head, "-" * len(head)]
    for ln in lines:
        if ln.failed:
            out.append(f"{ln.name:<58} FAILED: {' '.join(ln.failed.split())[:120]}")
            continue
        ratio = ("ceil" if ln.kind == "ceiling" else "ref" if ln.kind == "reference"
                 else "-" if ln.ratio is None
                 else f"{ln.ratio:.1%}" if ln.ratio < 0.1 else f"{ln.ratio:.0%}")
        lb = ">" if ln.lower_bound else ""
        p50 = _f(ln.p50_ms, 8 - len(lb), ",.1f") if ln.p50_ms is not None else _f(None, 8)
        p99 = _f(ln.p99_ms, 8 - len(lb), ",.1f") if ln.p99_ms is not None else _f(None, 8)
        if ln.p50_ms is not None:
            p50, p99 = lb + p50, lb + p99
        note = "  ".join(x for x in (ln.note, ln.target) if x)
        out.append(f"{ln.name:<58} {_f(ln.offered, 7)} {_f(ln.accepted_per_s, 8)} "
                   f"{_f(ln.processed_per_s, 7)} {ratio:>6} {_f(ln.backlog, 7)} {p50} {p99} "
                   f"{_f(ln.worker_cpu_us, 10)}  {note}".rstrip())
    return "\n".join(out)


def bare_processing_loop(db: Db, seconds: float) -> dict[str, Any]:
    """The floor of processing: claim 500 unprocessed events, parse their bodies, mark them
    processed, commit (SQLite synchronous=FULL, as the stack runs). Nothing else runs."""
    done, batches = 0, 0
    if db.sqlite:
        conn = sqlite3.connect(db.path, isolation_level=None, timeout=30)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("UPDATE events SET processed_at = NULL, process_error = NULL")
        started_at = time.perf_counter()
        while time.perf_counter() - started_at < seconds:
            conn.execute("BEGIN IMMEDIATE")
            rows = conn.execute("SELECT id, body FROM events WHERE processed_at IS NULL "
                                "ORDER BY id LIMIT ?", (BATCH,)).fetchall()
            for _id, body in rows:
                orjson.loads(body)
            if rows:
                now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
                conn.execute(f"UPDATE events SET processed_at = ? WHERE id IN "
                             f"({','.join('?' * len(rows))})", [now, *(r[0] for r in rows)])
            conn.execute("COMMIT")
            if not rows:
                break
            done, batches = done + len(rows), batches + 1
        elapsed = time.perf_counter() - started_at
        conn.close()
    else:
        import psycopg

        with psycopg.connect(db.url) as pg:
            pg.execute("UPDATE events SET processed_at = NULL, process_error = NULL")
            pg.commit()
            started_at = time.perf_counter()
            while time.perf_counter() - started_at < seconds:
                rows = pg.execute("SELECT id, body FROM events WHERE processed_at IS NULL "
                                  "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                                  (BATCH,)).fetchall()
                for _id, body in rows:
                    orjson.loads(body)
                if rows:
                    pg.execute("UPDATE events SET processed_at = now() WHERE id = ANY(%s)",
                               ([r[0] for r in rows],))
                pg.commit()
                if not rows:
                    break
                done, batches = done + len(rows), batches + 1
            elapsed = time.perf_counter() - started_at
    return {"events": done, "seconds": round(elapsed, 2),
            "events_per_s": round(done / elapsed, 1) if elapsed else 0.0}


def watch_drain(dep: Deployment, run: Proc, total: int) -> dict[str, Any]:
    """Poll until the backlog is gone or ``DRAIN_SECONDS`` after its first event was done."""
    db = dep.db
    launched = time.monotonic()
    first: float | None = None
    left_first, cpu_first = total, Cpu()
    while True:
        if gone := run.gone():
            raise RuntimeError(gone)
        left, now = db.unprocessed(), time.monotonic()
        if first is None and left < total:
            first, left_first, cpu_first = now, left, tree_cpu(run.pid)
        if left == 0 or (first is not None and now - first >= DRAIN_SECONDS):
            break
        if first is None and now - launched > 90:
            raise RuntimeError(f"no event processed within 90 s of make run; see {run.log}")
        time.sleep(0.5)
    cpu = tree_cpu(run.pid) - cpu_first
    end_wall = time.time()
    done = [p for _r, p in db.times(0) if p is not None]
    done.sort()
    drained = left == 0
    # Drained: first to last processed_at. Cut off: from the first to the moment we stopped
    # looking, counting the events done by then.
    span_end = done[-1] if drained and done else end_wall
    counted = len(done) if drained else sum(1 for p in done if p <= end_wall)
    span = span_end - done[0] if done else 0.0
    rate = counted / span if span > 0 else 0.0
    per_event = cpu.workers / (left_first - left) * 1e6 if left_first > left else None
    return {"events": total, "processed": counted, "left": left, "drained": drained,
            "seconds": round(span, 2), "events_per_s": round(rate, 1),
            "worker_cpu_us_per_event": round(per_event) if per_event else None,
            "worker_processes": cpu.worker_processes,
            "worker_cores_busy": round(cpu.workers / max(1e-9, time.monotonic() - (first or 0)),
                                       2)}


TIMER_WORKFLOW = {"name": "bench timer", "active": True, "trigger": {"eventTypeKey": TYPE},
                  "start": "wait", "blocks": [
                      {"id": "wait", "type": "timer", "duration": "PT1H", "next": "end"},
                      {"id": "end", "type": "end"}]}


def processing_rows(make: Callable[[str], Any], db_label: str, senders: Senders
                    ) -> list[Line]:
    lines: list[Line] = []
    bare_name = f"bare loop: claim 500, parse, mark processed ({db_label})"
    ingest_name = f"ingest alone: unary, {SENDERS} senders x 8 in flight ({db_label})"
    for workflow in (False, True):
        what = "timer workflow" if workflow else "no workflow"
        name = f"processing alone, {what} ({db_label})"
        print(f"{stamp()} {name}: {BACKLOG:,} events backlog, drain up to {DRAIN_SECONDS:g} s",
              flush=True)
        try:
            with make(f"drain-{'timer' if workflow else 'none'}") as dep:
                with dep.server_alone("ingest"):
                    if workflow:
                        dep.create_workflow(TIMER_WORKFLOW)
                    ingest = ingest_backlog(dep, BACKLOG)
                # Watched from the start: the workers may begin before the gateway answers.
                with dep.make_run("drain", wait=False) as run:
                    drain = watch_drain(dep, run, ingest["events"])
                print(f"    backlog stored at {ingest['events_per_s']:,.0f} ev/s; drained "
                      f"{drain['processed']:,} in {drain['seconds']} s: "
                      f"{drain['events_per_s']:,.0f} ev/s", flush=True)
                if not workflow:
                    lines.append(Line(f"ingest alone: GenerateEvents 500 x 1 KB, c=2 "
                                      f"({db_label})", kind="reference",
                                      accepted_per_s=ingest["events_per_s"],
                                      note="the backlog's own ingest", extra=ingest))
                    lines += ceilings(dep, senders, bare_name, ingest_name)
                target = TARGETS["drain_timer" if workflow else "drain"]
                lines.append(Line(
                    name, processed_per_s=drain["events_per_s"],
                    backlog=drain["left"], worker_cpu_us=drain["worker_cpu_us_per_event"],
                    ceiling=bare_name,
                    target=f"target >= {target:,}/s" if db_label == "SQLite" else "",
                    note=f"{drain['processed']:,} of {drain['events']:,} in {drain['seconds']} s"
                         + ("" if drain["drained"] else " (cut off)"), extra=drain))
        except Exception as exc:  # noqa: BLE001 - one row failing must not end the bench
            lines.append(_failed(name, exc))
    return lines


def ceilings(dep: Deployment, senders: Senders, bare_name: str, ingest_name: str
             ) -> list[Line]:
    """On the drained deployment, workers stopped: ingest alone, then the bare loop."""
    out: list[Line] = []
    try:
        with dep.server_alone("ceiling"):
            senders.closed_loop(dep.target, 1.0)  # warm-up
            before, t0 = dep.db.max_id(), time.time()
            sent = senders.closed_loop(dep.target, CEILING_SECONDS)
            t1 = time.time()
        stored = [r for r, _p in dep.db.times(before) if t0 <= r <= t1]
        rate = len(stored) / (t1 - t0)
        out.append(Line(ingest_name, kind="ceiling", accepted_per_s=round(rate, 1),
                        note="no worker: the most end to end can reach",
                        extra={"stored": len(stored), "seconds": round(t1 - t0, 2), **sent}))
    except Exception as exc:  # noqa: BLE001
        out.append(_failed(ingest_name, exc))
    try:
        bare = bare_processing_loop(dep.db, BARE_SECONDS)
        out.append(Line(bare_name, kind="ceiling", processed_per_s=bare["events_per_s"],
                        note="one process, the same events", extra=bare))
    except Exception as exc:  # noqa: BLE001
        out.append(_failed(bare_name, exc))
    return out


def stamp() -> str:
    """Seconds since the module started, for the progress lines."""
    return f"[{time.monotonic() - BEGAN:4.0f} s]"


def _failed(name: str, exc: BaseException) -> Line:
    print(f"!! ROW FAILED: {name}: {exc}", file=sys.stderr, flush=True)
    traceback.print_exc(file=sys.stderr)
    return Line(name, failed=str(exc) or type(exc).__name__)


def rate_stats(rows: list[tuple[float, float | None]], t0: float, t1: float, until: float
               ) -> dict[str, Any]:
    """Accepted/s, processed/s, backlog and commit -> processed latency of one rate's events."""
    span = t1 - t0
    processed_in = sum(1 for _r, p in rows if p is not None and p <= t1)
    backlog_end = sum(1 for r, p in rows if r <= t1 and (p is None or p > t1))
    mid = (t0 + t1) / 2
    backlog_mid = sum(1 for r, p in rows if r <= mid and (p is None or p > mid))
    waits = sorted((p if p is not None else until) - r for r, p in rows)
    pending = sum(1 for _r, p in rows if p is None)
    return {"accepted": len(rows), "accepted_per_s": round(len(rows) / span, 1),
            "processed_per_s": round(processed_in / span, 1), "backlog_end": backlog_end,
            "backlog_mid": backlog_mid, "unprocessed_after_settle": pending,
            "p50_ms": ms(pct(waits, 0.50)), "p99_ms": ms(pct(waits, 0.99)),
            "max_ms": ms(waits[-1] if waits else None), "seconds": round(span, 2)}


def bounded(rate: float, s: dict[str, Any]) -> bool:
    """Sustained: the stack took what was offered, and the backlog at the end is at most two
    seconds of arrivals and grew by at most one second of them over the window's second half."""
    return (s["accepted_per_s"] >= 0.95 * rate and s["backlog_end"] <= 2 * rate
            and s["backlog_end"] <= s["backlog_mid"] + rate)


def end_to_end_rows(make: Callable[[str], Any], db_label: str, senders: Senders
                    ) -> tuple[list[Line], int | None]:
    lines: list[Line] = []
    ceiling = f"ingest alone: unary, {SENDERS} senders x 8 in flight ({db_label})"
    best: int | None = None
    try:
        with make("e2e") as dep, dep.make_run("e2e") as run:
            dep.send_one()
            if not dep.wait_processed(60):
                raise RuntimeError("the workers did not process a first event within 60 s")
            best = 0
            for rate in RATES:
                name = f"end to end at {rate:,} ev/s, {E2E_SECONDS:g} s ({db_label})"
                before, cpu0, t0 = dep.db.max_id(), tree_cpu(run.pid), time.time()
                sent = senders.open_loop(dep.target, rate, E2E_SECONDS)
                t1, cpu = time.time(), tree_cpu(run.pid) - cpu0
                dep.wait_processed(SETTLE)
                s = rate_stats(dep.db.times(before), t0, t1, time.time())
                ok = bounded(rate, s)
                s.update(sent=sent, bounded=ok, worker_processes=cpu.worker_processes,
                         worker_cores_busy=round(cpu.workers / (t1 - t0), 2),
                         other_cores_busy=round(cpu.rest / (t1 - t0), 2))
                per_event = (cpu.workers / (s["processed_per_s"] * (t1 - t0)) * 1e6
                             if s["processed_per_s"] else None)
                lines.append(Line(
                    name, offered=rate, accepted_per_s=s["accepted_per_s"],
                    processed_per_s=s["processed_per_s"], backlog=s["backlog_end"],
                    p50_ms=s["p50_ms"], p99_ms=s["p99_ms"],
                    lower_bound=bool(s["unprocessed_after_settle"]),
                    worker_cpu_us=round(per_event) if per_event else None, ceiling=ceiling,
                    note="bounded" if ok else "NOT bounded", extra=s))
                print(f"{stamp()} {name}: accepted {s['accepted_per_s']:,.0f}/s, processed "
                      f"{s['processed_per_s']:,.0f}/s, backlog {s['backlog_end']:,} "
                      f"({'bounded' if ok else 'NOT bounded'})", flush=True)
                if not ok:
                    break
                best = rate
    except Exception as exc:  # noqa: BLE001
        lines.append(_failed(f"end to end ({db_label})", exc))
    return lines, best


SMTP_FLOOR = "bare SMTP: a letter per connection to the sink (smtplib)"


def bare_smtp(sink: Sink, letters: int = 200) -> Line:
    """The floor of event -> letter: connect, send one ~2 KB letter, quit; from the start
    to the sink's arrival time, one at a time."""
    import smtplib
    from email.message import EmailMessage

    host, port = "127.0.0.1", int(sink.controller.port)
    waits = []
    for i in range(letters):
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "bench@example.com", "u@example.com", "cart"
        msg["Message-ID"] = f"<bare.{i}.{os.getpid()}@bench>"
        msg.set_content("Your cart is waiting")
        msg.add_alternative(MAIL_HTML * 8, subtype="html")
        seen, t0 = len(sink.arrivals), time.time()
        with smtplib.SMTP(host, port, timeout=10) as smtp:
            smtp.send_message(msg)
        if len(sink.arrivals) > seen:
            waits.append(sink.arrivals[-1][0] - t0)
    waits.sort()
    return Line(SMTP_FLOOR, kind="ceiling", p50_ms=ms(pct(waits, 0.5)),
                p99_ms=ms(pct(waits, 0.99)), note="the latency floor of the letter row",
                extra={"letters": len(waits), "latency_floor": True})


MAIL_HTML = """<h1>You left these in your cart</h1>
#foreach($!item in $!data.get('items').get('array'))
<p>$velocityCount. $!item.get('name') &mdash; $!item.get('price') UAH</p>
#end"""


def mail_rows(make: Callable[[str], Any], db_label: str, senders: Senders, sink: Sink
              ) -> list[Line]:
    name = f"event -> letter at {MAIL_RATE} ev/s, {E2E_SECONDS:g} s ({db_label})"
    try:
        with make("mail") as dep, dep.make_run("mail") as run:
            tid = dep.create_template(name="cart", subject="Your cart", html=MAIL_HTML,
                                      text="Your cart is waiting")
            dep.create_workflow({"name": "bench mail", "active": True,
                                 "trigger": {"eventTypeKey": TYPE}, "start": "mail",
                                 "blocks": [{"id": "mail", "type": "email", "templateId": tid,
                                             "to": "${email}"}]})
            seen = len(sink.arrivals)
            dep.send_one()
            deadline = time.monotonic() + 60
            while len(sink.arrivals) == seen:
                if time.monotonic() > deadline:
                    raise RuntimeError("no letter reached the SMTP sink within 60 s of a "
                                       f"first event; see {run.log}")
                time.sleep(0.2)
            before, first_letter = dep.db.max_id(), len(sink.arrivals)
            cpu0, t0 = tree_cpu(run.pid), time.time()
            sent = senders.open_loop(dep.target, MAIL_RATE, E2E_SECONDS)
            t1, cpu = time.time(), tree_cpu(run.pid) - cpu0
            accepted = dep.db.one("SELECT count(*) FROM events WHERE id > ?", before)
            deadline = time.monotonic() + MAIL_WAIT

            def looked() -> tuple[dict[str, float], list[tuple[float, str | None]], int]:
                # A letter counts once it reached the sink and its delivery record (which
                # names its Message-ID) is committed: the record may follow the send.
                arrived = {mid: at for at, mid in sink.arrivals[first_letter:]}
                rows = dep.db.letters(before)
                return arrived, rows, sum(1 for _c, mid in rows if mid not in arrived)

            arrived, rows, left = looked()
            while (left or len(rows) < accepted) and time.monotonic() < deadline:
                time.sleep(0.25)
                arrived, rows, left = looked()
            until = time.time()
            waits, pending = [], []
            for committed, mid in rows:
                if mid is not None and mid in arrived:
                    waits.append(arrived[mid] - committed)
                else:  # no letter yet: waiting until now, a lower bound
                    pending.append(until - committed)
            missing = len(pending)
            all_waits = sorted(waits + pending)
            stages = {k: {"p50_ms": ms(pct(v, 0.5)), "p99_ms": ms(pct(v, 0.99))}
                      for k, v in dep.db.letter_stages(before).items()}
        s = {"accepted": accepted, "accepted_per_s": round(accepted / (t1 - t0), 1),
             "letters": len(waits), "letters_missing": missing,
             "letters_per_s": round(len(waits) / max(1e-9, until - t0), 1),
             "p50_ms": ms(pct(all_waits, 0.5)), "p99_ms": ms(pct(all_waits, 0.99)),
             "max_ms": ms(all_waits[-1] if all_waits else None), "sent": sent,
             "worker_cores_busy": round(cpu.workers / (t1 - t0), 2),
             "wait_after_load_s": round(until - t1, 1), "stages": stages}
        per_event = cpu.workers / accepted * 1e6 if accepted else None
        print(f"{stamp()} {name}: {len(waits):,} of {accepted:,} letters, p50 {s['p50_ms']} ms, "
              f"p99 {s['p99_ms']} ms; stages p50/p99 ms: " + ", ".join(
                  f"{k} {v['p50_ms']}/{v['p99_ms']}" for k, v in stages.items()), flush=True)
        return [Line(name, offered=MAIL_RATE, accepted_per_s=s["accepted_per_s"],
                     processed_per_s=s["letters_per_s"], backlog=missing,
                     p50_ms=s["p50_ms"], p99_ms=s["p99_ms"], lower_bound=bool(missing),
                     worker_cpu_us=round(per_event) if per_event else None,
                     note=f"{len(waits):,} letters of {accepted:,}", ceiling=SMTP_FLOOR,
                     target="target p99 <= 1,000 ms" if db_label == "SQLite" else "",
                     extra=s)]
    except Exception as exc:  # noqa: BLE001
        return [_failed(name, exc)]


# ---------------------------------------------------------------- the run


def verdicts(lines: list[Line], throughput: dict[str, int | None]) -> list[str]:
    by = {ln.name: ln for ln in lines if not ln.failed}
    out = []

    def say(met: bool, what: str, figure: str) -> None:
        out.append(f"  {'MET ' if met else 'MISS'} {what} -> {figure}")

    for key, label in (("drain", "no workflow"), ("drain_timer", "timer workflow")):
        ln = by.get(f"processing alone, {label} (SQLite)")
        if ln is not None and ln.processed_per_s is not None:
            say(ln.processed_per_s >= TARGETS[key],
                f"processing alone, {label} >= {TARGETS[key]:,} ev/s",
                f"{ln.processed_per_s:,.0f} ev/s")
    best = throughput.get("SQLite")
    if best is not None:
        say(best >= TARGETS["e2e"], f"end to end sustained >= {TARGETS['e2e']:,} ev/s",
            f"{best:,} ev/s (highest bounded rate of {', '.join(map(str, RATES))})" if best
            else f"none of {', '.join(map(str, RATES))} ev/s bounded")
    ln = by.get(f"event -> letter at {MAIL_RATE} ev/s, {E2E_SECONDS:g} s (SQLite)")
    if ln is not None and ln.p99_ms is not None:
        say(not ln.lower_bound and ln.p99_ms <= TARGETS["mail_p99_ms"],
            f"event -> SMTP p99 <= 1 s at {MAIL_RATE} ev/s",
            f"p99 {'>' if ln.lower_bound else ''}{ln.p99_ms:,.0f} ms")
    return out


def fill_ratios(lines: list[Line]) -> None:
    by = {ln.name: ln for ln in lines}
    for ln in lines:
        base = by.get(ln.ceiling)
        if base is None or base.failed:
            continue
        if base.extra.get("latency_floor"):  # shown beside, no ratio of latencies
            continue
        top = base.processed_per_s or base.accepted_per_s
        if top and ln.processed_per_s is not None:
            ln.ratio = round(ln.processed_per_s / top, 4)


def save(doc: dict[str, Any]) -> Path:
    """Into bench/results/latest.json beside the ingest rows (under "workers")."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    try:
        whole = orjson.loads(RESULTS.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        whole = {}
    whole["workers"] = doc
    RESULTS.write_bytes(orjson.dumps(whole, option=orjson.OPT_INDENT_2))
    return RESULTS


def main() -> None:
    started_at = time.monotonic()
    loadgen = stack.use_loadgen()
    if loadgen == "h2load":
        print(f"workers rows: {SENDERS} h2load processes (one contact each) for every load, "
              "open loop with --rps", flush=True)
    pg_url = os.environ.get("DATABASE_URL", "")
    pg_url = pg_url if pg_url.startswith(("postgres://", "postgresql://")) else ""
    print(f"workers bench (issue 11): make run's stack, rate limit off; backlog "
          f"{BACKLOG:,} (BENCH_BACKLOG), drain <= {DRAIN_SECONDS:g} s (BENCH_DRAIN_SECONDS), "
          f"rates {','.join(map(str, RATES))} (BENCH_E2E_RATES) for {E2E_SECONDS:g} s "
          f"(BENCH_E2E_SECONDS)", flush=True)
    lines: list[Line] = []
    throughput: dict[str, int | None] = {}
    sink = Sink()
    sink.start()
    try:
        with tempfile.TemporaryDirectory(prefix="eventflow-wbench-") as tmp_name:
            tmp = Path(tmp_name)
            senders = Senders(tmp, loadgen, stack.LOADGEN["path"])
            try:
                lines.append(bare_smtp(sink))
            except Exception as exc:  # noqa: BLE001
                lines.append(_failed(SMTP_FLOOR, exc))
            with stack.valkey(tmp) as redis_url:
                for label, url in (("SQLite", ""), ("PostgreSQL", pg_url)):
                    if label == "PostgreSQL" and not url:
                        continue

                    @contextmanager
                    def make(name: str, _url: str = url, _label: str = label
                             ) -> Iterator[Deployment]:
                        with deployment(tmp, f"{_label.lower()}-{name}", pg_url=_url,
                                        redis_url=redis_url, smtp_url=sink.url) as dep:
                            yield dep

                    if "processing" in ROWS:
                        lines += processing_rows(make, label, senders)
                    if "e2e" in ROWS:
                        e2e, best = end_to_end_rows(make, label, senders)
                        lines += e2e
                        throughput[label] = best
                    if "letter" in ROWS:
                        lines += mail_rows(make, label, senders, sink)
    finally:
        sink.stop()
    fill_ratios(lines)
    print()
    print(table(lines))
    print()
    for label, best in throughput.items():
        ceiling = next((ln.accepted_per_s for ln in lines if ln.kind == "ceiling"
                        and ln.name.startswith("ingest alone") and f"({label})" in ln.name), None)
        shown = "none of the rates" if not best else f"{best:,} ev/s"
        print(f"throughput ({label}, highest offered rate with the backlog bounded): {shown}; "
              f"ingest alone (ceiling): "
              f"{'-' if ceiling is None else format(ceiling, ',.0f')} ev/s; RudderStack: "
              f"{RUDDERSTACK:,} ev/s on 2 cores (their published figure, not measured here)")
    print("\ntargets (2-core machine, SQLite):")
    print("\n".join(verdicts(lines, throughput)))
    seconds = time.monotonic() - started_at
    meta = {"machine": machine(), "seconds": round(seconds),
            "knobs": {"BENCH_ROWS": sorted(ROWS), "BENCH_BACKLOG": BACKLOG,
                      "BENCH_DRAIN_SECONDS": DRAIN_SECONDS,
                      "BENCH_E2E_RATES": RATES, "BENCH_E2E_SECONDS": E2E_SECONDS,
                      "BENCH_MAIL_WAIT": MAIL_WAIT},
            "loadgen": (f"{SENDERS} x h2load -c 1" if loadgen == "h2load"
                        else "Python (bench/load.py)"),
            "throughput": throughput, "rudderstack_events_per_s": RUDDERSTACK,
            "rows": [vars(ln) for ln in lines]}
    path = save(meta)
    print(f"\nworkers rows took {seconds:.0f} s; results in {path} (\"workers\")")


if __name__ == "__main__":
    main()
