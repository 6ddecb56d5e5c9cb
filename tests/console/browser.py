"""What the browser tests stand on: Debian's chromium driven by Playwright (never a browser
download), and the stack started as ``make run`` starts it, on free ports."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.support import free_port, new_database_url

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking"]
SHOTS = Path(__file__).parent / "screenshots"
INSTALL_HINT = ("the console's browser tests need Debian's chromium and Playwright's Python "
                "package: `apt-get install -y chromium` (the package comes with `make test`'s "
                "dev extras; never `playwright install`)")


def require_browser() -> Any:
    """Playwright's sync API, or a skip saying how to get it (a failure under CI's
    EVENTFLOW_REQUIRE_BROWSER=1, so CI can not pass with the browser tests skipped)."""
    missing = ""
    try:
        from playwright import sync_api
    except ImportError:
        missing = "playwright is not installed"
    if not missing and not os.access(CHROMIUM, os.X_OK):
        missing = f"{CHROMIUM} is missing"
    if missing:
        if os.environ.get("EVENTFLOW_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{missing} and EVENTFLOW_REQUIRE_BROWSER=1: {INSTALL_HINT}")
        pytest.skip(f"{missing}: {INSTALL_HINT}")
    return sync_api


@dataclass
class DevStack:
    url: str
    api_key: str
    data_dir: Path
    output: Path


def _env(tmp: Path, http_port: int, grpc_port: int) -> tuple[dict[str, str], str | None]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"REDIS_URL", "DATABASE_URL", "EVENTFLOW_API_KEY"}}
    env.update(EVENTFLOW_DATA_DIR=str(tmp / "var"), EVENTFLOW_HTTP_ADDR=f"127.0.0.1:{http_port}",
               EVENTFLOW_GRPC_ADDR=f"127.0.0.1:{grpc_port}", EVENTFLOW_SERVER_PROCESSES="1",
               EVENTFLOW_SWEEP_INTERVAL="1", PYTHONUNBUFFERED="1")
    schema = None
    if os.environ.get("EVENTFLOW_TEST_DATABASE_URL"):
        env["DATABASE_URL"], schema = new_database_url(tmp)
    if os.environ.get("EVENTFLOW_TEST_REDIS_URL"):
        env["REDIS_URL"] = os.environ["EVENTFLOW_TEST_REDIS_URL"]
        env["EVENTFLOW_REDIS_PREFIX"] = f"efconsole:{secrets.token_hex(3)}:"
    return env, schema


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"make run's launcher exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"the stack did not become healthy: {log.read_text()[-3000:]}")


def run_devstack(tmp: Path) -> Iterator[DevStack]:
    """``python -m server.devrun`` (what ``make run`` runs): server, gateway, worker, Valkey
    and the development SMTP sink; stopped with Ctrl-C's signal at the end."""
    http_port, grpc_port = free_port(), free_port()
    env, schema = _env(tmp, http_port, grpc_port)
    log = tmp / "devrun.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "server.devrun"], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http_port}"
    try:
        _wait_healthy(url, proc, log)
        key = (tmp / "var" / "api_key").read_text().strip()
        yield DevStack(url=url, api_key=key, data_dir=tmp / "var", output=log)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if schema is not None:
            with psycopg.connect(os.environ["EVENTFLOW_TEST_DATABASE_URL"],
                                 autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# A loaded two-core machine renders slower than a quiet one: generous waits, no timings.
WAIT_MS = 20_000


def launch(sync_api: Any) -> tuple[Any, Any]:
    playwright = sync_api.sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    return playwright, browser


def shots_dir() -> Path:
    if SHOTS.exists():
        shutil.rmtree(SHOTS)
    SHOTS.mkdir(parents=True)
    return SHOTS
