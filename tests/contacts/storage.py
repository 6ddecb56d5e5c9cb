"""A migrated real database (SQLite file or private PostgreSQL schema) with two accounts,
for the contact store tests that need no servers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from server.accounts import create_account
from server.config import Settings
from server.contacts import FieldDefinition, parse_field_definition
from server.contacts.fields_store import create_field
from server.db.engine import create_engine, migrate_async
from tests.support import new_database_url


@dataclass
class Db:
    engine: AsyncEngine
    account_id: int
    other_account_id: int
    schema: str | None


async def open_db(tmp: Path) -> Db:
    url, schema = new_database_url(tmp, name="contacts")
    settings = Settings(database_url=url, data_dir=tmp, sqlite_synchronous="NORMAL")
    await migrate_async(settings)
    engine = create_engine(settings)
    account_id, _ = await create_account(engine, name="contacts")
    other_id, _ = await create_account(engine, name="contacts-other")
    return Db(engine=engine, account_id=account_id, other_account_id=other_id, schema=schema)


async def define(db: Db, body: dict[str, object], *, account_id: int | None = None
                 ) -> FieldDefinition:
    async with db.engine.begin() as conn:
        return await create_field(conn, account_id=account_id or db.account_id,
                                  definition=parse_field_definition(body))
