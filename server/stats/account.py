"""The caller's account as the console names it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from server.db.models import Account, table_of
from server.errors import NotFound

_accounts = table_of(Account)


async def account_name(engine: AsyncEngine, *, account_id: int) -> str:
    async with engine.connect() as conn:
        name = (await conn.execute(select(_accounts.c.name)
                                   .where(_accounts.c.id == account_id))).scalar()
    if name is None:
        raise NotFound(f"no account with id {account_id}")
    return str(name)
