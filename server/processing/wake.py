"""Wake-ups: "account A has events to process", in one Redis sorted set per deployment.

``<prefix>events:wake`` holds account ids scored by when they were first woken
(``ZADD NX``: an account already waiting keeps its place), so a flood of commits for one
account is one entry and accounts are served oldest first. Worker drainers take the
oldest with ``BZPOPMIN``. A wake-up is a hint, never the record: the events table is,
and the sweepers wake every account with unprocessed events every sweep interval, so a
wake-up lost to a Redis outage or a worker killed after popping it costs latency only.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from server.config import Settings

__all__ = ["wake_key", "wake_mapping"]


def wake_key(settings: Settings) -> str:
    return f"{settings.redis_prefix}events:wake"


def wake_mapping(accounts: Iterable[int], *, at: float | None = None) -> dict[Any, float]:
    """The ``ZADD`` members and scores that wake these accounts (now, or at ``at``)."""
    score = (time.time() if at is None else at) * 1000
    return {str(int(a)): score for a in accounts}
