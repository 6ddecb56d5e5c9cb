"""Per-account token buckets shared by every serving process (eSputnik: 350 events/s).

Every event costs one token, however it arrives (unary, batch, stream, coalesced by the
gateway). The bucket of an account is one Redis hash, ``<prefix>ratelimit:<account>``,
updated by one Lua script (EVALSHA) on Redis's clock, so all serving processes, on any
machine, draw from it. Concurrent charges of one account in a process leave together as
one script call (nothing waits on a timer: a lone charge goes at once).

When Redis cannot be reached within ``REDIS_TIMEOUT`` the process falls back, for
``FALLBACK_SECONDS`` before it tries Redis again, to a bucket of its own holding
``1/processes`` of the rate and burst: the account's total stays near the limit while
the serving processes of this deployment share the load, and ingest never waits on a
dead Redis (docs/behaviour.md, Rate limit).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from server.errors import RateLimited

log = logging.getLogger(__name__)

# Seconds one script call may take before the process uses its own bucket instead.
REDIS_TIMEOUT = 0.5
# Seconds of own bucket after a failed call, before Redis is tried again.
FALLBACK_SECONDS = 1.0

# KEYS[1]: the bucket; ARGV: rate (tokens/s), burst, tokens asked. Returns
# {granted, tokens left (text: a fraction)}. The bucket is full when absent and expires
# once it would be full again, so idle accounts hold no key.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local asked = tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then
  tokens = burst
elseif now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate)
end
local granted = math.min(asked, math.floor(tokens))
if granted < 0 then granted = 0 end
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {granted, tostring(tokens)}
"""


@dataclass(frozen=True, slots=True)
class Admission:
    """What a charge of ``asked`` events got: the first ``granted`` go on."""

    asked: int
    granted: int
    # Events refused ahead of this charge's first refused one (other callers' of the
    # same moment), and the tokens the bucket held after it: together, when each
    # refused event of this charge would find its token.
    ahead: int = 0
    tokens_left: float = 0.0
    rate: float = 0.0

    def retry_after(self, k: int = 0) -> int:
        """Whole seconds until the ``k``-th refused event of this charge would be allowed."""
        if self.rate <= 0:
            return 1
        return max(1, math.ceil((self.ahead + k + 1 - self.tokens_left) / self.rate))


class LocalBucket:
    """Token buckets of one process (the fallback while Redis is away)."""

    def __init__(self, *, rate: float, burst: float) -> None:
        self._rate = rate
        self._burst = burst
        self._buckets: dict[int, tuple[float, float]] = {}

    def take(self, account_id: int, n: int) -> tuple[int, float]:
        """Up to ``n`` tokens of the account: (granted, tokens left)."""
        now = time.monotonic()
        tokens, last = self._buckets.get(account_id, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        granted = max(0, min(n, int(tokens)))
        self._buckets[account_id] = (tokens - granted, now)
        return granted, tokens - granted


@dataclass
class _Waiting:
    asked: list[tuple[int, asyncio.Future[Admission]]] = field(default_factory=list)
    busy: bool = False


class RateLimiter:
    """The one rate limit of the event methods (called by ``EventService``)."""

    def __init__(self, *, per_second: int, burst: int | None = None,
                 redis_url: str | None = None, prefix: str = "eventflow:",
                 processes: int = 1) -> None:
        self._rate = float(per_second)
        self._burst = float(burst if burst else per_second)
        self._prefix = f"{prefix}ratelimit:"
        self._share = self._rate / max(1, processes)
        self._local = LocalBucket(rate=self._share,
                                  burst=max(1.0, self._burst / max(1, processes)))
        self._redis: aioredis.Redis | None = None
        self._script = None
        if redis_url is not None and self._rate > 0:
            self._redis = aioredis.Redis.from_url(
                redis_url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT)
            self._script = self._redis.register_script(_SCRIPT)
        self._local_until = 0.0
        self._waiting: dict[int, _Waiting] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def shared(self) -> bool:
        """True while charges go to the Redis bucket (False: this process's own)."""
        return self._redis is not None and time.monotonic() >= self._local_until

    def refused(self, admission: Admission, k: int = 0) -> RateLimited:
        """The error for the ``k``-th refused event of ``admission``."""
        return RateLimited(
            f"more than {int(self._rate)} events per second for this account; "
            "slow down and retry, or raise EVENTFLOW_RATE_LIMIT",
            retry_after=admission.retry_after(k))

    async def admit(self, account_id: int, n: int) -> Admission:
        """Charge up to ``n`` events of the account, one token each: the first
        ``granted`` go on, each of the rest is refused (``refused``)."""
        if self._rate <= 0 or n <= 0:
            return Admission(asked=n, granted=n)
        waiting = self._waiting.get(account_id)
        if waiting is None:
            waiting = self._waiting[account_id] = _Waiting()
        future: asyncio.Future[Admission] = asyncio.get_running_loop().create_future()
        waiting.asked.append((n, future))
        if not waiting.busy:
            waiting.busy = True
            task = asyncio.create_task(self._drain(account_id, waiting))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def take(self, account_id: int, n: int = 1) -> None:
        """All ``n`` events or ``RateLimited`` (a unary call: one event)."""
        admission = await self.admit(account_id, n)
        if admission.granted < n:
            raise self.refused(admission)

    async def _drain(self, account_id: int, waiting: _Waiting) -> None:
        """Charges the account's waiting callers together until none is left."""
        try:
            while waiting.asked:
                batch, waiting.asked = waiting.asked, []
                total = sum(n for n, _ in batch)
                try:
                    granted, left = await self._charge(account_id, total)
                except BaseException as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    raise
                before = 0
                for n, future in batch:
                    got = max(0, min(n, granted - before))
                    ahead = max(0, before + got - granted)
                    before += n
                    if not future.done():
                        future.set_result(Admission(asked=n, granted=got, ahead=ahead,
                                                    tokens_left=left, rate=self._rate))
        finally:
            waiting.busy = False
            if not waiting.asked and self._waiting.get(account_id) is waiting:
                del self._waiting[account_id]

    async def _charge(self, account_id: int, n: int) -> tuple[int, float]:
        if self._script is not None and time.monotonic() >= self._local_until:
            try:
                granted, left = await asyncio.wait_for(
                    self._script(keys=[f"{self._prefix}{account_id}"],
                                 args=[self._rate, self._burst, n]),
                    REDIS_TIMEOUT * 2)
                return int(granted), float(left)
            except (RedisError, OSError, TimeoutError) as exc:
                if self.shared:
                    log.warning("rate limit: Redis unreachable (%s); this process limits "
                                "each account to its share (%.1f/s) for %.0f s",
                                exc or type(exc).__name__, self._share, FALLBACK_SECONDS)
                self._local_until = time.monotonic() + FALLBACK_SECONDS
        return self._local.take(account_id, n)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._redis is not None:
            await self._redis.aclose()
