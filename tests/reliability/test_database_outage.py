"""The database locked by someone else (SQLite: an exclusive transaction of another
connection; PostgreSQL: ACCESS EXCLUSIVE locks, then every backend terminated): calls are
answered 503 / UNAVAILABLE within a bound, saying what to do, nothing is half-stored, and
the deployment works again the moment the lock goes, without a restart."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from eventflow.v1 import events_pb2, events_pb2_grpc
from server.db.engine import DB_WAIT_SECONDS
from tests.reliability.procs import Procs, running
from tests.support import Backends, basic, private_backends

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
