"""The C load generator: ``h2load`` (Debian package nghttp2-client) for the closed-loop rows.

h2load costs about a tenth of the CPU per call of the Python generator (``bench/load.py``),
so on a small machine it leaves the cores to the server. It drives gRPC unary calls over
h2c with a pre-framed body (one byte 0 = not compressed, a 4-byte big-endian length, the
serialized request) and HTTP/1.1 POSTs with ``--h1``.

A row is two h2load runs with the same settings: a warm-up run, then (once the server has
stored everything it was sent) the measured run with ``--log-file`` (one line per request:
start in microseconds since the epoch, HTTP status or -1, microseconds to the end of the
response), which gives the calls and the latency percentiles of the measured window.

gRPC reports failures in trailers under HTTP 200, which h2load counts as successes. So
before a row the exact body and headers go once through the Python gRPC client and must
come back OK (else ``RowFailed``), and after it the events the server stored during the
measured run (rows in ``events``, the SQLite file opened read-only or the PostgreSQL
schema) are compared with the events of the calls h2load saw succeed: the shortfall is
reported as errors.

The open-loop rate row and the StreamEvents rows stay on the Python generator: h2load
cannot stream both ways, and its ``--rps`` releases the requests due in 10 ms ticks and
times them from the tick (see docs/bench.md).
"""

from __future__ import annotations

import base64
import http.client
import os
import re
import resource
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc

from bench.payloads import body_bytes, kb_body, request
from eventflow.v1 import events_pb2

KINDS = ("unary", "batch", "http")  # rows h2load can run; rate and stream stay on Python
MISSING = ("h2load not found: install nghttp2-client (apt-get install nghttp2-client) for a "
           "load generator that leaves the cores to the server; using the Python generator")
SERVICE = "/eventflow.v1.EventService/"
MAX_MESSAGE = 32 << 20


class RowFailed(RuntimeError):
    """The row cannot be measured: its request does not succeed when sent once."""


class Watched(Protocol):
    def cpu(self) -> float: ...


