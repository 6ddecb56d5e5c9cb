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

    def _tokens(self, account_id: int, now: float) -> float:
        tokens, last = self._buckets.get(account_id, (self._burst, now))
        return min(self._burst, tokens + (now - last) * self._rate)

    def refused(self, account_id: int, n: int = 1) -> RateLimited:
        """The error for ``n`` requests (or events) of the account over the limit, with
        the seconds until its bucket holds them."""
        missing = n - self._tokens(account_id, time.monotonic())
        return RateLimited(
            f"more than {int(self._rate)} events per second for this account; "
            "slow down and retry, or raise EVENTFLOW_RATE_LIMIT",
            retry_after=max(1, math.ceil(missing / self._rate)) if self._rate > 0 else 1,
        )

    def take(self, account_id: int, n: int = 1) -> None:
        """Charge ``n`` tokens, or none and raise ``RateLimited`` when fewer are left."""
        if self.admit(account_id, n, partly=False) < n:
            raise self.refused(account_id, n)

    def admit(self, account_id: int, n: int, *, partly: bool = True) -> int:
        """How many of ``n`` requests the account's bucket allows now, each charged one
        token; with ``partly=False`` all ``n`` or none."""
        if self._rate <= 0:
            return n
        now = time.monotonic()
        tokens = self._tokens(account_id, now)
        granted = min(n, int(tokens))
        if granted < n and not partly:
            granted = 0
        self._buckets[account_id] = (tokens - granted, now)
        return granted
