"""Accounts and API keys: the default account on first start, key look-up with a cache."""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from server.config import Settings
from server.db.models import Account, ApiKey, table_of, utcnow
from server.errors import Unauthenticated

_accounts = table_of(Account)
_keys = table_of(ApiKey)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class DefaultKey:
    account_id: int
    api_key: str
    source: str  # "environment", "data dir" or "generated"


@dataclass(frozen=True, slots=True)
class AccountProfile:
    """What account info shows of an account: its id, name and owner's address."""

    account_id: int
    name: str
    email: str | None


async def create_account(engine: AsyncEngine, *, name: str, api_key: str | None = None,
                         email: str | None = None) -> tuple[int, str]:
    """A new account with one API key; returns (account id, key)."""
    key = api_key or secrets.token_urlsafe(24)
    async with engine.begin() as conn:
        result = await conn.execute(
            insert(_accounts).values(name=name, email=email, created_at=utcnow())
            .returning(_accounts.c.id)
        )
        account_id = int(result.scalar_one())
        await conn.execute(
            insert(_keys).values(account_id=account_id, key_hash=hash_key(key), label="default",
                                 created_at=utcnow())
        )
    return account_id, key


async def ensure_default_account(engine: AsyncEngine, *, settings: Settings) -> DefaultKey:
    """Make sure the default account exists and knows the configured or stored key."""
    key_file = settings.data_dir / "api_key"
    if settings.api_key:
        key, source = settings.api_key, "environment"
    elif key_file.exists():
        key, source = key_file.read_text().strip(), "data dir"
    else:
        key, source = secrets.token_urlsafe(24), "generated"
    async with engine.begin() as conn:
        account_id = (await conn.execute(
            select(_accounts.c.id).order_by(_accounts.c.id).limit(1)
        )).scalar()
        if account_id is None:
            account_id = (await conn.execute(
                insert(_accounts).values(name="default", created_at=utcnow())
                .returning(_accounts.c.id)
            )).scalar_one()
        known = (await conn.execute(
            select(_keys.c.account_id).where(_keys.c.key_hash == hash_key(key))
        )).scalar()
        if known is None:
            await conn.execute(insert(_keys).values(
                account_id=account_id, key_hash=hash_key(key), label=source, created_at=utcnow()))
        else:
            account_id = known
    if source == "generated":
        _write_secret(key_file, key)
    return DefaultKey(account_id=int(account_id), api_key=key, source=source)


async def account_profile(engine: AsyncEngine, *, account_id: int) -> AccountProfile:
    """The caller's account; it exists, since its key was just resolved."""
    async with engine.connect() as conn:
        row = (await conn.execute(
            select(_accounts.c.id, _accounts.c.name, _accounts.c.email)
            .where(_accounts.c.id == account_id)
        )).one()
    return AccountProfile(account_id=int(row.id), name=row.name, email=row.email)


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")


class KeyResolver:
    """Maps an API key to its account, caching hits for a minute and misses briefly."""

    def __init__(self, engine: AsyncEngine, *, ttl: float = 60.0) -> None:
        self._engine = engine
        self._ttl = ttl
        self._cache: dict[str, tuple[int | None, float]] = {}

    async def account_for(self, key: str) -> int:
        if not key:
            raise Unauthenticated(
                "no API key: send HTTP Basic auth with the API key as password, "
                "or the x-api-key header"
            )
        digest = hash_key(key)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is None or hit[1] < now:
            async with self._engine.connect() as conn:
                found = (await conn.execute(
                    select(_keys.c.account_id).where(_keys.c.key_hash == digest)
                )).scalar()
            ttl = self._ttl if found is not None else 2.0
            if len(self._cache) > 10_000:
                self._cache.clear()
            hit = (found, now + ttl)
            self._cache[digest] = hit
        if hit[0] is None:
            raise Unauthenticated("unknown API key: check the key printed at start-up "
                                  "or stored in the data dir")
        return hit[0]
