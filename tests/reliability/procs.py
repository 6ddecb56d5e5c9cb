"""The deployment as separate processes, as ``make run`` starts it: ``python -m server``
(two serving processes and the ingest writer process) and ``python -m server.gateway``,
on private backends. Isolation is measured here, where each process has its own loop,
rather than on the in-process test stack, where client, gateway and server share one."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from server.accounts import create_account
from server.config import Settings
from server.db.engine import create_engine
from server.procs import terminate_all
from tests.support import Backends, basic, free_port

CONNECTION_TIMEOUT = 2.0


@dataclass
class Procs:
    """A running deployment: its addresses, keys and environment."""

    http_url: str
    grpc_target: str
    api_key: str
    other_key: str
    admin_key: str
    env: dict[str, str]
    settings: Settings
    # ``python -m server`` (it starts the serving processes and the writer) and the gateway.
    server: subprocess.Popen[bytes] | None = None
    gateway: subprocess.Popen[bytes] | None = None

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": basic(key or self.api_key)}


def deployment_env(backends: Backends, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of every process of one deployment on ``backends``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTFLOW_")}
    env.update(
        EVENTFLOW_DATA_DIR=str(data_dir), DATABASE_URL=backends.database_url,
        REDIS_URL=backends.redis_url, EVENTFLOW_REDIS_PREFIX=backends.prefix,
        EVENTFLOW_GRPC_ADDR=f"127.0.0.1:{free_port()}",
        EVENTFLOW_HTTP_ADDR=f"127.0.0.1:{free_port()}",
        EVENTFLOW_API_KEY=secrets.token_urlsafe(18), EVENTFLOW_SERVER_PROCESSES="2",
        EVENTFLOW_ADMIN_KEY=secrets.token_urlsafe(24),
        # Short connection deadlines, so the connection scenarios take seconds.
        EVENTFLOW_CONNECTION_TIMEOUT=str(CONNECTION_TIMEOUT),
        EVENTFLOW_SQLITE_SYNCHRONOUS="NORMAL", EVENTFLOW_LOG_LEVEL="WARNING",
        PYTHONPATH=os.pathsep.join([str(Path.cwd()), str(Path.cwd() / "clients" / "python")]))
    env.update(extra)
    return env


def _wait_healthy(url: str, procs: list[subprocess.Popen[bytes]], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args} ended with {proc.returncode} while starting")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become healthy in {timeout}s")


@contextmanager
def running(backends: Backends, data_dir: Path, **extra: str) -> Iterator[Procs]:
    """Starts the server and the gateway, yields once ``/healthz`` answers, stops both."""
    env = deployment_env(backends, data_dir, **extra)
    server = subprocess.Popen([sys.executable, "-m", "server"], env=env)
    started = [server]
    try:
        gateway = subprocess.Popen([sys.executable, "-m", "server.gateway"], env=env)
        started.append(gateway)
        http_url = f"http://{env['EVENTFLOW_HTTP_ADDR']}"
        _wait_healthy(http_url, started)
        settings = Settings.from_env(env)
        other_key = asyncio.run(_second_account(settings))
        yield Procs(http_url=http_url, grpc_target=env["EVENTFLOW_GRPC_ADDR"],
                    api_key=env["EVENTFLOW_API_KEY"], other_key=other_key,
                    admin_key=env["EVENTFLOW_ADMIN_KEY"], env=env,
                    settings=settings, server=server, gateway=gateway)
    finally:
        terminate_all(started)


async def _second_account(settings: Settings) -> str:
    engine = create_engine(settings)
    try:
        _account, key = await create_account(engine, name="other")
    finally:
        await engine.dispose()
    return key
