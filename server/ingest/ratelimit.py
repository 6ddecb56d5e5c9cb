"""Per-account token buckets (eSputnik: 350 event requests per second per account).

Buckets live in the process; with N server processes each enforces the limit on its
share, which keeps the hot path free of a Redis round trip (documented in docs/).
"""

from __future__ import annotations

import math
import time

from server.errors import RateLimited


class RateLimiter:
    def __init__(self, *, per_second: int, burst: int | None = None) -> None:
        self._rate = float(per_second)
        self._burst = float(burst if burst is not None else per_second)
        self._buckets: dict[int, tuple[float, float]] = {}

    def take(self, account_id: int, n: int = 1) -> None:
        if self._rate <= 0:
            return
        now = time.monotonic()
        tokens, last = self._buckets.get(account_id, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        if tokens < n:
            self._buckets[account_id] = (tokens, now)
            raise RateLimited(
                f"more than {int(self._rate)} events per second for this account; "
                "slow down and retry, or raise EVENTFLOW_RATE_LIMIT",
                retry_after=max(1, math.ceil((n - tokens) / self._rate)),
            )
        self._buckets[account_id] = (tokens - n, now)
