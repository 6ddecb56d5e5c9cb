"""How the gateway stops. On SIGTERM (or Ctrl-C) it serves on for ``DRAIN_SECONDS``, every
answer carrying ``Connection: close``, so a keep-alive client opens a new connection for its
next request instead of writing into one the gateway is about to close (that request was
lost as a reset or "server disconnected"); then uvicorn's graceful shutdown: no new
connections, the requests in flight answered, idle connections closed. The process exits
0 (uvicorn raises the signal again after its shutdown, which ended the gateway with -15).
A second signal ends the drain at once; a third stops without waiting for requests.
"""

from __future__ import annotations

import time
from types import FrameType

import uvicorn

__all__ = ["DRAIN_SECONDS", "Drain", "GatewayServer"]

# Shorter than the server's drain (server.app.DRAIN_SECONDS): a request the gateway takes
# while draining still reaches a server that takes calls, when both are stopped together.
DRAIN_SECONDS = 0.5


class Drain:
    """Whether (and since when) the gateway is draining; read by its connections
    (``server.gateway.guard``)."""

    def __init__(self) -> None:
        self.since: float | None = None

    @property
    def draining(self) -> bool:
        return self.since is not None


class GatewayServer(uvicorn.Server):
    """uvicorn's server with the drain above."""

    def __init__(self, config: uvicorn.Config, drain: Drain) -> None:
        super().__init__(config)
        self.drain = drain

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not uvicorn's: it records the signal to raise it again once stopped.
        if self.drain.since is None:
            self.drain.since = time.monotonic()
        elif self.should_exit:
            self.force_exit = True
        else:
            self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        since = self.drain.since
        if since is not None and time.monotonic() - since >= DRAIN_SECONDS:
            self.should_exit = True
        return await super().on_tick(counter)
