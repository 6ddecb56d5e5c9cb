"""A private stack for workflow tests: its own database and key prefix, a real aiosmtpd
sink, short retries; plus helpers to create templates/workflows and wait for outcomes."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from server.mail.sink import MailSink
from tests.support import Backends, Stack, private_backends, start_stack


@pytest.fixture(scope="module")
async def sink(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[MailSink]:
    s = MailSink(directory=tmp_path_factory.mktemp("mail"))
    await s.start()
    yield s
    await s.stop()


@pytest.fixture(scope="module")
async def wf(backends: Backends, sink: MailSink, tmp_path_factory: pytest.TempPathFactory
             ) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("wfstack")
    b = private_backends(backends, tmp)
    s = await start_stack(b, tmp, smtp_url=sink.url, workflow_retry_base=0.2)
    yield s
    await s.stop()
    b.close()


@pytest.fixture
async def bare(backends: Backends, sink: MailSink, tmp_path: Path) -> AsyncIterator[Stack]:
    """A server and gateway without an in-process worker, on a database of its own (worker
    processes of the test's own run against it)."""
    b = private_backends(backends, tmp_path)
    s = await start_stack(b, tmp_path, worker=False, smtp_url=sink.url, process_retry_base=0.05,
                          workflow_retry_base=0.2)
    yield s
    await s.stop()
    b.close()


async def db_rows(s: Stack, sql: str, **params: Any) -> list[Any]:
    """The rows of a query on the stack's database."""
    async with s.engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout: float = 15.0,
                     interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy; fail with its last value."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


async def create_template(s: Stack, **body: Any) -> int:
    r = await s.http.post("/api/v1/messages", json=body, headers=s.auth())
    assert r.status_code == 200, r.text
    return int(r.json()["id"])


async def create_workflow(s: Stack, definition: dict[str, Any]) -> int:
    r = await s.http.post("/api/v1/workflows", json=definition, headers=s.auth())
    assert r.status_code == 200, r.text
    return int(r.json()["id"])


async def runs_of(s: Stack, workflow_id: int) -> list[dict[str, Any]]:
    r = await s.http.get(f"/api/v1/workflows/{workflow_id}/runs", headers=s.auth())
    assert r.status_code == 200, r.text
    return list(r.json()["runs"])


def unique_key(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"