def find(*, install: bool = True) -> str | None:
    """The h2load binary; when missing and we are root with apt-get, try to install it."""
    path = shutil.which("h2load")
    if path or not install:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("h2load not found: installing nghttp2-client with apt-get "
              "(BENCH_LOADGEN=python skips this)", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        cmd = ["apt-get", "install", "-y", "--no-install-recommends", "nghttp2-client"]
        if subprocess.run(cmd, env=env, check=False).returncode != 0:
            # A fresh image often has no package lists yet.
            subprocess.run(["apt-get", "update"], env=env, check=False)
            subprocess.run(cmd, env=env, check=False)
        path = shutil.which("h2load")
    return path


def choose() -> tuple[str, str]:
    """("h2load", its path) or ("python", ""), announcing the choice on stdout."""
    wanted = os.environ.get("BENCH_LOADGEN", "").strip().lower()
    if wanted == "python":
        print("load generator: Python grpc.aio for every row (BENCH_LOADGEN=python)", flush=True)
        return "python", ""
    if wanted not in ("", "auto", "h2load"):
        raise SystemExit(f"BENCH_LOADGEN={wanted!r}: use h2load or python")
    path = find()
    if path is None:
        if wanted == "h2load":
            raise SystemExit("BENCH_LOADGEN=h2load but " + MISSING.split(";")[0])
        print(MISSING, flush=True)
        return "python", ""
    print(f"load generator: {version(path)} for the unary, batch and HTTP rows; "
          "Python grpc.aio for StreamEvents and the rate row", flush=True)
    return "h2load", path


def version(path: str) -> str:
    done = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "h2load"


@dataclass
class Job:
    """What one row sends: a body file, its headers, and h2load's connection settings."""

    url: str
    body: Path
    headers: list[tuple[str, str]]  # sent by h2load and by the pre-check alike
    events_per_call: int
    clients: int
    streams: int
    h1: bool = False

    def argv(self, binary: str, seconds: float, log: Path | None) -> list[str]:
        argv = [binary, "-D", f"{max(1, round(seconds * 1000))}ms", "-c", str(self.clients),
                "-m", str(self.streams), "-d", str(self.body)]
        if self.h1:
            argv.append("--h1")
        for name, value in self.headers:
            argv += ["-H", f"{name}:{value}"]
        if log is not None:
            argv += ["--log-file", str(log)]
        return [*argv, self.url]


def _auth(spec: dict[str, Any]) -> tuple[str, str]:
    """The header bench/load.py sends: eSputnik's Basic any:KEY."""
    token = base64.b64encode(f"bench:{spec.get('api_key', '')}".encode()).decode()
    return ("authorization", "Basic " + token)


def grpc_frame(message: bytes) -> bytes:
    return b"\0" + len(message).to_bytes(4, "big") + message


def job_for(spec: dict[str, Any], workdir: Path) -> Job:
    """The h2load job of a row: same payloads, concurrency and connections as bench/load.py."""
    kind, concurrency = spec["kind"], int(spec["concurrency"])
    workdir.mkdir(parents=True, exist_ok=True)
    if kind == "http":
        body = workdir / "event.json"
        body.write_bytes(body_bytes(kb_body()))
        base = spec["target"].rstrip("/")
        # HTTP/1.1 carries one request at a time per connection: c connections, as load.py.
        return Job(url=base + spec.get("path", "/api/v2/event"), body=body,
                   headers=[("content-type", "application/json"), _auth(spec)],
                   events_per_call=1, clients=concurrency, streams=1, h1=True)
    if kind == "unary":
        body, method, n = workdir / "unary.bin", "GenerateEvent", 1
        body.write_bytes(grpc_frame(request(kb_body()).SerializeToString()))
    elif kind == "batch":
        n = int(spec.get("batch", 500))
        msg = events_pb2.GenerateEventsRequest(events=[request(kb_body(i)) for i in range(n)])
        body, method = workdir / f"batch{n}.bin", "GenerateEvents"
        body.write_bytes(grpc_frame(msg.SerializeToString()))
    else:
        raise ValueError(f"h2load cannot run a {kind!r} row")
    # As many connections as the Python generator opens (SO_REUSEPORT spreads connections,
    # not calls, over the server's processes), the calls in flight shared between them.
    clients = max(1, min(int(spec.get("connections", 4)), concurrency))
    if concurrency % clients:
        clients = 1
    return Job(url=f"http://{spec['target']}{SERVICE}{method}", body=body,
               headers=[("content-type", "application/grpc"), ("te", "trailers"), _auth(spec)],
               events_per_call=n, clients=clients, streams=concurrency // clients)


def precheck(job: Job, target: str) -> None:
    """Send the row's exact body and headers once; anything but success fails the row."""
    if job.h1:
        host, port = target.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)
        path = "/" + job.url.split("://", 1)[1].split("/", 1)[1]
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            conn.request("POST", path, body=job.body.read_bytes(), headers=dict(job.headers))
            reply = conn.getresponse()
            text = reply.read()[:300].decode(errors="replace")
        finally:
            conn.close()
        if reply.status != 200:
            raise RowFailed(f"pre-check POST {path}: HTTP {reply.status} {text}")
        return
    method = job.url.split(target, 1)[1]
    meta = tuple((k, v) for k, v in job.headers if k not in ("content-type", "te"))
    with grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                                                ("grpc.max_send_message_length", MAX_MESSAGE)]
                               ) as channel:
        # No (de)serializers: bytes in, bytes out, the body file's message as it is.
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)
        try:
            raw = call(job.body.read_bytes()[5:], metadata=meta, timeout=30)
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
            raise RowFailed(f"pre-check {method}: {getattr(code, 'name', code)}: {details}"
                            ) from None
    if method.endswith("GenerateEvent"):
        if events_pb2.GenerateEventResponse.FromString(raw).duplicate:
            raise RowFailed(f"pre-check {method}: answered as a duplicate, nothing stored")
    else:
        reply = events_pb2.GenerateEventsResponse.FromString(raw)
        if reply.success_count != job.events_per_call:
            first = next((r for r in reply.results if r.status != "ACCEPTED"), None)
            raise RowFailed(f"pre-check {method}: {reply.success_count} of "
                            f"{job.events_per_call} events accepted; first rejection: {first}")


