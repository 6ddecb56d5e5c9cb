"""Reads the compatibility tests share: stored events, contacts and letters."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text

from server.mail.sink import MailSink
from tests.support import Stack


def unique_email(prefix: str = "c") -> str:
    return f"{prefix}{secrets.token_hex(4)}@example.com"


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout: float = 15.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail with its last value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while loop.time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"not met within {timeout}s; last value: {last!r}")


async def events_of(s: Stack, type_key: str, key_value: str | None = None,
                    key: str | None = None) -> list[dict[str, Any]]:
    params = {"eventTypeKey": type_key, "pageSize": "1000"}
    if key_value is not None:
        params["keyValue"] = key_value
    r = await s.http.get("/api/v1/events", params=params, headers=s.auth(key))
    assert r.status_code == 200, r.text
    return list(r.json()["events"])


async def scalar(s: Stack, sql: str, **params: Any) -> Any:
    async with s.engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


def letters_to(sink: MailSink, address: str) -> list[Any]:
    return [m for m in sink.received if address in m.rcpt_tos]
