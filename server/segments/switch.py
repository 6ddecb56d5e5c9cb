"""Which events of a type count for segments: eSputnik counts only events after the type's
segmentation switch was turned on.

The one place that rule is read. Until event-type settings exist (the ``segmentation``
flag and the time it was switched on), every event counts: ``None`` means "from the
beginning". When they land, this function reads the switch time and nothing else changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["counting_since"]


async def counting_since(conn: AsyncConnection, *, account_id: int, type_keys: Iterable[str]
                         ) -> dict[str, datetime | None]:
    """For each type key: the moment from which its events count (None: all of them)."""
    return {key: None for key in type_keys}
