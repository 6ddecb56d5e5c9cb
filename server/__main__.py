"""``python -m server``: migrate, make sure the API key exists, serve gRPC.

With ``EVENTFLOW_SERVER_PROCESSES`` > 1 the parent starts that many serving children
that share the port through SO_REUSEPORT (their settings on stdin), and stops them on
Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from server.config import Settings
from server.embedded import resolve_redis
from server.logs import setup_logging
from server.procs import spawn

CHILD_FLAG = "--serving-child"


async def _prepare(settings: Settings) -> None:
    from server.accounts import ensure_default_account
    from server.db.engine import create_engine, migrate_async

    await migrate_async(settings)
    engine = create_engine(settings)
    try:
        key = await ensure_default_account(engine, settings=settings)
    finally:
        await engine.dispose()
    if key.source == "generated":
        print(f"API key (generated, stored in {settings.data_dir / 'api_key'}): {key.api_key}",
              flush=True)


def _run_child(settings: Settings, reuse_port: bool) -> None:
    from server.app import install_event_loop, serve_forever
    from server.gctune import tune_gc

    # SIGTERM until the serving loop installs its handlers is _stop_starting's (main).
    install_event_loop()
    tune_gc()
    asyncio.run(serve_forever(settings, reuse_port=reuse_port))


def _stop_starting(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def main() -> None:
    settings = Settings.load()
    if CHILD_FLAG in sys.argv:
        # SIGTERM before its serving loop installs its handlers (the parent forwards one
        # that came while the children start) ends it cleanly (exit 0), not by the signal.
        signal.signal(signal.SIGTERM, _stop_starting)
        setup_logging(settings.log_level)
        _run_child(settings, reuse_port=True)
        return
    setup_logging(settings.log_level)
    # Stopped while still starting (make run's Ctrl-C): unwind, so the finally below stops
    # the writer process and Valkey. The serving loop installs its own handlers later.
    signal.signal(signal.SIGTERM, _stop_starting)
    settings, valkey = resolve_redis(settings)
    writer = None
    try:
        asyncio.run(_prepare(settings))
        if settings.ingest_writer == "process":
            from server.ingest.writer.supervisor import WriterProcess

            writer = WriterProcess(settings)
            writer.start()
            settings = settings.with_(ingest_writer_socket=writer.socket_path)
        n = max(1, settings.server_processes)
        if n == 1:
            _run_child(settings, reuse_port=False)
            return
        children = [spawn("server", CHILD_FLAG, settings=settings) for _ in range(n)]
        logging.getLogger("server").info("started %d serving processes on %s", n,
                                         settings.grpc_addr)

        def forward(signum: int, _frame: object) -> None:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGINT, forward)
        signal.signal(signal.SIGTERM, forward)
        codes = [child.wait() for child in children]
        sys.exit(max(codes))
    finally:
        if writer is not None:
            writer.stop()
        if valkey is not None:
            valkey.stop()


if __name__ == "__main__":
    main()
