"""Issue 12 Build, crash: the whole deployment (the server's parent, serving processes and
ingest writer, the gateway, the worker) SIGKILLed three times under HTTP and gRPC load and
started again each time: every acknowledged event is stored once and processed once, and
its webhook is called within 30 s of the last restart; a call made again after a kill
carries the first one's Idempotency-Key."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.config import Settings
from server.db.engine import create_engine
from tests.reliability.outage import Tally, counts, load
from tests.reliability.procs import Procs, _wait_healthy, deployment_env
from tests.support import Backends, private_backends, wait_started

KILLS, BETWEEN, DELIVERY_BOUND = 3, 3.0, 30.0


class Hooks:
    """The webhook target: each call's event id, Idempotency-Key and time."""

    def __init__(self) -> None:
        self.calls: dict[int, list[tuple[str, float]]] = defaultdict(list)

    async def _hook(self, request: Request) -> Response:
        body = await request.json()
        self.calls[int(body["eventId"])].append(
            (request.headers["idempotency-key"], time.monotonic()))
        return Response(status_code=204)

    async def start(self) -> str:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self._server = uvicorn.Server(uvicorn.Config(
            Starlette(routes=[Route("/hook", self._hook, methods=["POST"])]),
            log_level="warning", lifespan="off"))
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        await wait_started(self._server, self._task)
        return f"http://127.0.0.1:{sock.getsockname()[1]}/hook"

    async def stop(self) -> None:
        self._server.should_exit = True
        await self._task


def _start(env: dict[str, str], url: str) -> list[subprocess.Popen[bytes]]:
    """The server, the gateway and a worker, each the leader of a process group of its own
    (so that one killpg ends it with its children), once the gateway answers."""
    started = [subprocess.Popen([sys.executable, "-m", module], start_new_session=True,
                                env={**env, "EVENTFLOW_WORKER_PROCESSES": "1"})
               for module in ("server", "server.gateway", "workers")]
    _wait_healthy(url, started)
    return started


def _kill(started: list[subprocess.Popen[bytes]]) -> None:
    for proc in started:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for proc in started:
        proc.wait()


async def _runs_per_event(settings: Settings, ids: list[int]) -> dict[int, int]:
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT event_id, count(*) FROM workflow_runs GROUP BY event_id"))).all()
    finally:
        await engine.dispose()
    wanted = set(ids)
    return {int(e): int(n) for e, n in rows if int(e) in wanted}


async def test_the_whole_deployment_killed_under_load_loses_nothing(
        backends: Backends, tmp_path: Path) -> None:
    """Load over HTTP and gRPC; three times: SIGKILL every process of the deployment and
    start it again. Every acked event stored and processed once, one run each, its webhook
    called within 30 s of the last restart, repeats with the same Idempotency-Key."""
    own = private_backends(backends, tmp_path)
    hooks = Hooks()
    url = await hooks.start()
    env = deployment_env(own, tmp_path / "data", EVENTFLOW_RATE_LIMIT="100000",
                         EVENTFLOW_SWEEP_INTERVAL="1", EVENTFLOW_WORKFLOW_RETRY_BASE="1")
    http_url = f"http://{env['EVENTFLOW_HTTP_ADDR']}"
    procs = Procs(http_url=http_url, grpc_target=env["EVENTFLOW_GRPC_ADDR"],
                  api_key=env["EVENTFLOW_API_KEY"], other_key="",
                  admin_key=env["EVENTFLOW_ADMIN_KEY"], env=env,
                  settings=Settings.from_env(env))
    started = await asyncio.to_thread(_start, env, http_url)
    try:
        async with httpx.AsyncClient(base_url=http_url, timeout=30) as http:
            r = await http.post("/api/v1/workflows", headers=procs.auth(), json={
                "name": "hook", "active": True, "trigger": {"eventTypeKey": "outage"},
                "start": "call", "blocks": [{"id": "call", "type": "webhook", "url": url}]})
            assert r.status_code in (200, 201), r.text
        tally = Tally()
        stop = asyncio.Event()
        background = asyncio.create_task(load(procs, tally, stop, callers=3))
        restart_seconds: list[float] = []
        for _ in range(KILLS):
            await asyncio.sleep(BETWEEN)
            _kill(started)
            killed = time.monotonic()
            started = await asyncio.to_thread(_start, env, http_url)
            restarted = time.monotonic()
            restart_seconds.append(restarted - killed)
        await asyncio.sleep(2.0)
        stop.set()
        await background
        ids = sorted(tally.acked)
        deadline = restarted + DELIVERY_BOUND
        while any(i not in hooks.calls for i in ids) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        delivered = sum(1 for i in ids if i in hooks.calls)
        all_delivered = max((hooks.calls[i][0][1] for i in ids if i in hooks.calls),
                            default=restarted) - restarted
        c = await counts(procs.settings, ids)
        runs = await _runs_per_event(procs.settings, ids)
        calls = sum(len(v) for v in hooks.calls.values())
        print(f"\nwhole deployment SIGKILLed {KILLS}x under load: sent {tally.sent}, acked "
              f"{len(ids)}, stored {c.stored}, processed {c.processed}, runs {sum(runs.values())}"
              f", webhooks delivered {delivered} of {len(ids)} ({calls} calls to "
              f"{len(hooks.calls)} events: {calls - len(hooks.calls)} repeats), last first "
              f"call {all_delivered:.1f} s after the last restart; restarts took "
              f"{', '.join(f'{s:.1f}' for s in restart_seconds)} s; refused while down "
              f"{tally.refused}")
        assert len(ids) >= 100
        assert c.stored == len(ids) == c.distinct_keys, "an acked event is missing or twice"
        assert c.processed == c.stored
        assert runs == {i: 1 for i in ids}, "one run per event"
        assert delivered == len(ids), f"{len(ids) - delivered} webhooks not called in time"
        assert all(len({key for key, _ in hooks.calls[i]}) == 1 for i in ids), \
            "a repeat carried a new Idempotency-Key"
    finally:
        _kill(started)
        await hooks.stop()
        own.close()
