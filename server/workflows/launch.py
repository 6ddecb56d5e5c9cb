"""The Launch event block's event: accepted through the ingest pipeline
(``server.ingest.accept``, for the engine and the simulator alike), then written (event
type, the events table, its type's recorded params) inside the step's transaction, so it is stored exactly once with
the step record. Dispatch to the workers follows after commit (and the sweeper covers it).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from server.codec.jsonbody import event_from_json
from server.db.dialect import on_conflict_insert
from server.db.models import Event, EventType, table_of, utcnow
from server.errors import InvalidArgument, TooLarge
from server.eventtypes.shapes import record_async
from server.ingest.accept import Acceptance, accept
from server.ingest.model import ValidEvent
from server.workflows.runtime import StepFailed

_events = table_of(Event)
_types = table_of(EventType)


async def accept_launched(*, account_id: int, event_type_key: str, key_value: str,
                          params: list[dict[str, Any]], using: Acceptance) -> ValidEvent:
    """The block's event decoded and accepted as ingest would; StepFailed when refused."""
    doc = {"eventTypeKey": event_type_key, "keyValue": key_value, "params": params}
    try:
        return await accept(event_from_json(doc), account_id=account_id, using=using)
    except (InvalidArgument, TooLarge) as exc:
        raise StepFailed(f"launch_event: the event is not valid: {exc.message}") from None


async def insert_event(conn: AsyncConnection, *, account_id: int, event_type_key: str,
                       key_value: str, params: list[dict[str, Any]], using: Acceptance) -> int:
    event = await accept_launched(account_id=account_id, event_type_key=event_type_key,
                                  key_value=key_value, params=params, using=using)
    now = utcnow()
    await conn.execute(on_conflict_insert(conn, _types)
                       .values(account_id=account_id, key=event.event_type_key,
                               create_contacts=True, created_at=now)
                       .on_conflict_do_nothing(index_elements=["account_id", "key"]))
    type_id = (await conn.execute(select(_types.c.id).where(and_(
        _types.c.account_id == account_id, _types.c.key == event.event_type_key)))).scalar_one()
    event_id = int((await conn.execute(_events.insert().values(
        account_id=account_id, event_type_id=type_id, key_value=event.key_value,
        body=event.body, message_id=None, received_at=now, occurred_at=None,
        processed_at=None, is_past=False).returning(_events.c.id))).scalar_one())
    await record_async(conn, [(int(type_id), event.param_types)], now=now)
    return event_id
