"""One private stack for the compatibility suite: its own database and key prefix, a real
aiosmtpd sink, and helpers that replay requests byte for byte as the public clients send
them (exact bodies, headers, slashes and content types)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from server.mail.sink import MailSink
from tests.support import Backends, Stack, private_backends, start_stack


@pytest.fixture(scope="session")
async def sink(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[MailSink]:
    s = MailSink(directory=tmp_path_factory.mktemp("compat-mail"))
    await s.start()
    yield s
    await s.stop()


@pytest.fixture(scope="session")
async def compat(backends: Backends, sink: MailSink, tmp_path_factory: pytest.TempPathFactory
                 ) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("compat-stack")
    own = private_backends(backends, tmp)
    s = await start_stack(own, tmp, smtp_url=sink.url,
                          workflow_retry_base=0.2)
    yield s
    await s.stop()
    own.close()


def basic_auth(key: str, user: str = "") -> str:
    """The Authorization header of PHP clients that send ``':' . $key`` (an empty user)."""
    return "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()


async def replay(s: Stack, method: str, path: str, body: bytes | str | None = None, *,
                 content_type: str | None = "application/json", key: str | None = None,
                 user: str = "", headers: dict[str, str] | None = None,
                 params: Any = None) -> httpx.Response:
    """Send exactly these bytes with these headers, as a client library does."""
    sent = {"Accept": "application/json", "Authorization": basic_auth(key or s.api_key, user)}
    if content_type is not None:
        sent["Content-Type"] = content_type
    sent.update(headers or {})
    content = body.encode() if isinstance(body, str) else body
    return await s.http.request(method, path, content=content, headers=sent, params=params)


def dumps(doc: Any) -> bytes:
    return orjson.dumps(doc)
