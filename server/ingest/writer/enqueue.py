"""The writer process's wake-up of the workers for committed events, from a thread.

One ``ZADD`` per round (``server.processing.wake``), carrying every account handed over
while the previous one ran, so the committing thread never waits for Redis.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import redis

from server.config import Settings
from server.processing.wake import wake_key, wake_mapping

__all__ = ["Enqueuer"]

log = logging.getLogger(__name__)


class Enqueuer:
    """Wakes the workers for the accounts of committed events from a thread of its own.

    Everything handed over while one wake-up ran goes out in the next one. When Redis
    fails the wake-up is dropped with a warning: the events stay unprocessed in the
    database and the sweepers wake their accounts (the database is the truth).
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        # None asks the thread to stop. A SimpleQueue (C) costs the committing thread far
        # less than a Condition, whose Python-level notify showed in the profile.
        self._ids: queue.SimpleQueue[list[int] | None] = queue.SimpleQueue()
        self._quiet_until = 0.0
        self._thread = threading.Thread(target=self._run, name="enqueue", daemon=True)
        self._client: Any = None
        self._key = wake_key(settings)
        if settings.redis_url:
            self._client = redis.Redis.from_url(settings.redis_url, socket_timeout=5,
                                                socket_connect_timeout=2)
            self._thread.start()

    def submit(self, accounts: list[int]) -> None:
        if self._client is not None and accounts:
            self._ids.put(accounts)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._ids.get()
            chunks = [] if first is None else [first]
            stopping = first is None
            while not self._ids.empty():  # everything handed over meanwhile goes together
                chunk = self._ids.get_nowait()
                if chunk is None:
                    stopping = True
                else:
                    chunks.append(chunk)
            if not chunks:
                continue
            accounts = {i for chunk in chunks for i in chunk}
            try:
                self._client.zadd(self._key, wake_mapping(accounts), nx=True)
            except redis.RedisError as exc:
                now = time.monotonic()
                if now >= self._quiet_until:
                    log.warning("waking the workers for %d accounts failed (%s); the "
                                "sweepers will retry", len(accounts), exc)
                    self._quiet_until = now + 10

    def stop(self) -> None:
        """Send the wake-ups handed over, then end the thread."""
        if self._thread.is_alive():
            self._ids.put(None)
            self._thread.join(timeout=10)
        if self._client is not None:
            self._client.close()
