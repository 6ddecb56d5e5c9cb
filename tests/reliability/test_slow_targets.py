"""Slow delivery targets do not hold up the rest: while one account's email steps meet an
SMTP server that never answers and its webhook steps a target that never answers, another
account's webhook runs are delivered in seconds, and the slow calls are cut off by their
timeouts (and retried) rather than held for as long as the target likes."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.reliability.outage import worker
from tests.reliability.procs import Procs, running
from tests.support import Backends, basic, private_backends, wait_started

SMTP_TIMEOUT = 3.0
# Each of the slow account's steps, and how long the fast account's runs may take.
SLOW_RUNS, FAST_RUNS, FAST_BOUND = 15, 10, 25.0


class Targets:
    """A webhook receiver (``/slow`` answers after 120 s, ``/fast`` at once) and an SMTP
    port that accepts connections and never says a word."""

    def __init__(self) -> None:
        self.fast: dict[str, float] = {}
        self.slow_calls: list[tuple[str, float]] = []
        self.smtp_opened: list[float] = []
        self.smtp_closed: list[float] = []

    async def _fast(self, request: Request) -> Response:
        body = await request.json()
        self.fast.setdefault(str(body["params"]["n"]), time.monotonic())
        return Response(status_code=204)

    async def _slow(self, request: Request) -> Response:
        self.slow_calls.append((request.headers["idempotency-key"], time.monotonic()))
        await asyncio.sleep(120)
        return Response(status_code=204)

    async def _smtp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.smtp_opened.append(time.monotonic())
        try:
            while await reader.read(1024):
                pass
        finally:
            self.smtp_closed.append(time.monotonic())
            writer.close()

    async def start(self, smtp_port: int) -> str:
        app = Starlette(routes=[Route("/fast", self._fast, methods=["POST"]),
                                Route("/slow", self._slow, methods=["POST"])])
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self._http = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off",
                                                   timeout_graceful_shutdown=1))
        self._task = asyncio.create_task(self._http.serve(sockets=[sock]))
        await wait_started(self._http, self._task)
        # The SMTP port the deployment was given (free until now).
        self._smtp_server = await asyncio.start_server(self._smtp, "127.0.0.1", smtp_port)
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def stop(self) -> None:
        self._http.should_exit = True
        self._smtp_server.close()
        await self._task


@pytest.fixture
def smtp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def deployment(backends: Backends, tmp_path: Path, smtp_port: int) -> Iterator[Procs]:
    own = private_backends(backends, tmp_path)
    try:
        with running(own, tmp_path / "data", EVENTFLOW_RATE_LIMIT="0",
                     EVENTFLOW_SMTP_URL=f"smtp://127.0.0.1:{smtp_port}?timeout={SMTP_TIMEOUT}",
                     EVENTFLOW_WORKFLOW_RETRY_BASE="1") as procs, worker(procs):
            yield procs
    finally:
        own.close()


async def _post(http: httpx.AsyncClient, key: str, path: str, body: dict[str, Any]) -> Any:
    r = await http.post(path, json=body, headers={"Authorization": basic(key)})
    assert r.status_code in (200, 201), r.text
    return r.json() if r.content else None


async def test_slow_smtp_and_webhooks_hold_up_no_one_else(deployment: Procs,
                                                          smtp_port: int) -> None:
    """Account A: 15 runs mailing through a silent SMTP server and 15 posting to a webhook
    that answers after 120 s. Account B, after them: 10 webhook runs, all delivered within
    25 s; A's SMTP connections are closed by the client's timeout and A's webhook calls
    cut off and tried again (the same Idempotency-Key), within their bounds."""
    procs = deployment
    targets = Targets()
    base = await targets.start(smtp_port)
    slow, fast = procs.api_key, procs.other_key
    try:
        async with httpx.AsyncClient(base_url=procs.http_url, timeout=30) as http:
            tid = (await _post(http, slow, "/api/v1/messages", {
                "name": "slow", "subject": "hi", "html": "<p>hi</p>", "text": "hi"}))["id"]
            await _post(http, slow, "/api/v1/workflows", {
                "name": "mail", "active": True, "trigger": {"eventTypeKey": "mail_me"},
                "start": "mail", "blocks": [{"id": "mail", "type": "email", "templateId": tid,
                                             "to": "${email}"}]})
            await _post(http, slow, "/api/v1/workflows", {
                "name": "slow hook", "active": True, "trigger": {"eventTypeKey": "hook_me"},
                "start": "call", "blocks": [{"id": "call", "type": "webhook",
                                             "url": f"{base}/slow"}]})
            await _post(http, fast, "/api/v1/workflows", {
                "name": "fast hook", "active": True, "trigger": {"eventTypeKey": "hook_me"},
                "start": "call", "blocks": [{"id": "call", "type": "webhook",
                                             "url": f"{base}/fast"}]})
            for i in range(SLOW_RUNS):
                await _post(http, slow, "/api/v2/event", {
                    "eventTypeKey": "mail_me", "keyValue": f"m{i}@slow.example",
                    "params": [{"name": "email", "value": f"m{i}@slow.example"}]})
                await _post(http, slow, "/api/v2/event", {
                    "eventTypeKey": "hook_me", "keyValue": f"h{i}@slow.example"})
            # A's calls are hanging before B sends anything.
            deadline = time.monotonic() + 30
            while len(targets.slow_calls) < 3 or not targets.smtp_opened:
                assert time.monotonic() < deadline, "A's steps never reached their targets"
                await asyncio.sleep(0.1)
            sent = time.monotonic()
            for i in range(FAST_RUNS):
                await _post(http, fast, "/api/v2/event", {
                    "eventTypeKey": "hook_me", "keyValue": f"f{i}@fast.example",
                    "params": [{"name": "n", "value": i}]})
            while len(targets.fast) < FAST_RUNS and time.monotonic() - sent < FAST_BOUND:
                await asyncio.sleep(0.1)
            fast_seconds = max(targets.fast.values(), default=sent) - sent
            # A's webhook calls end at the client's 10 s and are tried again.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                keys = [k for k, _ in targets.slow_calls]
                if len(keys) > len(set(keys)) and targets.smtp_closed:
                    break
                await asyncio.sleep(0.2)
        keys = [k for k, _ in targets.slow_calls]
        smtp_held = [c - o for o, c in zip(targets.smtp_opened, targets.smtp_closed)]
        print(f"\nslow targets: B's {len(targets.fast)}/{FAST_RUNS} webhooks delivered "
              f"{fast_seconds:.2f} s after sending; A: {len(targets.slow_calls)} slow webhook "
              f"calls ({len(set(keys))} keys), {len(targets.smtp_opened)} SMTP connections, "
              f"held at most {max(smtp_held, default=0):.1f} s")
        assert len(targets.fast) == FAST_RUNS, f"B delivered {len(targets.fast)} in {FAST_BOUND} s"
        assert len(keys) > len(set(keys)), "A's slow webhook calls were never cut off and retried"
        assert targets.smtp_closed and max(smtp_held) < SMTP_TIMEOUT * 4
    finally:
        await targets.stop()


# One account's slow webhook steps, more than a step batch holds; the other's bound: less
# than the webhook client's 10 s timeout, so waiting behind one slow call fails it.
MANY_SLOW, MANY_BOUND = 250, 5.0


async def _events(http: httpx.AsyncClient, key: str, type_key: str, values: list[str]) -> None:
    async def one(i: int, value: str) -> None:
        await _post(http, key, "/api/v2/event", {"eventTypeKey": type_key, "keyValue": value,
                                                 "params": [{"name": "n", "value": i}]})

    for start in range(0, len(values), 25):
        await asyncio.gather(*(one(start + i, v)
                               for i, v in enumerate(values[start:start + 25])))


async def test_many_slow_steps_of_one_account_hold_up_no_one_else(deployment: Procs,
                                                                  smtp_port: int) -> None:
    """Account A: 250 webhook runs to a target that answers after 120 s (more than a step
    batch, more than the webhook client's connections). Account B, while A's calls hang:
    10 webhook runs, all delivered within 5 s (before: B's steps waited behind A's in the
    step pump's batches, their calls behind A's for the HTTP client's connections)."""
    procs = deployment
    targets = Targets()
    base = await targets.start(smtp_port)
    slow, fast = procs.api_key, procs.other_key
    try:
        async with httpx.AsyncClient(base_url=procs.http_url, timeout=30) as http:
            for key, path in ((slow, "slow"), (fast, "fast")):
                await _post(http, key, "/api/v1/workflows", {
                    "name": path, "active": True, "trigger": {"eventTypeKey": "hook_me"},
                    "start": "call", "blocks": [{"id": "call", "type": "webhook",
                                                 "url": f"{base}/{path}"}]})
            await _events(http, slow, "hook_me", [f"s{i}" for i in range(MANY_SLOW)])
            deadline = time.monotonic() + 60
            while len(targets.slow_calls) < 100:
                assert time.monotonic() < deadline, "A's steps never reached their target"
                await asyncio.sleep(0.1)
            sent = time.monotonic()
            await _events(http, fast, "hook_me", [f"f{i}" for i in range(FAST_RUNS)])
            while len(targets.fast) < FAST_RUNS and time.monotonic() - sent < 30:
                await asyncio.sleep(0.05)
        fast_seconds = max(targets.fast.values(), default=sent) - sent
        print(f"\nmany slow steps: A {len(targets.slow_calls)} slow calls hanging; B's "
              f"{len(targets.fast)}/{FAST_RUNS} webhooks delivered {fast_seconds:.2f} s after "
              "sending")
        assert len(targets.fast) == FAST_RUNS
        assert fast_seconds < MANY_BOUND
    finally:
        await targets.stop()
