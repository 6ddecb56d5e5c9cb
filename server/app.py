"""Assembles and runs the gRPC server: storage, writer, dispatcher, services, health."""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass, field
from typing import Any

import grpc
from arq.connections import ArqRedis, RedisSettings
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from redis.asyncio import ConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine

from eventflow.v1 import admin_pb2_grpc, events_pb2
from server.accounts import KeyResolver
from server.api.admin import ADMIN_SERVICE, AdminService
from server.api.errors import AuthErrorInterceptor
from server.api.events import EventService, IngestDeps
from server.api.events import add_to_server as add_event_service
from server.codec import values
from server.codec.received import MAX_MESSAGE_BYTES, MAX_REPLY_BYTES
from server.config import Settings
from server.db.engine import DB_WAIT_SECONDS, create_engine
from server.eventtypes.rules import EventTypeRules, changes_feed
from server.ingest.dispatch import Dispatcher
from server.ingest.ratelimit import RateLimiter
from server.ingest.writer import Writer
from server.ingest.writer.group import local_writer, remote_writer
from server.keyrevocation import RevocationFeed
from server.services import Closer, Register, register_all

log = logging.getLogger(__name__)
# Seconds a stopping server keeps its port open before it refuses new calls.
DRAIN_SECONDS = 1.0
SERVICE_NAMES = [events_pb2.DESCRIPTOR.services_by_name["EventService"].full_name]


def redis_settings(url: str) -> RedisSettings:
    rs = RedisSettings.from_dsn(url)
    rs.conn_timeout = 2
    rs.conn_retries = 1
    return rs


@dataclass
class Running:
    """Everything one server process holds, released in reverse order by ``stop``."""

    settings: Settings
    server: grpc.aio.Server
    port: int
    engine: AsyncEngine
    writer: Writer
    dispatcher: Dispatcher
    redis: ArqRedis
    health: health.aio.HealthServicer
    # Resources of the services beyond EventService (``register_all``), closed last first.
    closers: list[Closer] = field(default_factory=list)

    async def stop(self, grace: float = 5.0) -> None:
        for svc in SERVICE_NAMES + [""]:
            await self.health.set(svc, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.stop(grace)
        await self.writer.stop()
        await self.dispatcher.stop()
        for closer in reversed(self.closers):
            await closer.close()
        await self.redis.aclose()
        await self.engine.dispose()


def _add_port(server: grpc.aio.Server, addr: str) -> int:
    try:
        options_port = server.add_insecure_port(addr)
    except RuntimeError:
        options_port = 0
    if options_port == 0:
        raise SystemExit(f"cannot listen on {addr}: is another process using it? "
                         "Set EVENTFLOW_GRPC_ADDR to a free address")
    return options_port


# Connection limits: the metadata (header list) a call may carry; a connection without
# calls is closed after MAX_IDLE_MS, any connection after MAX_AGE_MS (clients reconnect
# transparently; calls in flight get MAX_AGE_GRACE_MS to finish).
MAX_METADATA_BYTES = 16 * 1024
MAX_IDLE_MS = 5 * 60 * 1000
MAX_AGE_MS = 60 * 60 * 1000
MAX_AGE_GRACE_MS = 30 * 1000


def server_options(*, reuse_port: bool, connection_timeout: float = 10.0
                   ) -> list[tuple[str, Any]]:
    """Channel options of every eventflow gRPC server (the bench's bare server shares them);
    ``connection_timeout``: seconds a new connection has for its HTTP/2 handshake."""
    return [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_REPLY_BYTES),
        ("grpc.so_reuseport", 1 if reuse_port else 0),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.max_metadata_size", MAX_METADATA_BYTES),
        ("grpc.absolute_max_metadata_size", MAX_METADATA_BYTES),
        ("grpc.max_connection_idle_ms", MAX_IDLE_MS),
        ("grpc.max_connection_age_ms", MAX_AGE_MS),
        ("grpc.max_connection_age_grace_ms", MAX_AGE_GRACE_MS),
        ("grpc.server_handshake_timeout_ms", int(connection_timeout * 1000)),
    ]


class HandlerCache(grpc.aio.ServerInterceptor):
    """Asks the wrapped interceptor once per method and reuses the handler it built.

    grpc.aio calls interceptors on every RPC; AuthErrorInterceptor builds new wrapped
    handlers each time although they depend on the method alone (the caller's metadata
    is read inside the handler). Only known methods are kept, so the cache stays small.
    """

    def __init__(self, inner: grpc.aio.ServerInterceptor) -> None:
        self._inner = inner
        self._handlers: dict[str, Any] = {}

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = self._handlers.get(details.method)
        if handler is None:
            handler = await self._inner.intercept_service(continuation, details)
            if handler is not None:
                self._handlers[details.method] = handler
        return handler


