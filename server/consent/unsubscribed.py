"""The account's list of unsubscribed email addresses (eSputnik's ``emails/unsubscribed``).

eSputnik unsubscribes addresses, not contacts: every contact using a listed address stops
getting marketing email, while its other channels and its transactional email go on. The
list is keyed by ``email_key`` (the address ignoring case) and holds addresses no contact
has yet, so a later sign-up with an unsubscribed address stays unsubscribed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from sqlalchemy import Table, and_, delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import Field, SQLModel

from server.contacts.errors import InvalidValue
from server.contacts.sql import chunked
from server.contacts.validation import email_key, normalise_email
from server.db.dialect import on_conflict_insert
from server.db.models import _ts, table_of, utcnow
from server.errors import InvalidArgument, Violation

__all__ = [
    "MAX_EMAILS",
    "UNSUBSCRIBED",
    "add_unsubscribed",
    "list_unsubscribed",
    "parse_emails",
    "remove_unsubscribed",
    "unsubscribed_among",
]

MAX_EMAILS: Final = 10_000


class UnsubscribedEmailRow(SQLModel, table=True):
    __tablename__ = "unsubscribed_emails"
    account_id: int = Field(foreign_key="accounts.id", primary_key=True)
    email_key: str = Field(max_length=320, primary_key=True)
    # The address as first given (normalised: domain lower-cased).
    email: str = Field(max_length=320)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


UNSUBSCRIBED: Table = table_of(UnsubscribedEmailRow)
_u = UNSUBSCRIBED


def parse_emails(value: object, *, name: str = "emails") -> list[str]:
    """A list of valid addresses; every bad entry is named, nothing is dropped."""
    if not isinstance(value, list) or not value:
        raise InvalidArgument.from_violations([Violation(
            name, 'is required: send {"emails": ["user@example.com", ...]}')])
    if len(value) > MAX_EMAILS:
        raise InvalidArgument.from_violations([Violation(
            name, f"holds {len(value)} addresses; send at most {MAX_EMAILS} per call")])
    out: list[str] = []
    problems: list[Violation] = []
    for index, raw in enumerate(value):
        try:
            email = normalise_email(raw) if isinstance(raw, str) else None
        except InvalidValue as error:
            problems.append(Violation(f"{name}[{index}]", f"{raw!r}: {error.reason}"))
            continue
        if email is None:
            problems.append(Violation(f"{name}[{index}]", "must be an email address"))
        else:
            out.append(email)
    if problems:
        raise InvalidArgument.from_violations(problems)
    return out


async def add_unsubscribed(conn: AsyncConnection, *, account_id: int,
                           emails: Sequence[str]) -> int:
    """List the addresses; those already listed stay as they are. Returns how many were new."""
    rows = {email_key(e): {"account_id": account_id, "email_key": email_key(e), "email": e,
                           "created_at": utcnow()} for e in emails}
    added = 0
    for part in chunked(list(rows.values())):
        stmt = on_conflict_insert(conn, _u).values(list(part)).on_conflict_do_nothing()
        added += (await conn.execute(stmt)).rowcount or 0
    return added


async def remove_unsubscribed(conn: AsyncConnection, *, account_id: int,
                              emails: Sequence[str]) -> int:
    """Take the addresses off the list; returns how many were on it."""
    keys = sorted({email_key(e) for e in emails})
    removed = 0
    for part in chunked(keys):
        result = await conn.execute(delete(_u).where(and_(_u.c.account_id == account_id,
                                                          _u.c.email_key.in_(part))))
        removed += result.rowcount or 0
    return removed


async def unsubscribed_among(conn: AsyncConnection, *, account_id: int,
                             emails: Sequence[str]) -> set[str]:
    """The ``email_key`` of each given address that is on the list."""
    keys = sorted({email_key(e) for e in emails})
    found: set[str] = set()
    for part in chunked(keys):
        rows = await conn.execute(select(_u.c.email_key).where(
            and_(_u.c.account_id == account_id, _u.c.email_key.in_(part))))
        found.update(row[0] for row in rows)
    return found


async def list_unsubscribed(conn: AsyncConnection, *, account_id: int, offset: int,
                            limit: int) -> tuple[list[str], int]:
    """One page of listed addresses, oldest first, and how many there are in all."""
    total = (await conn.execute(select(func.count()).select_from(_u)
                                .where(_u.c.account_id == account_id))).scalar_one()
    rows = await conn.execute(select(_u.c.email).where(_u.c.account_id == account_id)
                              .order_by(_u.c.created_at, _u.c.email_key)
                              .offset(offset).limit(limit))
    return [row[0] for row in rows], int(total)
