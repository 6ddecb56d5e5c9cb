"""Reading and changing one event type of an account: its settings, its event count and
the recorded structure of its params."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.db.dialect import lock_rows, on_conflict_insert
from server.db.models import Event, EventType, EventTypeParam, as_utc, table_of
from server.errors import NotFound
from server.eventtypes.settings import (
    SettingsPatch,
    TypeSettings,
    check_patch,
    dump_rules,
    load_rules,
)
from server.eventtypes.shapes import JSON_TYPES
from server.segments.store import recount_reading

__all__ = ["RecordedParam", "TypeView", "get_type", "settings_of", "update_type"]

_events = table_of(Event)
_types = table_of(EventType)
_params = table_of(EventTypeParam)
_SETTINGS = (_types.c.segmentation, _types.c.segmentation_since, _types.c.create_contacts,
             _types.c.validate_params)


@dataclass(frozen=True, slots=True)
class RecordedParam:
    name: str
    count: int
    # (JSON type, count), in JSON_TYPES order
    types: tuple[tuple[str, int], ...]
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class TypeView:
    id: int
    key: str
    created_at: datetime
    event_count: int
    settings: TypeSettings
    params: tuple[RecordedParam, ...] = ()


def settings_of(row: Any) -> TypeSettings:
    """The settings of a row holding the event_types columns of ``_SETTINGS``."""
    since = row.segmentation_since
    return TypeSettings(segmentation=bool(row.segmentation),
                        segmentation_since=as_utc(since) if since is not None else None,
                        create_contacts=bool(row.create_contacts),
                        validate_params=load_rules(row.validate_params))


async def _recorded(conn: AsyncConnection, type_id: int) -> tuple[RecordedParam, ...]:
    rows = (await conn.execute(
        select(_params.c.name, _params.c.json_type, _params.c.seen, _params.c.first_seen_at,
               _params.c.last_seen_at).where(_params.c.event_type_id == type_id))).all()
    by_name: dict[str, list[Any]] = {}
    for row in rows:
        by_name.setdefault(row.name, []).append(row)
    order = {t: i for i, t in enumerate(JSON_TYPES)}
    out = []
    for name, found in by_name.items():
        found.sort(key=lambda r: order.get(r.json_type, len(order)))
        out.append(RecordedParam(
            name=name, count=sum(int(r.seen) for r in found),
            types=tuple((r.json_type, int(r.seen)) for r in found),
            first_seen=as_utc(min(r.first_seen_at for r in found)),
            last_seen=as_utc(max(r.last_seen_at for r in found))))
    # The most common first, then by name.
    out.sort(key=lambda p: (-p.count, p.name))
    return tuple(out)


async def _view(conn: AsyncConnection, *, account_id: int, key: str) -> TypeView:
    row = (await conn.execute(
        select(_types.c.id, _types.c.key, _types.c.created_at, *_SETTINGS)
        .where(and_(_types.c.account_id == account_id, _types.c.key == key)))).first()
    if row is None:
        raise NotFound(f"no event type {key!r} in this account")
    count = (await conn.execute(select(func.count()).select_from(_events).where(and_(
        _events.c.account_id == account_id, _events.c.event_type_id == row.id)))).scalar_one()
    return TypeView(id=int(row.id), key=row.key, created_at=as_utc(row.created_at),
                    event_count=int(count), settings=settings_of(row),
                    params=await _recorded(conn, int(row.id)))


async def get_type(engine: AsyncEngine, *, account_id: int, key: str) -> TypeView:
    async with engine.connect() as conn:
        return await _view(conn, account_id=account_id, key=key)


async def update_type(engine: AsyncEngine, *, account_id: int, key: str,
                      patch: SettingsPatch, now: datetime) -> TypeView:
    """Apply ``patch`` (creating the type when it is new); the type as committed.

    Switching segmentation on records ``now`` as the time from which its events count;
    switching it off clears it; asking for the state it is in changes nothing.
    """
    check_patch(key, patch)
    async with engine.begin() as conn:
        await conn.execute(on_conflict_insert(conn, _types)
                           .values(account_id=account_id, key=key, create_contacts=True,
                                   segmentation=False, created_at=now)
                           .on_conflict_do_nothing(index_elements=["account_id", "key"]))
        where = and_(_types.c.account_id == account_id, _types.c.key == key)
        row = (await lock_rows(conn, select(_types.c.id, *_SETTINGS).where(where),
                               table=_types, where=where)).one()
        values: dict[str, Any] = {}
        if patch.segmentation is not None and patch.segmentation != bool(row.segmentation):
            values["segmentation"] = patch.segmentation
            values["segmentation_since"] = now if patch.segmentation else None
        if patch.create_contacts is not None:
            values["create_contacts"] = patch.create_contacts
        if patch.validate_params is not None:
            values["validate_params"] = dump_rules(patch.validate_params)
        if values:
            await conn.execute(update(_types).where(_types.c.id == row.id).values(**values))
        if values.get("segmentation") is False:
            # Its events no longer count: the segments reading it are counted again.
            await recount_reading(conn, account_id=account_id, type_key=key)
        return await _view(conn, account_id=account_id, key=key)
