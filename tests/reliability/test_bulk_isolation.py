"""Finding 1 (bulk contacts): over-size bodies are refused before they are read, and one
account's large bulk bodies do not slow another account's calls."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from tests.reliability import latency
from tests.reliability.procs import Procs
from tests.support import basic

BULK = "/api/v1/contacts?results=true"  # our per-contact counts, not only the session
# Distinct bodies per scenario, taken in turn (two "full" bulks at once never share one).
BODIES = 8


def _realistic(i: int) -> dict[str, Any]:
    return {"channels": [{"type": "email", "value": f"bulk{i}@example.com"},
                         {"type": "sms", "value": f"+38050{i:07d}"}],
            "externalCustomerId": f"ext-{i}", "firstName": "Ann", "lastName": "Smith",
            "languageCode": "uk", "timeZone": "Europe/Kiev",
            "address": {"town": "Kyiv", "postcode": "01001"}}


_batches = itertools.count()


def _full() -> dict[str, Any]:
    # New contacts in every call: two bulks creating the same new contacts at once is
    # another matter (see docs/reliability.md, open points).
    first = next(_batches) * 3000
    return {"contacts": [_realistic(i) for i in range(first, first + 3000)]}


# name -> (a body for each call, status, what the answer must say)
HOSTILE: dict[str, tuple[Callable[[], Any], int, str]] = {
    # 4 MB of tiny entries: refused by their count before any is converted.
    "many": (lambda: {"contacts": [{"email": "a@b.c"}] * 200_000}, 400, "at most 3000"),
    # One entry with 60,000 keys (1 MB): refused by its size before it is converted.
    "wide": (lambda: {"contacts": [{f"k{i}": i for i in range(60_000)}]}, 413, "contacts[0]"),
    # The largest legitimate work: 3,000 valid contacts validated and written.
    "full": (_full, 200, "'errorCount': 0"),
}


async def _raw_exchange(procs: Procs, head: bytes, body: bytes) -> bytes:
    """Sends ``head`` and ``body`` on a fresh connection; the answer's status line."""
    url = urlsplit(procs.http_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        writer.write(head + body)
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()


async def test_declared_oversize_bulk_is_refused_before_it_is_read(procs: Procs, http: httpx.AsyncClient) -> None:
    """A bulk declaring 30,000,000 bytes gets 413 after 64 KB were sent, not a wait."""
    head = (f"POST {BULK} HTTP/1.1\r\nHost: x\r\nAuthorization: {basic(procs.api_key)}\r\n"
            "Content-Type: application/json\r\nContent-Length: 30000000\r\n\r\n").encode()
    status = await _raw_exchange(procs, head, b"[" + b" " * 65_536)
    assert status.startswith(b"HTTP/1.1 413"), status


async def test_streamed_oversize_bulk_stops_at_the_limit(procs: Procs, http: httpx.AsyncClient) -> None:
    """A chunked bulk (no Content-Length) is cut off with 413 once it passes 4 MiB."""
    async def chunks() -> Any:
        yield b'{"contacts": ['
        for _ in range(100):
            yield b'{"email": "x@example.com"},' * 2000

    r = await http.post(BULK, headers={**procs.auth(), "Content-Type": "application/json"},
                              content=chunks())
    assert r.status_code == 413, r.text
    assert "limit" in r.json()["error"]


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_hostile_bulk_does_not_slow_another_account(procs: Procs, http: httpx.AsyncClient, name: str) -> None:
    """While one account sends large bulk bodies, another account's GETs keep p99 within
    the ceiling, and each bulk gets its bounded answer."""
    make_body, status, expected = HOSTILE[name]
    # Made before the clock starts, so the probe's timings hold no JSON encoding.
    bodies = [orjson.dumps(make_body()) for _ in range(BODIES)]
    turn = itertools.count()
    headers = {**procs.auth(), "Content-Type": "application/json"}

    async def bulk() -> tuple[int, str]:
        raw = bodies[next(turn) % BODIES]
        r = await http.post(BULK, headers=headers, content=raw, timeout=60)
        doc = r.json()
        # The whole of an error, the counts of a success (3,000 results are long).
        return r.status_code, str(doc if r.status_code != 200 else {
            "successCount": doc["successCount"], "errorCount": doc["errorCount"]})

    async def other_account_call() -> None:
        r = await http.get("/api/v1/event-types", headers=procs.auth(procs.other_key))
        assert r.status_code == 200

    answers = await latency.assert_isolated(
        f"bulk {name} ({len(bodies[0])} bytes)", other_account_call, bulk)
    assert answers
    assert all(isinstance(a, tuple) and a[0] == status and expected in a[1]
               for a in answers), answers[:2]
