"""Registers the services beyond EventService (templates, contacts, workflows) on a server.

Each feature adds itself here, so the server assembly in ``app.py`` stays unchanged.
"""

from __future__ import annotations

from typing import Any

import grpc

from server.api.events import IngestDeps


async def register_all(server: grpc.aio.Server, deps: IngestDeps) -> tuple[list[Any], list[str]]:
    """Returns (resources to close on shutdown, full service names for reflection/health)."""
    closers: list[Any] = []
    names: list[str] = []
    return closers, names
