"""``worker_leases``: which worker (process, task) may process a partition's events now.

A partition is an account id. A lease is taken when it is free or expired, with a fencing
token one higher than the last holder's, and lasts ``LEASE_SECONDS`` unless renewed. The
event pump takes it in its first batch's transaction (``take``) and gives it up in its last
(``give_up``), so a short drain is one write transaction. Every later batch transaction
starts by renewing it, guarded by owner and token (``renew``): on
PostgreSQL the renewal row-locks the lease to the commit, on SQLite it takes the write lock,
so a batch commits only while its worker still holds the lease and nobody can take it
meanwhile. A worker that stops renewing (killed, hung, cut off) loses the lease within
``LEASE_SECONDS`` and another takes the partition over; its transaction in flight is
rolled back, or, if it still commits, finds its token stale and changes nothing.

Hosts' clocks must agree to well under ``LEASE_SECONDS`` (NTP does).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    DateTime,
    String,
    Table,
    and_,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.db.dialect import on_conflict_insert
from server.db.models import as_utc, metadata, utcnow
from server.processing.turns import write_turn

__all__ = ["LEASES", "LEASE_SECONDS", "Held", "Lease", "acquire", "give_up", "peek", "release",
           "renew", "take"]

LEASE_SECONDS = 5.0

LEASES = Table(
    "worker_leases", metadata,
    Column("partition", BigInteger, primary_key=True, autoincrement=False),
    Column("owner", String(200), nullable=False),
    Column("token", BigInteger, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)
_l = LEASES


@dataclass(frozen=True, slots=True)
class Lease:
    partition: int
    owner: str
    token: int


@dataclass(frozen=True, slots=True)
class Held:
    """The lease is someone else's until ``expires_at`` (then ask again)."""

    owner: str
    expires_at: datetime


async def peek(engine: AsyncEngine, *, partition: int, owner: str) -> Held | None:
    """Who else holds the lease now, by a read (no write lock); None: it may be taken."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(_l.c.owner, _l.c.expires_at)
                                  .where(_l.c.partition == partition))).first()
    if row is not None and row.owner != owner and as_utc(row.expires_at) > utcnow():
        return Held(row.owner, as_utc(row.expires_at))
    return None


async def take(conn: AsyncConnection, *, partition: int, owner: str,
               seconds: float = LEASE_SECONDS) -> Lease | Held:
    """Take the partition's lease inside the caller's transaction if it is free or expired
    (or already ``owner``'s); it is held from the commit on (a rollback gives it back)."""
    now = utcnow()
    until = now + timedelta(seconds=seconds)
    token = (await conn.execute(
        update(_l).where(and_(_l.c.partition == partition,
                              or_(_l.c.expires_at < now, _l.c.owner == owner)))
        .values(owner=owner, token=_l.c.token + 1, expires_at=until)
        .returning(_l.c.token))).scalar()
    if token is None:
        token = (await conn.execute(
            on_conflict_insert(conn, _l)
            .values(partition=partition, owner=owner, token=1, expires_at=until)
            .on_conflict_do_nothing().returning(_l.c.token))).scalar()
    if token is not None:
        return Lease(partition, owner, int(token))
    current = (await conn.execute(select(_l.c.owner, _l.c.expires_at)
                                  .where(_l.c.partition == partition))).first()
    if current is None:  # deleted meanwhile: nobody holds it, ask again soon
        return Held("", now)
    return Held(current.owner, as_utc(current.expires_at))


async def acquire(engine: AsyncEngine, *, partition: int, owner: str,
                  seconds: float = LEASE_SECONDS) -> Lease | Held:
    """Take the partition's lease if it is free or expired (or already ``owner``'s), in a
    transaction of its own."""
    held = await peek(engine, partition=partition, owner=owner)
    if held is not None:
        return held  # no write, no waiting on its lock
    async with write_turn(engine) as conn:
        return await take(conn, partition=partition, owner=owner, seconds=seconds)


async def renew(conn: AsyncConnection, lease: Lease, *, seconds: float = LEASE_SECONDS) -> bool:
    """Extend the lease inside the caller's transaction; False if it is no longer ours.

    Run it first in a batch transaction: it locks the lease (and on SQLite the database)
    until the transaction ends."""
    result = await conn.execute(
        update(_l).where(_mine(lease))
        .values(expires_at=utcnow() + timedelta(seconds=seconds)))
    return bool(result.rowcount == 1)


async def give_up(conn: AsyncConnection, lease: Lease) -> None:
    """Release the lease inside the caller's transaction (free from its commit on)."""
    await conn.execute(update(_l).where(_mine(lease))
                       .values(expires_at=utcnow() - timedelta(seconds=1)))


async def release(engine: AsyncEngine, lease: Lease) -> None:
    """Give the lease up at once (it stays on record with its token)."""
    async with write_turn(engine) as conn:
        await give_up(conn, lease)


def _mine(lease: Lease) -> ColumnElement[bool]:
    return and_(_l.c.partition == lease.partition, _l.c.owner == lease.owner,
                _l.c.token == lease.token)
