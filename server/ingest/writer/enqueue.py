"""The writer process's hand-off of committed events to the arq workers, from a thread.

One Lua enqueue per round, carrying everything handed over while the previous one ran,
so the committing thread never waits for Redis.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import redis

from server.config import Settings
from server.ingest.dispatch import ENQUEUE_LUA, enqueue_args

__all__ = ["Enqueuer"]

log = logging.getLogger(__name__)


class Enqueuer:
    """Enqueues process_event jobs for committed events from a thread of its own.

    Everything handed over while one enqueue ran goes out in the next one. When Redis
    fails the ids are dropped with a warning: the events stay unprocessed in the database
    and the sweeper of the serving processes enqueues them (the database is the truth).
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        # None asks the thread to stop. A SimpleQueue (C) costs the committing thread far
        # less than a Condition, whose Python-level notify showed in the profile.
        self._ids: queue.SimpleQueue[list[int] | None] = queue.SimpleQueue()
        self._quiet_until = 0.0
        self._thread = threading.Thread(target=self._run, name="enqueue", daemon=True)
        self._client: Any = None
        self._script: Any = None
        if settings.redis_url:
            self._client = redis.Redis.from_url(settings.redis_url, socket_timeout=5,
                                                socket_connect_timeout=2)
            self._script = self._client.register_script(ENQUEUE_LUA)
            self._thread.start()

    def submit(self, event_ids: list[int]) -> None:
        if self._script is not None and event_ids:
            self._ids.put(event_ids)

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
            ids = [i for chunk in chunks for i in chunk]
            try:
                self._script(keys=[self._settings.queue_name],
                             args=enqueue_args(self._settings, ids))
            except redis.RedisError as exc:
                now = time.monotonic()
                if now >= self._quiet_until:
                    log.warning("enqueue of %d events failed (%s); the sweeper will retry",
                                len(ids), exc)
                    self._quiet_until = now + 10

    def stop(self) -> None:
        """Enqueue what was handed over, then end the thread."""
        if self._thread.is_alive():
            self._ids.put(None)
            self._thread.join(timeout=10)
        if self._client is not None:
            self._client.close()