def install_event_loop() -> None:
    """Use uvloop where it is installed (call before the loop starts)."""
    try:
        import uvloop
    except ImportError:
        return
    uvloop.install()


def build_writer(settings: Settings, dispatcher: Dispatcher) -> Writer:
    """The one place the writer is chosen: the ingest writer process when ``python -m
    server`` started one (it enqueues for the workers itself), else this process."""
    if settings.ingest_writer_socket:
        return remote_writer(settings.ingest_writer_socket)
    return local_writer(settings, on_commit=dispatcher.after_commit)


async def start_server(settings: Settings, *, reuse_port: bool = False,
                       register: Register | None = None) -> Running:
    """Start serving on settings.grpc_addr (port 0 picks a free port). Migrations must have run."""
    if settings.redis_url is None:
        raise SystemExit("REDIS_URL is not set; `make run` starts an embedded Valkey for you")
    values.configure(settings)
    # A call meeting another connection's lock fails after DB_WAIT_SECONDS (UNAVAILABLE,
    # server.db.errors) instead of holding its caller for as long as the lock lasts.
    engine = create_engine(settings, lock_wait=DB_WAIT_SECONDS)
    # A lazy pool: the server starts and accepts events while Redis is down;
    # the sweeper dispatches them once it is back.
    redis = ArqRedis(connection_pool=ConnectionPool.from_url(
        settings.redis_url, socket_connect_timeout=2, socket_timeout=5),
        default_queue_name=settings.queue_name)
    dispatcher = Dispatcher(redis, engine, settings=settings)
    writer = build_writer(settings, dispatcher)
    await writer.start()
    # Keys are cached only while revocations can reach this process (server.keyrevocation).
    resolver = KeyResolver(engine)
    feed = RevocationFeed(redis_url=settings.redis_url, prefix=settings.redis_prefix)
    feed.start(on_revoked=resolver.forget, on_live=resolver.set_live)
    # Event-type rules likewise: cached only while their changes can reach this process.
    event_types = EventTypeRules(engine)
    types_feed = changes_feed(redis_url=settings.redis_url, prefix=settings.redis_prefix,
                              rules=event_types)
    interceptor = HandlerCache(AuthErrorInterceptor(resolver, admin_key=settings.admin_key))
    server = grpc.aio.server(interceptors=[interceptor],
                             options=server_options(
                                 reuse_port=reuse_port,
                                 connection_timeout=settings.connection_timeout))
    # One bucket per account in Redis for every serving process (server.ingest.ratelimit).
    limiter = RateLimiter(per_second=settings.rate_limit, burst=settings.rate_burst,
                          redis_url=settings.redis_url, prefix=settings.redis_prefix,
                          processes=settings.server_processes)
    deps = IngestDeps(settings=settings, writer=writer, limiter=limiter, engine=engine,
                      event_types=event_types)
    add_event_service(EventService(deps), server)
    closers: list[Closer] = []
    names = list(SERVICE_NAMES)
    if register is not None:
        closers, more = await register(server, deps)
        names += more
    admin_pb2_grpc.add_AdminServiceServicer_to_server(AdminService(engine, settings, resolver),
                                                      server)
    names.append(ADMIN_SERVICE)
    closers += [feed, types_feed, limiter]
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        names + [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                 reflection.SERVICE_NAME], server)
    port = _add_port(server, settings.grpc_addr)
    await server.start()
    for svc in names + [""]:
        await health_servicer.set(svc, health_pb2.HealthCheckResponse.SERVING)
    dispatcher.start_sweeper()
    return Running(settings=settings, server=server, port=port, engine=engine, writer=writer,
                   dispatcher=dispatcher, redis=redis, health=health_servicer, closers=closers)


def host_of(addr: str) -> str:
    return addr.rsplit(":", 1)[0] or "127.0.0.1"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


async def serve_forever(settings: Settings, *, reuse_port: bool = False) -> None:
    running = await start_server(settings, reuse_port=reuse_port, register=register_all)
    log.info("gRPC server listening on %s:%d", host_of(settings.grpc_addr), running.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("gRPC server stopping: finishing in-flight calls")
    # Health says NOT_SERVING at once, but the port stays open for DRAIN_SECONDS: a gateway
    # stopping at the same moment still gets its last requests answered, not refused.
    for svc in SERVICE_NAMES + [""]:
        await running.health.set(svc, health_pb2.HealthCheckResponse.NOT_SERVING)
    await asyncio.sleep(DRAIN_SECONDS)
    await running.stop()
