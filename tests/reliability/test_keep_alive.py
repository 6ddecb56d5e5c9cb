"""The gateway's idle limit between requests (``server.gateway.guard``), on a uvicorn
server of its protocol with short limits: an idle connection is closed after
``keep_alive``, and sooner while the server is crowded."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import uvicorn

from server.gateway import guard
from tests.support import wait_started

SLACK = 5.0  # how late a close may come on a loaded machine


async def _app(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
               send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
async def address() -> AsyncIterator[tuple[str, int]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(_app, log_level="warning", access_log=False, lifespan="off",
                            timeout_keep_alive=60,
                            http=guard.guarded_protocol(1.0, keep_alive=2.0))
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await wait_started(server, task)
    yield sock.getsockname()
    server.should_exit = True
    await asyncio.wait_for(task, 10)


async def _asked(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A new connection that has had one answer and is now idle."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.readuntil(b"ok"), SLACK)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    return reader, writer


async def _closed_after(reader: asyncio.StreamReader) -> float:
    started = time.monotonic()
    assert await asyncio.wait_for(reader.read(100), 60) == b""
    return time.monotonic() - started


async def test_an_idle_connection_is_closed_after_keep_alive(
        address: tuple[str, int]) -> None:
    """Idle past the head deadline (1 s) it is kept; past ``keep_alive`` (2 s), closed."""
    reader, writer = await _asked(*address)
    try:
        waited = await _closed_after(reader)
        assert 2.0 - 0.1 <= waited < 2.0 + SLACK, waited
    finally:
        writer.close()


async def test_a_crowded_server_closes_idle_connections_sooner(
        address: tuple[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``CROWDED_CONNECTIONS`` open connections the idle limit is
    ``CROWDED_KEEP_ALIVE``: idle connections give way to new ones."""
    monkeypatch.setattr(guard, "CROWDED_CONNECTIONS", 2)
    monkeypatch.setattr(guard, "CROWDED_KEEP_ALIVE", 0.3)
    pairs = [await _asked(*address) for _ in range(3)]
    try:
        waited = await asyncio.gather(*(_closed_after(r) for r, _ in pairs))
        # The third answer came with 3 open: closed at 0.3 s, well before the 2 s.
        assert min(waited) < 1.5, waited
    finally:
        for _, writer in pairs:
            writer.close()
