"""Accounts and API keys: the default account on first start, creating accounts and keys,
revoking keys, and the key look-up of every call (with a cache revocations reach)."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.config import Settings
from server.db.models import Account, ApiKey, as_utc, id_is, table_of, utcnow
from server.errors import InvalidArgument, NotFound, Unauthenticated, Violation
from server.segments.store import follow_account_zone
from server.workflows.durations import zone

log = logging.getLogger(__name__)

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
    time_zone: str | None = None


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """An API key as listed: never the key itself, which only its creator saw."""

    key_id: int
    account_id: int
    label: str
    created_at: datetime


def _check_account_fields(*, name: str, email: str | None) -> None:
    problems = []
    if not name.strip():
        problems.append(Violation("name", "is required"))
    elif len(name) > 200:
        problems.append(Violation("name", f"is {len(name)} characters; at most 200"))
    if email is not None and (len(email) > 320 or "@" not in email):
        problems.append(Violation("email", "must be an email address of at most 320 characters"))
    if problems:
        raise InvalidArgument.from_violations(problems)


def _check_label(label: str) -> None:
    if len(label) > 100:
        raise InvalidArgument.from_violations([Violation(
            "label", f"is {len(label)} characters; at most 100")])


async def create_account(engine: AsyncEngine, *, name: str, api_key: str | None = None,
                         email: str | None = None) -> tuple[int, str]:
    """A new account with one API key; returns (account id, key)."""
    _check_account_fields(name=name, email=email)
    key = api_key or secrets.token_urlsafe(24)
    async with engine.begin() as conn:
        result = await conn.execute(
            insert(_accounts).values(name=name.strip(), email=email, created_at=utcnow())
            .returning(_accounts.c.id)
        )
        account_id = int(result.scalar_one())
        await _insert_key(conn, account_id=account_id, key=key, label="default")
    log.info("account %d created with key (label default)", account_id)
    return account_id, key


async def _insert_key(conn: AsyncConnection, *, account_id: int, key: str, label: str) -> int:
    result = await conn.execute(
        insert(_keys).values(account_id=account_id, key_hash=hash_key(key), label=label,
                             created_at=utcnow()).returning(_keys.c.id))
    return int(result.scalar_one())


async def _require_account(conn: AsyncConnection, account_id: int) -> None:
    found = (await conn.execute(
        select(_accounts.c.id).where(id_is(_accounts.c.id, account_id)))).scalar()
    if found is None:
        raise NotFound(f"no account {account_id}")


async def add_key(engine: AsyncEngine, *, account_id: int, label: str = "") -> tuple[int, str]:
    """A new API key for an existing account; returns (key id, key)."""
    _check_label(label)
    key = secrets.token_urlsafe(24)
    async with engine.begin() as conn:
        await _require_account(conn, account_id)
        key_id = await _insert_key(conn, account_id=account_id, key=key, label=label or "api")
    log.info("key %d created for account %d", key_id, account_id)
    return key_id, key


async def list_keys(engine: AsyncEngine, *, account_id: int) -> list[KeyInfo]:
    """The keys of an account, oldest first."""
    async with engine.connect() as conn:
        await _require_account(conn, account_id)
        rows = (await conn.execute(
            select(_keys.c.id, _keys.c.account_id, _keys.c.label, _keys.c.created_at)
            .where(id_is(_keys.c.account_id, account_id)).order_by(_keys.c.id))).all()
    return [KeyInfo(key_id=int(r.id), account_id=int(r.account_id), label=r.label,
                    created_at=as_utc(r.created_at)) for r in rows]


async def revoke_key(engine: AsyncEngine, *, key_id: int) -> tuple[int, str]:
    """Deletes an API key; returns (its account, its hash) for ``announce_revocation``.
    From the commit on, the database refuses it; cached copies go through the feed."""
    async with engine.begin() as conn:
        row = (await conn.execute(
            select(_keys.c.account_id, _keys.c.key_hash).where(id_is(_keys.c.id, key_id))
        )).one_or_none()
        if row is None:
            raise NotFound(f"no API key {key_id}")
        await conn.execute(delete(_keys).where(id_is(_keys.c.id, key_id)))
    log.info("key %d of account %d revoked", key_id, row.account_id)
    return int(row.account_id), str(row.key_hash)


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
            select(_accounts.c.id, _accounts.c.name, _accounts.c.email, _accounts.c.time_zone)
            .where(_accounts.c.id == account_id)
        )).one()
    return AccountProfile(account_id=int(row.id), name=row.name, email=row.email,
                          time_zone=row.time_zone)


async def account_time_zone(conn: AsyncConnection, *, account_id: int) -> str:
    """The account's time zone name; "UTC" when it has none."""
    found = (await conn.execute(select(_accounts.c.time_zone)
                                .where(_accounts.c.id == account_id))).scalar()
    return str(found) if found else "UTC"


async def set_time_zone(engine: AsyncEngine, *, account_id: int, time_zone: str
                        ) -> AccountProfile:
    """Set the account's time zone (an IANA name; "" or "UTC" clear it)."""
    try:
        zone(time_zone)
    except ValueError as error:
        raise InvalidArgument.from_violations([Violation("timeZone", str(error))]) from None
    async with engine.begin() as conn:
        await conn.execute(update(_accounts).where(_accounts.c.id == account_id)
                           .values(time_zone=time_zone if time_zone not in ("", "UTC") else None))
        # Segments saved without a zone of their own count in the account's: they move too.
        await follow_account_zone(conn, account_id=account_id, time_zone=time_zone or "UTC")
    return await account_profile(engine, account_id=account_id)


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")


class KeyResolver:
    """Maps an API key to its account.

    Found keys are cached for ``ttl`` seconds, and only while ``live`` (the revocation
    feed's subscription is up, ``server.keyrevocation``); ``forget`` drops one at once.
    Unknown keys are never cached, so a key created a moment ago works at once. A lookup
    that raced a revocation is not cached (the generation moved while it ran).
    """

    def __init__(self, engine: AsyncEngine, *, ttl: float = 30.0) -> None:
        self._engine = engine
        self._ttl = ttl
        self._cache: dict[str, tuple[int, float]] = {}
        self._live = False
        self._generation = 0

    def forget(self, key_hash: str) -> None:
        """A revoked key: looked up again on its next use (and refused)."""
        self._generation += 1
        self._cache.pop(key_hash, None)

    def set_live(self, live: bool) -> None:
        """Whether revocations can reach this process; while not, nothing is cached."""
        self._generation += 1
        self._live = live
        if not live:
            self._cache.clear()

    async def account_for(self, key: str) -> int:
        if not key:
            raise Unauthenticated(
                "no API key: send HTTP Basic auth with the API key as password, "
                "or the x-api-key header"
            )
        digest = hash_key(key)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[1] >= now:
            return hit[0]
        generation = self._generation
        async with self._engine.connect() as conn:
            found = (await conn.execute(
                select(_keys.c.account_id).where(_keys.c.key_hash == digest)
            )).scalar()
        if found is None:
            self._cache.pop(digest, None)
            raise Unauthenticated("unknown API key: check the key printed at start-up "
                                  "or stored in the data dir")
        if self._live and generation == self._generation:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (int(found), now + self._ttl)
        return int(found)


if __name__ == "__main__":
    from server.accounts_cli import main

    raise SystemExit(main())
