"""Which events of a type count for segments: eSputnik counts only the events of types whose
segmentation switch is on, and only those received after it was switched on.

The one place that rule is read: ``membership`` loads a contact's events through it for
every caller (the batch path, contact changes, due re-evaluations and the full recount),
so the incremental and full results apply the same rule. Switching a type off takes its
events out of every segment reading it: ``server.eventtypes.store`` then marks those
segments for a recount (``server.segments.store.recount_reading``). Switching on needs no
recount: nothing received before the switch counts, as nothing did while it was off.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from server.db.models import EventType, as_utc, table_of

__all__ = ["counting_since", "counting_types"]

_types = table_of(EventType)
# Switched on with no recorded time (rows older than the switch's time column): all count.
_ALWAYS = datetime(1970, 1, 1, tzinfo=UTC)


async def counting_types(conn: AsyncConnection, *, account_id: int, type_keys: Iterable[str]
                         ) -> dict[str, tuple[int, datetime]]:
    """For each type key whose segmentation is on: its id and the moment from which its
    events count (by their received time). A key not in the answer counts no events."""
    keys = sorted(set(type_keys))
    if not keys:
        return {}
    rows = await conn.execute(select(_types.c.id, _types.c.key, _types.c.segmentation_since)
                              .where((_types.c.account_id == account_id) & _types.c.key.in_(keys)
                                     & _types.c.segmentation))
    return {str(r.key): (int(r.id), _ALWAYS if r.segmentation_since is None
                         else as_utc(r.segmentation_since)) for r in rows}


async def counting_since(conn: AsyncConnection, *, account_id: int, type_keys: Iterable[str]
                         ) -> dict[str, datetime]:
    """``counting_types`` without the ids."""
    found = await counting_types(conn, account_id=account_id, type_keys=type_keys)
    return {key: since for key, (_id, since) in found.items()}
