"""The webhook block over real HTTP: JSON of params and contact, Idempotency-Key, retries."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support import Stack, wait_started
from tests.workflows.conftest import create_workflow, eventually, runs_of, unique_key


class Receiver:
    """An HTTP endpoint that fails its first ``failures`` calls with 503, then accepts."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[tuple[dict[str, str], Any]] = []

    async def hook(self, request: Request) -> Response:
        self.calls.append((dict(request.headers), await request.json()))
        if len(self.calls) <= self.failures:
            return Response(status_code=503)
        return Response(status_code=204)

    async def start(self) -> tuple[uvicorn.Server, asyncio.Task[Any], str]:
        app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        await wait_started(server, task)
        return server, task, f"http://127.0.0.1:{sock.getsockname()[1]}/hook"


async def test_webhook_retries_with_the_same_idempotency_key(wf: Stack) -> None:
    """A 503 is retried; every attempt carries the same Idempotency-Key and the event params."""
    receiver = Receiver(failures=2)
    server, task, url = await receiver.start()
    try:
        event_type = unique_key("hooked").replace("-", "_")
        wid = await create_workflow(wf, {
            "name": "hook", "active": True, "trigger": {"eventTypeKey": event_type},
            "start": "call", "blocks": [{"id": "call", "type": "webhook", "url": url}]})
        email = f"{unique_key('hook')}@example.org"
        r = await wf.post_event({"eventTypeKey": event_type, "keyValue": email, "params": [
            {"name": "email", "value": email}, {"name": "total", "value": 1500}]})
        assert r.status_code == 200, r.text

        async def done() -> Any:
            runs = await runs_of(wf, wid)
            return runs and runs[0]["status"] == "completed" and runs[0]

        await eventually(done, timeout=20)
        assert len(receiver.calls) == 3
        keys = {headers["idempotency-key"] for headers, _ in receiver.calls}
        assert len(keys) == 1
        body = receiver.calls[-1][1]
        assert body["params"]["total"] == 1500 and body["params"]["email"] == email
        assert body["contact"]["email"] == email and body["workflowId"] == wid
    finally:
        server.should_exit = True
        await task