class Store:
    """Counts the ``events`` rows of the server under test, read-only."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url

    def count(self) -> int:
        if self.url.startswith("sqlite"):
            path = self.url.split(":///", 1)[1].split("?", 1)[0]
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
            try:
                return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
            finally:
                conn.close()
        import psycopg

        with psycopg.connect(self.url) as pg:
            row = pg.execute("SELECT count(*) FROM events").fetchone()
            return int(row[0]) if row else 0

    def settle(self, *, quiet: float = 0.3, timeout: float = 30.0) -> int:
        """The count once it stopped moving: calls cut off at the end of a run finish."""
        deadline = time.monotonic() + timeout
        last = self.count()
        while time.monotonic() < deadline:
            time.sleep(quiet)
            now = self.count()
            if now == last:
                return now
            last = now
        return last


_SUMMARY = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                      r"(\d+) failed, (\d+) errored, (\d+) timeout")


def _h2load(argv: list[str], out: Path, timeout: float) -> dict[str, int]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout)
    out.write_text(" ".join(argv) + "\n\n" + done.stdout + done.stderr)
    found = _SUMMARY.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"h2load failed ({done.returncode}), see {out}: "
                           f"{(done.stderr or done.stdout)[-1000:]}")
    keys = ("total", "started", "done", "succeeded", "failed", "errored", "timeout")
    return dict(zip(keys, map(int, found.groups()), strict=True))


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _pct(lat: list[int], p: float) -> float | None:
    return round(lat[min(len(lat) - 1, int(p * len(lat)))] / 1000, 2) if lat else None


_runs = 0


def run(spec: dict[str, Any], *, binary: str, workdir: Path,
        watch: Watched | None = None) -> dict[str, Any]:
    """One row on h2load; the same result keys as bench/load.py plus the accounting."""
    global _runs
    _runs += 1
    tag = f"h2load-{_runs:02d}-{spec['kind']}"
    job = job_for(spec, workdir / tag)
    seconds, warmup = float(spec.get("seconds", 3.0)), float(spec.get("warmup", 1.0))
    store = Store(spec["database_url"]) if spec.get("database_url") else None
    precheck(job, spec["target"])
    limit = seconds + warmup + 60
    if warmup > 0:
        _h2load(job.argv(binary, warmup, None), workdir / f"{tag}-warmup.out", limit)
    before = store.settle() if store is not None else 0
    log = workdir / f"{tag}.tsv"
    log.unlink(missing_ok=True)  # h2load appends
    cpu0 = watch.cpu() if watch is not None else 0.0
    gen0, t0 = _children_cpu(), time.monotonic()
    summary = _h2load(job.argv(binary, seconds, log), workdir / f"{tag}.out", limit)
    wall, gen_cpu = time.monotonic() - t0, _children_cpu() - gen0
    stored = store.settle() - before if store is not None else None
    used = (watch.cpu() - cpu0) if watch is not None else 0.0

    ok: list[int] = []  # latency in us of the calls answered with 2xx
    failed = 0
    for line in log.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) < 3:
            continue
        if 200 <= int(fields[1]) < 300:
            ok.append(int(fields[2]))
        else:
            failed += 1
    failed = max(failed, summary["failed"] + summary["errored"] + summary["timeout"])
    ok.sort()
    calls, epc = len(ok), job.events_per_call
    answered = calls * epc  # events of the calls h2load saw answered with 2xx
    errors, first_error, missing = failed * epc, "", 0
    if failed:
        first_error = f"h2load: {failed} calls failed (HTTP status or stream error)"
    if stored is not None:
        # gRPC failures come as HTTP 200 with the status in the trailers: they show as
        # events not stored. Calls cut off at the end of the run (at most in_flight_at_end)
        # may be stored without h2load counting them, so this is a lower bound.
        missing = max(0, answered - stored)
        if missing:
            first_error = (f"{missing} of the {answered} events of calls h2load counted as "
                           f"answered were not stored (gRPC status in the trailers); "
                           f"stored {stored}")
    events = answered - missing
    result: dict[str, Any] = {
        "events_per_s": round(events / seconds, 1), "calls_per_s": round(events / epc / seconds, 1),
        "events": events, "calls": events // epc, "seconds": round(seconds, 2),
        "p50_ms": _pct(ok, 0.50), "p99_ms": _pct(ok, 0.99), "max_ms": _pct(ok, 1.0),
        "errors": errors + missing, "first_error": first_error, "loadgen": "h2load",
        "loadgen_cores_busy": round(gen_cpu / wall, 2) if wall else None,
        "answered_events": answered, "in_flight_at_end": summary["started"] - summary["done"],
    }
    if stored is not None:
        result["stored_events"] = stored
    if watch is not None:
        if events:
            result["server_cpu_us_per_event"] = round(used / events * 1e6, 1)
        result["server_cores_busy"] = round(used / wall, 2)
    return result
