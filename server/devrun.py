"""``make run``: the whole stack on one machine for development and evaluation.

Starts the embedded Valkey (unless REDIS_URL is set), migrates, then the gRPC server,
the HTTP gateway and one worker as child processes; prints where everything is; Ctrl-C
stops them all, children first, Valkey last.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from typing import Any

from server.config import Settings
from server.embedded import resolve_redis
from server.logs import setup_logging
from server.procs import spawn


def _prepare(settings: Settings) -> Any:
    from server.__main__ import _prepare as prepare_db

    asyncio.run(prepare_db(settings))
    from server.accounts import ensure_default_account
    from server.db.engine import create_engine

    async def key() -> Any:
        engine = create_engine(settings)
        try:
            return await ensure_default_account(engine, settings=settings)
        finally:
            await engine.dispose()

    return asyncio.run(key())


def _wait_http(url: str, timeout: float = 60.0) -> bool:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def main() -> None:
    settings = Settings.load()
    setup_logging(settings.log_level)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    print(f"==> data dir: {settings.data_dir.resolve()}", flush=True)
    settings, valkey = resolve_redis(settings)
    print(f"==> Redis: {settings.redis_url}" + (" (embedded Valkey)" if valkey else ""), flush=True)
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        print("==> migrating the database", flush=True)
        first_start = not settings.api_key and not (settings.data_dir / "api_key").exists()
        key = _prepare(settings)
        origin = f"generated, kept in {settings.data_dir / 'api_key'}" if first_start \
            else f"from {key.source}"
        from server.mail.devrun import configure_dev_mail

        settings, mail_note, sink = configure_dev_mail(settings)
        modules = {"server": "server", "gateway": "server.gateway", "worker": "workers"}
        if sink:
            modules["mail-sink"] = "server.mail"
        # Every child gets these settings (Redis resolved, the sink's URL) from here.
        for name, module in modules.items():
            children.append((name, spawn(module, settings=settings)))
        http = f"http://{settings.http_addr}"
        up = _wait_http(f"{http}/healthz")
        print("\n" + "=" * 72)
        print(f"  eventflow is {'running' if up else 'starting (gateway not answering yet)'}")
        print(f"  HTTP gateway : {http}   (POST {http}/api/v2/event)")
        print(f"  console      : {http}/   (sign in with the API key below)")
        print(f"  gRPC server  : {settings.grpc_addr}")
        print(f"  API key      : {key.api_key}   ({origin})")
        print(f"  database     : {settings.database_url}")
        print(f"  mail         : {mail_note}")
        print("  Ctrl-C stops everything.")
        print("=" * 72 + "\n", flush=True)
        stop = {"now": False}

        def on_signal(signum: int, _frame: Any) -> None:
            stop["now"] = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        while not stop["now"]:
            for name, proc in children:
                if proc.poll() is not None:
                    print(f"==> {name} exited with code {proc.returncode}; stopping the rest",
                          flush=True)
                    stop["now"] = True
            time.sleep(0.3)
    finally:
        print("==> stopping", flush=True)
        for _name, proc in children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in children:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                print(f"==> {name} did not stop in time; killing it", flush=True)
                proc.kill()
        if valkey is not None:
            valkey.stop()
        print("==> stopped", flush=True)


if __name__ == "__main__":
    main()
