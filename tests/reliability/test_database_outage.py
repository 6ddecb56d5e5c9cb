"""The database locked by someone else (SQLite: an exclusive transaction of another
connection; PostgreSQL: ACCESS EXCLUSIVE locks), or every connection of the deployment
terminated under load (PostgreSQL): calls are answered 503 / UNAVAILABLE within a bound,
saying what to do, nothing acknowledged is lost, and the deployment works again the
moment the lock goes or new connections are open, without a restart."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import httpx
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from eventflow.v1 import events_pb2, events_pb2_grpc
from server.db.engine import DB_WAIT_SECONDS, create_engine
from server.procs import terminate
from tests.reliability.outage import Tally, counts, descendants, load, wait_processed, worker
from tests.reliability.procs import Procs, deployment_env, running
from tests.support import Backends, basic, free_port, private_backends

# An answer under the lock comes within this: the serving processes' wait for a lock
# (DB_WAIT_SECONDS), a second batch's wait behind the first, and a loaded machine.
BOUND = 2 * DB_WAIT_SECONDS + 5


@pytest.fixture
def deployment(backends: Backends, tmp_path: Path) -> Iterator[Procs]:
    own = private_backends(backends, tmp_path)
    try:
        with running(own, tmp_path / "data") as procs:
            yield procs
    finally:
        own.close()


@contextmanager
def locked(procs: Procs) -> Iterator[None]:
    """Hold the deployment's database so that nobody else may write (or, on PostgreSQL,
    read) the tables the calls below use."""
    url = make_url(procs.settings.database_url)
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(str(url.database), isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    base = os.environ["EVENTFLOW_TEST_DATABASE_URL"]
    schema = procs.settings.database_url.rsplit("search_path%3D", 1)[1]
    conn = psycopg.connect(base)
    conn.execute(f'SET search_path TO "{schema}"')
    conn.execute("LOCK TABLE events, contacts IN ACCESS EXCLUSIVE MODE")
    try:
        yield
    finally:
        conn.rollback()
        conn.close()


async def _calls(procs: Procs, tag: str) -> dict[str, tuple[int | str, str, float]]:
    """An event over HTTP and gRPC and a contact write: (status, message, seconds) each."""
    out: dict[str, tuple[int | str, str, float]] = {}
    auth = {"Authorization": basic(procs.api_key)}

    async def timed(name: str, coro: object) -> None:
        started = time.monotonic()
        status, message = await coro  # type: ignore[misc]
        out[name] = (status, message, time.monotonic() - started)

    async def http_event() -> tuple[int, str]:
        async with httpx.AsyncClient(base_url=procs.http_url, timeout=60) as http:
            r = await http.post("/api/v2/event", headers=auth,
                                json={"eventTypeKey": "locked", "keyValue": f"e-{tag}"})
        return r.status_code, r.text

    async def contact() -> tuple[int, str]:
        async with httpx.AsyncClient(base_url=procs.http_url, timeout=60) as http:
            r = await http.post("/api/v1/contact", headers=auth, json={
                "firstName": tag, "channels": [{"type": "email", "value": f"{tag}@lock.example"}]})
        return r.status_code, r.text

    async def grpc_event() -> tuple[str, str]:
        async with grpc.aio.insecure_channel(procs.grpc_target) as channel:
            try:
                await events_pb2_grpc.EventServiceStub(channel).GenerateEvent(
                    events_pb2.GenerateEventRequest(event_type_key="locked",
                                                    key_value=f"g-{tag}"),
                    metadata=(("x-api-key", procs.api_key),), timeout=60)
            except grpc.aio.AioRpcError as exc:
                return exc.code().name, exc.details() or ""
        return "OK", ""

    await asyncio.gather(timed("http event", http_event()), timed("contact", contact()),
                         timed("grpc event", grpc_event()))
    return out


async def _event_count(procs: Procs) -> int:
    async with grpc.aio.insecure_channel(procs.grpc_target) as channel:
        reply = await events_pb2_grpc.EventServiceStub(channel).ListEvents(
            events_pb2.ListEventsRequest(event_type_key="locked", page_size=100),
            metadata=(("x-api-key", procs.api_key),))
    return len(reply.events)


async def test_a_locked_database_is_503_then_recovers(deployment: Procs) -> None:
    """While another connection holds the database: the event (HTTP, gRPC) and a contact
    write answer 503 / UNAVAILABLE within the bound, with a message saying nothing was
    stored and to retry; the moment the lock goes the same calls succeed, no restart."""
    procs = deployment
    before = await _calls(procs, "warm")
    assert sorted(str(v[0]) for v in before.values()) == ["200", "200", "OK"], before
    with locked(procs):
        under = await _calls(procs, "under")
        again = await _calls(procs, "again")
    print(f"\nunder the lock: {under}\nagain: {again}")
    # Once a write met the lock, the ingest writer waits only briefly until one succeeds.
    assert again["http event"][0] == 503 and again["grpc event"][0] == "UNAVAILABLE"
    assert again["grpc event"][2] < DB_WAIT_SECONDS and again["http event"][2] < DB_WAIT_SECONDS
    for name, (status, message, seconds) in under.items():
        assert status in (503, "UNAVAILABLE"), (name, status, message)
        assert "retry" in message and "database" in message, (name, message)
        assert seconds < BOUND, (name, seconds)
    started = time.monotonic()
    after = await _calls(procs, "after")
    print(f"after: {after} ({time.monotonic() - started:.2f} s)")
    assert sorted(str(v[0]) for v in after.values()) == ["200", "200", "OK"], after
    # Nothing of the refused calls was stored: the warm-up's two events and the last two.
    assert await _event_count(procs) == 4


# Terminations of every backend of the deployment, a second apart; calls that start this
# long after the last one must all succeed (new connections open at once).
TERMINATIONS, RECOVERY_BOUND = 3, 2.0


@pytest.fixture
def pg_deployment(backends: Backends, tmp_path: Path
                  ) -> Iterator[tuple[Procs, str, subprocess.Popen[bytes]]]:
    """A deployment and a worker whose PostgreSQL connections carry an application_name
    of their own (the test database is shared with other suites: only these are ended)."""
    if not os.environ.get("EVENTFLOW_TEST_DATABASE_URL"):
        pytest.skip("PostgreSQL only (EVENTFLOW_TEST_DATABASE_URL): SQLite has no backends")
    own = private_backends(backends, tmp_path)
    name = f"ef-{own.pg_schema}"
    tagged = dataclasses.replace(own, database_url=f"{own.database_url}&application_name={name}")
    try:
        with running(tagged, tmp_path / "data", EVENTFLOW_SWEEP_INTERVAL="1",
                     EVENTFLOW_RATE_LIMIT="100000") as procs, worker(procs) as proc:
            yield procs, name, proc
    finally:
        own.close()


def _terminate(name: str) -> int:
    """pg_terminate_backend on every connection named ``name``; how many there were."""
    with psycopg.connect(os.environ["EVENTFLOW_TEST_DATABASE_URL"], autocommit=True) as conn:
        return len(conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()", (name,)).fetchall())


async def _stored_of_type(procs: Procs, type_key: str) -> int:
    engine = create_engine(procs.settings)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text(
                "SELECT count(*) FROM events e JOIN event_types t ON t.id = e.event_type_id "
                "WHERE t.key = :key"), {"key": type_key})).scalar_one())
    finally:
        await engine.dispose()


async def test_terminated_backends_are_503_briefly_then_recover(
        pg_deployment: tuple[Procs, str, subprocess.Popen[bytes]]) -> None:
    """HTTP and gRPC load while every PostgreSQL connection of the deployment (serving
    processes, ingest writer, worker) is terminated three times a second apart: calls fail
    only as 503 / UNAVAILABLE naming the database, those starting 2 s after the last
    termination all succeed, no process restarts, every acknowledged event is stored once
    and processed."""
    procs, name, worker_proc = pg_deployment
    assert procs.server is not None and procs.gateway is not None
    pids = descendants(procs.server.pid) + [procs.gateway.pid, worker_proc.pid]
    tally = Tally()
    stop = asyncio.Event()
    background = asyncio.create_task(load(procs, tally, stop, record=True,
                                          type_key="terminated"))
    await asyncio.sleep(2.0)
    ended: list[int] = []
    times: list[float] = []
    for _ in range(TERMINATIONS):
        times.append(time.monotonic())
        ended.append(await asyncio.to_thread(_terminate, name))
        await asyncio.sleep(1.0)
    last = times[-1]
    await asyncio.sleep(RECOVERY_BOUND + 1.0)
    stop.set()
    await background
    ids = sorted(tally.acked)
    waited = await wait_processed(procs.settings, ids, timeout=30)
    c = await counts(procs.settings, ids)
    stored_all = await _stored_of_type(procs, "terminated")
    failed = [call for call in tally.calls if call.outcome not in ("200", "OK")]
    outcomes: dict[str, int] = {}
    for call in failed:
        outcomes[call.outcome] = outcomes.get(call.outcome, 0) + 1
    # Recovery: from each termination to the end of the last refusal before the next.
    bounds = [*times[1:], float("inf")]
    recovery = max(max((call.ended - t for call in failed if t <= call.ended < b), default=0.0)
                   for t, b in zip(times, bounds))
    print(f"\nbackends terminated {ended} under load: sent {tally.sent}, acked {len(ids)}, "
          f"stored {c.stored} (of the type {stored_all}: {stored_all - c.stored} stored though "
          f"refused), processed {c.processed} ({waited:.1f} s after the load), refused "
          f"{outcomes}, recovery (a termination to its last refusal) at most "
          f"{recovery:.2f} s, slowest call {tally.slowest:.2f} s; errors "
          f"{sorted(set(tally.errors))[:4]}")
    assert min(ended) >= 3, ended
    assert set(outcomes) <= {"503", "UNAVAILABLE"}, outcomes
    assert all("database" in e for e in tally.errors), tally.errors
    late = [call for call in failed if call.started > last + RECOVERY_BOUND]
    assert not late, late[:5]
    assert [pid for pid in pids if not Path(f"/proc/{pid}").exists()] == []
    assert procs.server.poll() is None and worker_proc.poll() is None
    assert c.stored == len(ids) == c.distinct_keys
    assert c.processed == c.stored
    assert len(ids) >= 100


def test_a_worker_started_while_the_database_is_away_keeps_running(
        backends: Backends, tmp_path: Path) -> None:
    """A worker whose database cannot be reached when it starts (restarting, or its
    connections just ended: CI's PostgreSQL run of the termination test above caught a
    worker dying in its start-up sweep) logs it and keeps sweeping; it does not exit."""
    own = private_backends(backends, tmp_path)
    try:
        log_path = tmp_path / "worker.log"
        env = deployment_env(own, tmp_path / "data", EVENTFLOW_WORKER_PROCESSES="1",
                             EVENTFLOW_SWEEP_INTERVAL="1",
                             DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/away")
        with log_path.open("wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "workers"], env=env, stdout=log,
                                    stderr=subprocess.STDOUT)
            try:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and proc.poll() is None:
                    if log_path.read_text().count("event sweep failed") >= 3:
                        break
                    time.sleep(0.2)
                out = log_path.read_text()
                assert proc.poll() is None, out[-3000:]
                assert out.count("event sweep failed") >= 3, out[-3000:]
            finally:
                terminate(proc)
    finally:
        own.close()
