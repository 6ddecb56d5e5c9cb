"""Finding 6: the gateway bounds request heads (size 431, count 431) and the time a client
takes (idle, half-sent head, short body: closed or 408); the gRPC server closes
connections that never complete their handshake."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import pytest

from tests.reliability.procs import CONNECTION_TIMEOUT, Procs
from tests.support import basic

# How long past its deadline a connection may take to be closed on a loaded machine.
SLACK = 5.0


async def _connect(target: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, _, port = target.rpartition(":")
    return await asyncio.open_connection(host, int(port))


def _http_target(procs: Procs) -> str:
    url = urlsplit(procs.http_url)
    return f"{url.hostname}:{url.port}"


async def _exchange(procs: Procs, data: bytes) -> bytes:
    """Sends ``data`` on a new connection; everything the gateway answers until it closes."""
    reader, writer = await _connect(_http_target(procs))
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(1 << 20), CONNECTION_TIMEOUT + SLACK)
    finally:
        writer.close()


def _head(*headers: str, method: str = "GET", path: str = "/healthz") -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: x\r\n" + "".join(h + "\r\n" for h in headers)
            + "\r\n").encode()


async def test_huge_header_is_431(procs: Procs) -> None:
    """A 1 MB header is refused with 431 before the application sees the request."""
    answer = await _exchange(procs, _head("X-Big: " + "a" * 1_000_000))
    assert answer.startswith(b"HTTP/1.1 431"), answer[:80]


async def test_many_headers_are_431(procs: Procs) -> None:
    """150 small headers (under the size limit) are refused with 431; 10,000 likewise."""
    for count in (150, 10_000):
        answer = await _exchange(procs, _head(*(f"X-H{i}: v" for i in range(count))))
        assert answer.startswith(b"HTTP/1.1 431"), (count, answer[:80])


async def test_ordinary_heads_still_pass(procs: Procs) -> None:
    """50 headers and a 4 KB cookie are an ordinary request: 200."""
    answer = await _exchange(procs, _head("Connection: close", "Cookie: c=" + "x" * 4000,
                                          *(f"X-H{i}: v" for i in range(50))))
    assert answer.startswith(b"HTTP/1.1 200"), answer[:80]


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> tuple[bytes, float]:
    started = time.monotonic()
    data = await asyncio.wait_for(reader.read(1 << 16), seconds)
    while data and not reader.at_eof():
        more = await asyncio.wait_for(reader.read(1 << 16), seconds)
        if not more:
            break
        data += more
    return data, time.monotonic() - started


async def test_idle_connections_are_closed(procs: Procs) -> None:
    """200 connections that send nothing are all closed by the gateway after its deadline
    (they were held for ever: 19,950 of them in the finding)."""
    pairs = [await _connect(_http_target(procs)) for _ in range(200)]
    try:
        results = await asyncio.gather(*(_closed_within(r, CONNECTION_TIMEOUT + SLACK)
                                         for r, _ in pairs))
        assert all(data == b"" for data, _ in results)
    finally:
        for _, writer in pairs:
            writer.close()


@pytest.mark.parametrize("trickle", [False, True])
async def test_half_sent_head_gets_408(procs: Procs, trickle: bool) -> None:
    """A head never finished gets 408 and is closed, also when it trickles a byte at a
    time (the deadline counts from the connection, not from the last byte)."""
    reader, writer = await _connect(_http_target(procs))
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        await writer.drain()
        if trickle:
            for _ in range(int(CONNECTION_TIMEOUT * 4)):
                writer.write(b"X")
                await writer.drain()
                await asyncio.sleep(0.25)
        data, _ = await _closed_within(reader, CONNECTION_TIMEOUT + SLACK)
        assert data.startswith(b"HTTP/1.1 408"), data[:80]
    finally:
        writer.close()


async def test_body_shorter_than_its_length_gets_408(procs: Procs) -> None:
    """A body that stops before its Content-Length gets 408 instead of a wait for ever."""
    reader, writer = await _connect(_http_target(procs))
    try:
        writer.write(_head("Content-Type: application/json", "Content-Length: 100",
                           f"Authorization: {basic(procs.api_key)}",
                           method="POST", path="/api/v2/event") + b'{"eventTy')
        await writer.drain()
        data, _ = await _closed_within(reader, CONNECTION_TIMEOUT + SLACK)
        assert data.startswith(b"HTTP/1.1 408"), data[:80]
    finally:
        writer.close()


async def test_grpc_connection_without_handshake_is_closed(procs: Procs) -> None:
    """A TCP connection to the gRPC port that never speaks HTTP/2 is closed after the
    handshake deadline (after an HTTP/2 GOAWAY saying so)."""
    reader, writer = await _connect(procs.grpc_target)
    try:
        data, _ = await _closed_within(reader, CONNECTION_TIMEOUT + SLACK)
        assert reader.at_eof() and (data == b"" or b"handshake timeout" in data), data
    finally:
        writer.close()


async def _ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """One keep-alive GET /healthz on an open connection; its answer's status line."""
    writer.write(_head())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), SLACK)
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    await asyncio.wait_for(reader.readexactly(length), SLACK)
    return head.split(b"\r\n", 1)[0]


async def test_an_idle_keep_alive_connection_outlasts_the_head_deadline(procs: Procs) -> None:
    """Between requests a connection stays open past the head deadline (2 s here): the
    gateway keeps it ``EVENTFLOW_KEEP_ALIVE`` (75 s), longer than client pools keep theirs
    (httpx 5 s), so a client never sends on a connection the gateway is closing. It was
    closed after the head deadline, or uvicorn's 5 s, and a request sent in that moment was
    lost ("Server disconnected without sending a response")."""
    reader, writer = await _connect(_http_target(procs))
    try:
        assert await _ask(reader, writer) == b"HTTP/1.1 200 OK"
        await asyncio.sleep(CONNECTION_TIMEOUT + 1.5)
        assert not reader.at_eof()
        assert await _ask(reader, writer) == b"HTTP/1.1 200 OK"
        # The next head, once begun, still has only the head deadline.
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        await writer.drain()
        data, _ = await _closed_within(reader, CONNECTION_TIMEOUT + SLACK)
        assert data.startswith(b"HTTP/1.1 408"), data[:80]
    finally:
        writer.close()
