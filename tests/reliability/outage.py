"""What the outage scenarios share: a Redis server of their own that can be killed and
started again on its port, a worker process, load that records what was acknowledged, and
counts read from the database."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import pytest
import redis
from sqlalchemy import text

from eventflow.v1 import events_pb2, events_pb2_grpc
from server.config import Settings
from server.db.engine import create_engine
from server.procs import terminate
from tests.reliability.procs import Procs
from tests.support import basic, free_port


class RedisServer:
    """``redis-server`` (or ``valkey-server``) on a port of its own, without persistence:
    after ``kill`` and ``start`` it is empty, as a Redis that lost its data."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server") or shutil.which("valkey-server")
        if binary is None:
            pytest.skip("no redis-server or valkey-server on PATH")
        self._binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [self._binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url, socket_timeout=0.5).ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"{self._binary} did not answer on port {self.port}")

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None


@contextmanager
def worker(procs: Procs, **extra: str) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m workers`` (one worker process) for the deployment."""
    env = {**procs.env, "EVENTFLOW_WORKER_PROCESSES": "1", **extra}
    proc = subprocess.Popen([sys.executable, "-m", "workers"], env=env)
    try:
        yield proc
    finally:
        terminate(proc)


@dataclass(frozen=True, slots=True)
class Call:
    started: float
    ended: float
    outcome: str  # "200", "503", "OK", "UNAVAILABLE", an exception's class name


@dataclass
class Tally:
    """What the load sent and what came back; ``acked`` maps event id to key value;
    ``calls`` each call's times and outcome when the load records them."""

    sent: int = 0
    acked: dict[int, str] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    slowest: float = 0.0
    calls: list[Call] = field(default_factory=list)
    record: bool = False
    # The first words of each 5xx answer and gRPC error.
    errors: list[str] = field(default_factory=list)

    def refuse(self, why: str) -> None:
        self.refused[why] = self.refused.get(why, 0) + 1

    def done(self, started: float, outcome: str) -> None:
        ended = time.monotonic()
        self.slowest = max(self.slowest, ended - started)
        if self.record:
            self.calls.append(Call(started, ended, outcome))


async def load(procs: Procs, tally: Tally, stop: asyncio.Event, *, key: str | None = None,
               callers: int = 4, type_key: str = "outage", record: bool = False) -> None:
    """Events over HTTP and gRPC (``callers`` of each, one request at a time) until ``stop``;
    each event has a key value and messageId of its own; ``record``: keep every call."""
    key = key or procs.api_key
    tally.record = record
    tag = secrets.token_hex(3)

    async def over_http(n: int) -> None:
        async with httpx.AsyncClient(base_url=procs.http_url, timeout=30) as http:
            i = 0
            while not stop.is_set():
                kv = f"h{tag}-{n}-{i}"
                i += 1
                tally.sent += 1
                started = time.monotonic()
                try:
                    r = await http.post("/api/v2/event", headers={"Authorization": basic(key)},
                                        json={"eventTypeKey": type_key, "keyValue": kv,
                                              "messageId": kv})
                except httpx.HTTPError as exc:
                    tally.done(started, type(exc).__name__)
                    tally.refuse(type(exc).__name__)
                    await asyncio.sleep(0.05)
                    continue
                tally.done(started, str(r.status_code))
                if r.status_code >= 500:
                    tally.errors.append(r.text[:300])
                if r.status_code == 200:
                    tally.acked[int(r.headers["X-Event-Id"])] = kv
                else:
                    tally.refuse(f"HTTP {r.status_code}")
                    await asyncio.sleep(0.05)

    async def over_grpc(n: int) -> None:
        async with grpc.aio.insecure_channel(procs.grpc_target) as channel:
            stub = events_pb2_grpc.EventServiceStub(channel)
            i = 0
            while not stop.is_set():
                kv = f"g{tag}-{n}-{i}"
                i += 1
                tally.sent += 1
                started = time.monotonic()
                try:
                    reply = await stub.GenerateEvent(
                        events_pb2.GenerateEventRequest(event_type_key=type_key, key_value=kv,
                                                        message_id=kv),
                        metadata=(("x-api-key", key),), timeout=30)
                except grpc.aio.AioRpcError as exc:
                    tally.done(started, exc.code().name)
                    tally.refuse(exc.code().name)
                    tally.errors.append(f"{exc.code().name}: {exc.details()}"[:300])
                    await asyncio.sleep(0.05)
                    continue
                tally.done(started, "OK")
                tally.acked[reply.event_id] = kv

    await asyncio.gather(*(over_http(n) for n in range(callers)),
                         *(over_grpc(n) for n in range(callers)))


@dataclass
class Counts:
    stored: int
    processed: int
    distinct_keys: int


async def counts(settings: Settings, ids: list[int]) -> Counts:
    """How many of ``ids`` are stored and processed, and how many key values they hold."""
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            stored = processed = 0
            keys: set[str] = set()
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                rows = (await conn.execute(
                    text("SELECT key_value, processed_at FROM events WHERE id IN "
                         f"({','.join(str(int(x)) for x in chunk)})"))).all()
                stored += len(rows)
                processed += sum(1 for r in rows if r[1] is not None)
                keys.update(str(r[0]) for r in rows)
    finally:
        await engine.dispose()
    return Counts(stored=stored, processed=processed, distinct_keys=len(keys))


async def wait_processed(settings: Settings, ids: list[int], *, timeout: float) -> float:
    """Seconds until every one of ``ids`` was processed; fails after ``timeout``."""
    started = time.monotonic()
    while True:
        c = await counts(settings, ids)
        if c.processed == len(ids):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{len(ids) - c.processed} of {len(ids)} acknowledged events "
                                 f"not processed {timeout:.0f} s later ({c})")
        await asyncio.sleep(0.25)


def rss_kib(pid: int) -> int:
    """The resident set of process ``pid`` (KiB), 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    out = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for child in children:
        out += descendants(int(child))
    return out


def process_name(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    args = [a.decode(errors="replace") for a in raw if a]
    for flag in ("-m",):
        if flag in args:
            i = args.index(flag)
            rest = [a for a in args[i + 1:] if not a.startswith("--settings")]
            return " ".join(rest[:2])
    return os.path.basename(args[0]) if args else "?"
