"""A migrated real database for the membership tests, and helpers writing contacts and
events as the worker leaves them (events linked to their contact)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from server.accounts import create_account
from server.config import Settings
from server.contacts.tables import CONTACTS
from server.db.engine import create_engine, migrate_async
from server.db.models import Event, EventType, table_of, utcnow
from server.segments.definition import parse_definition
from server.segments.store import create_segment
from server.segments.tables import SEGMENT_MEMBERS
from tests.support import new_database_url

_events = table_of(Event)
_types = table_of(EventType)
SWITCHED_ON = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Committed:
    id: int
    event_type_key: str
    contact_id: int | None


@dataclass
class Db:
    engine: AsyncEngine
    account_id: int
    other_account_id: int
    schema: str | None

    async def close(self) -> None:
        await self.engine.dispose()
        if self.schema is not None:
            with psycopg.connect(os.environ["EVENTFLOW_TEST_DATABASE_URL"],
                                 autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    async def contact(self, *, email: str, account_id: int | None = None, **columns: Any) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(insert(CONTACTS).values(
                account_id=account_id or self.account_id, email=email, email_key=email.lower(),
                status="active", source="api", created_at=utcnow(), updated_at=utcnow(),
                **columns).returning(CONTACTS.c.id))
            return int(result.scalar_one())

    async def type_id(self, key: str, account_id: int) -> int:
        async with self.engine.begin() as conn:
            found = (await conn.execute(select(_types.c.id).where(
                (_types.c.account_id == account_id) & (_types.c.key == key)))).first()
            if found is not None:
                return int(found.id)
            # Segmentation on since long before any test's clock: every event counts
            # (tests/segments/test_switch.py tries the switch itself).
            return int((await conn.execute(insert(_types).values(
                account_id=account_id, key=key, create_contacts=True, created_at=utcnow(),
                segmentation=True, segmentation_since=SWITCHED_ON)
                .returning(_types.c.id))).scalar_one())

    async def event(self, key: str, *, contact_id: int, at: datetime,
                    params: dict[str, Any] | None = None,
                    account_id: int | None = None,
                    occurred: datetime | None = None) -> Committed:
        """An event received (and processed) at ``at``; with ``occurred``, a past event
        that happened then."""
        account = account_id or self.account_id
        type_id = await self.type_id(key, account)
        body = {"eventTypeKey": key, "keyValue": str(contact_id),
                "params": [{"name": k, "value": v} for k, v in (params or {}).items()]}
        async with self.engine.begin() as conn:
            result = await conn.execute(insert(_events).values(
                account_id=account, event_type_id=type_id, key_value=str(contact_id),
                body=orjson.dumps(body).decode(), contact_id=contact_id, received_at=at,
                occurred_at=occurred, processed_at=at, is_past=occurred is not None)
                .returning(_events.c.id))
            return Committed(int(result.scalar_one()), key, contact_id)

    async def segment(self, doc: dict[str, Any], *, account_id: int | None = None) -> int:
        async with self.engine.begin() as conn:
            return await create_segment(conn, account_id=account_id or self.account_id,
                                        definition=parse_definition(doc))

    async def members(self, segment_id: int) -> set[int]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(SEGMENT_MEMBERS.c.contact_id).where(
                SEGMENT_MEMBERS.c.segment_id == segment_id))
            return {int(r.contact_id) for r in rows}


async def open_db(tmp: Path) -> Db:
    url, schema = new_database_url(tmp, name="segments")
    settings = Settings(database_url=url, data_dir=tmp, sqlite_synchronous="NORMAL")
    await migrate_async(settings)
    engine = create_engine(settings)
    account_id, _ = await create_account(engine, name="segments")
    other_id, _ = await create_account(engine, name="segments-other")
    return Db(engine=engine, account_id=account_id, other_account_id=other_id, schema=schema)
