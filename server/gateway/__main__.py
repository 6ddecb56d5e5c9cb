"""``python -m server.gateway``: the HTTP-JSON gateway on EVENTFLOW_HTTP_ADDR."""

from __future__ import annotations

from typing import Any

import uvicorn

from server.config import Settings
from server.gateway.app import build_app
from server.gateway.drain import Drain, GatewayServer
from server.gateway.guard import (
    DEFAULT_KEEP_ALIVE,
    DEFAULT_TIMEOUT,
    MAX_CONNECTIONS,
    guarded_protocol,
)
from server.logs import setup_logging


def uvicorn_options(*, connection_timeout: float = DEFAULT_TIMEOUT,
                    keep_alive: float = DEFAULT_KEEP_ALIVE,
                    drain: Drain | None = None) -> dict[str, Any]:
    """How the gateway runs under uvicorn (the bench's bare HTTP app runs the same way).

    ``loop="auto"`` takes uvloop where installed: the gateway then spends about half the
    CPU per event (make bench). grpc.aio works on it because the channel is opened in the
    application's lifespan, on the serving loop, never before uvicorn creates that loop.
    ``http``: uvicorn's httptools protocol with head limits and deadlines
    (``server.gateway.guard``), which answers with ``Connection: close`` during ``drain``.
    It closes idle connections after ``keep_alive``; uvicorn's own timer is a second later.
    """
    return {"log_level": "warning", "access_log": False, "loop": "auto",
            "timeout_graceful_shutdown": 5, "timeout_keep_alive": keep_alive + 1,
            "http": guarded_protocol(connection_timeout, keep_alive=keep_alive, drain=drain),
            "limit_concurrency": MAX_CONNECTIONS}


def main() -> None:
    settings = Settings.load()
    setup_logging(settings.log_level)
    host, _, port = settings.http_addr.rpartition(":")
    drain = Drain()
    config = uvicorn.Config(build_app(settings), host=host or "127.0.0.1", port=int(port),
                            **uvicorn_options(connection_timeout=settings.connection_timeout,
                                              keep_alive=settings.keep_alive, drain=drain))
    # Stopped by a signal, it drains and returns: the process exits 0 (server.gateway.drain).
    GatewayServer(config, drain).run()


if __name__ == "__main__":
    main()
