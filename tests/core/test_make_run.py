"""`make run`'s launcher on a fresh data dir: embedded Valkey, SQLite, every process, Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from tests.support import basic, free_port


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _valkey_of(port: int, data_dir: Path) -> bool:
    """Whether the Valkey answering on ``port`` keeps its data in ``data_dir``. Embedded
    Valkeys take the first free port from 16379, so the moment ours frees its port another
    test's (CI runs two suites at once) may be listening there: only ours must be gone."""
    try:
        with redis.Redis(port=port, socket_timeout=2) as client:
            found = client.config_get("dir").get("dir", "")
    except redis.RedisError:
        return False
    return Path(found).resolve() == data_dir.resolve()


def test_devrun_starts_everything_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    """The launcher prints URLs and key, accepts an event end to end, and stops on SIGINT."""
    http_port, grpc_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in {"REDIS_URL", "DATABASE_URL", "EVENTFLOW_API_KEY"}}
    env.update(EVENTFLOW_DATA_DIR=str(tmp_path / "var"),
               EVENTFLOW_HTTP_ADDR=f"127.0.0.1:{http_port}",
               EVENTFLOW_GRPC_ADDR=f"127.0.0.1:{grpc_port}", EVENTFLOW_SERVER_PROCESSES="1")
    proc = subprocess.Popen([sys.executable, "-m", "server.devrun"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        text = "".join(lines)
        assert "eventflow is running" in text, text
        # Quiet start-up: the banner is not buried under library chatter.
        assert " alembic." not in text and " mail.log:" not in text, text
        key = (tmp_path / "var" / "api_key").read_text().strip()
        assert key in text
        assert f"console      : http://127.0.0.1:{http_port}/" in text
        r = httpx.post(f"http://127.0.0.1:{http_port}/api/v2/event",
                       json={"eventTypeKey": "hello", "keyValue": "k", "params": []},
                       headers={"Authorization": basic(key)}, timeout=10)
        assert r.status_code == 200, r.text
        valkey_url = (tmp_path / "var" / "valkey" / "url").read_text().strip()
        valkey_port = int(valkey_url.rsplit(":", 1)[1])
        assert _valkey_of(valkey_port, tmp_path / "var" / "valkey")
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=40)
    assert proc.returncode == 0, out
    assert "==> stopped" in out
    assert not _port_open(http_port) and not _port_open(grpc_port)
    assert not _valkey_of(valkey_port, tmp_path / "var" / "valkey")


@pytest.mark.parametrize(("level", "shown"), [("INFO", False), ("DEBUG", True)])
def test_alembic_and_the_mail_sink_speak_only_at_debug(level: str, shown: bool) -> None:
    """Below DEBUG, Alembic's and the mail sink's INFO lines are not logged; at DEBUG they are."""
    probe = ("import logging\nfrom server.logs import setup_logging\n"
             f"setup_logging({level!r})\n"
             "logging.getLogger('alembic.runtime.plugins').info('alembic-line')\n"
             "logging.getLogger('mail.log').info('sink-line')\n"
             "logging.getLogger('server').info('ours')\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stderr
    assert "ours" in out
    assert ("alembic-line" in out) is shown and ("sink-line" in out) is shown
