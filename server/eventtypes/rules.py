"""The settings of an account's event types that acceptance applies ("Validate parameters"
and, for past events, the segmentation switch), cached in each process that accepts
events, and how a change reaches every such process at once.

The cache maps an account to its types that require params (most accounts: none, an
empty map) and the keys of its types with segmentation on, so the ingest path pays two
dict look-ups per event (a past event one set look-up more). It holds entries only
while the process hears about changes: ``UpdateEventType`` commits, then publishes the
account on ``<prefix>event-types:changed`` and waits for every subscribed process to drop
it (the key-revocation feed, ``server.keyrevocation``). A process whose subscription is
down caches nothing and reads the rules of each event's account from the database, so it
never applies old rules; one without a feed at all (a worker's Launch event block) reads
them every time.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.db.models import EventType, table_of
from server.eventtypes.settings import RequiredParams, rules_of
from server.keyrevocation import RevocationFeed, announce_revocation

__all__ = ["CHANNEL", "AccountRules", "EventTypeRules", "announce_change", "changes_feed",
           "load_account_rules"]

log = logging.getLogger(__name__)
CHANNEL = "event-types:changed"
_ACK = "event-types:ack:"
_MAX_ACCOUNTS = 100_000
_types = table_of(EventType)


@dataclass(frozen=True, slots=True)
class AccountRules:
    """What acceptance reads of one account's event types."""

    # The types that require params, by key.
    required: Mapping[str, RequiredParams]
    # The keys of the types whose segmentation is on: the only ones taking past events.
    segmented: frozenset[str]


async def load_account_rules(conn: AsyncConnection, account_id: int) -> AccountRules:
    """The account's types that require params and those with segmentation on."""
    rows = await conn.execute(select(_types.c.key, _types.c.validate_params,
                                     _types.c.segmentation).where(and_(
        _types.c.account_id == account_id,
        _types.c.validate_params.is_not(None) | _types.c.segmentation)))
    required: dict[str, RequiredParams] = {}
    segmented: set[str] = set()
    for key, stored, segmentation in rows:
        rule = rules_of(key, stored)
        if rule is not None:
            required[key] = rule
        if segmentation:
            segmented.add(key)
    return AccountRules(required, frozenset(segmented))


class EventTypeRules:
    """One per process: ``cached`` on the hot path, ``load`` when it misses."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._cache: dict[int, AccountRules] = {}
        self._live = False
        self._generation = 0

    def cached(self, account_id: int) -> AccountRules | None:
        return self._cache.get(account_id)

    async def load(self, account_id: int) -> AccountRules:
        generation = self._generation
        async with self._engine.connect() as conn:
            rules = await load_account_rules(conn, account_id)
        # Not kept when a change was announced while it ran (it may predate the change).
        if self._live and generation == self._generation:
            if len(self._cache) >= _MAX_ACCOUNTS:
                self._cache.clear()
            self._cache[account_id] = rules
        return rules

    def forget(self, account: str) -> None:
        """A change of the account's settings was announced (its id as text)."""
        self._generation += 1
        try:
            self._cache.pop(int(account), None)
        except ValueError:
            log.warning("event-type change feed: %r is not an account id", account)
            self._cache.clear()

    def set_live(self, live: bool) -> None:
        """Whether changes can reach this process; while not, nothing is cached."""
        self._generation += 1
        self._live = live
        if not live:
            self._cache.clear()


def changes_feed(*, redis_url: str, prefix: str, rules: EventTypeRules) -> RevocationFeed:
    """The started subscription that keeps ``rules`` current (close it on shutdown)."""
    feed = RevocationFeed(redis_url=redis_url, prefix=prefix, channel=CHANNEL, ack=_ACK)
    feed.start(on_revoked=rules.forget, on_live=rules.set_live)
    return feed


async def announce_change(*, redis_url: str, prefix: str, account_id: int
                          ) -> tuple[int, int] | None:
    """Tells every subscribed process to drop the account's rules: (confirmed, reached),
    or None when Redis cannot be reached (then no process keeps a cache)."""
    return await announce_revocation(redis_url=redis_url, prefix=prefix,
                                     key_hash=str(account_id), channel=CHANNEL, ack=_ACK)
