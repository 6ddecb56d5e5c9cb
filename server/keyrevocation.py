"""Revoked API keys reach every serving process at once, through Redis pub/sub.

Serving processes cache the accounts of API keys they resolved (``KeyResolver``). A
revocation deletes the key's row, then publishes its hash on ``<prefix>keys:revoked`` with a
nonce; every process subscribed forgets the key and counts itself on ``<prefix>keys:ack:
<nonce>``, and the revoker waits for as many acknowledgements as PUBLISH reached
subscribers. A process caches keys only while its subscription is live: when the
subscription drops it empties its cache and looks every key up in the database until it
is back, so a revocation it could not hear about cannot be missed.

The same feed, on channels of their own, carries other changes that serving processes
cache (event-type settings: ``server.eventtypes.rules``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable

import redis.asyncio as aioredis

log = logging.getLogger(__name__)
CHANNEL = "keys:revoked"
_ACK = "keys:ack:"
# How long a revoker waits for the subscribed processes to acknowledge.
ACK_TIMEOUT = 5.0
_RETRY_SECONDS = 1.0


def _client(url: str) -> aioredis.Redis:
    # health_check_interval: a subscription on a dead connection is noticed within seconds.
    client: aioredis.Redis = aioredis.Redis.from_url(url, socket_connect_timeout=2,
                                                     health_check_interval=5)
    return client


class RevocationFeed:
    """The subscription of one serving process: calls ``on_revoked(key_hash)`` for each
    revocation and ``on_live(bool)`` when the subscription comes up or goes down."""

    def __init__(self, *, redis_url: str, prefix: str, channel: str = CHANNEL,
                 ack: str = _ACK) -> None:
        self._url = redis_url
        self._channel = prefix + channel
        self._ack = prefix + ack
        self._task: asyncio.Task[None] | None = None

    def start(self, *, on_revoked: Callable[[str], None], on_live: Callable[[bool], None]
              ) -> None:
        self._task = asyncio.create_task(self._run(on_revoked, on_live),
                                         name="key-revocation-feed")

    async def _run(self, on_revoked: Callable[[str], None],
                   on_live: Callable[[bool], None]) -> None:
        while True:
            client = _client(self._url)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    on_live(True)
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        key_hash, _, nonce = message["data"].decode().partition(" ")
                        on_revoked(key_hash)
                        if nonce:
                            await client.incr(self._ack + nonce)
                            await client.expire(self._ack + nonce, 60)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis away: no cache until it is back
                log.warning("key revocation feed down (%s); resolving keys without a cache",
                            exc)
            finally:
                on_live(False)
                await client.aclose()
            await asyncio.sleep(_RETRY_SECONDS)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def announce_revocation(*, redis_url: str, prefix: str, key_hash: str,
                              channel: str = CHANNEL, ack: str = _ACK
                              ) -> tuple[int, int] | None:
    """Tells every subscribed serving process to forget ``key_hash``: (confirmed, reached),
    or None when Redis cannot be reached (processes without a live subscription keep no
    cache, so they need no telling)."""
    client = _client(redis_url)
    nonce = secrets.token_hex(8)
    try:
        reached = int(await client.publish(prefix + channel, f"{key_hash} {nonce}"))
        deadline = time.monotonic() + ACK_TIMEOUT
        confirmed = 0
        while time.monotonic() < deadline:
            confirmed = int(await client.get(prefix + ack + nonce) or 0)
            if confirmed >= reached:
                break
            await asyncio.sleep(0.01)
        return confirmed, reached
    except (aioredis.RedisError, OSError) as exc:
        log.warning("could not announce a key revocation through Redis: %s", exc)
        return None
    finally:
        await client.aclose()
