"""Stored contacts, one at a time: find by identity, create-or-update, update, read, delete.

Every function runs on the caller's ``AsyncConnection`` and inside its transaction, so a
workflow step or an event's processing writes atomically with its own record. Creation
uses ``INSERT ... ON CONFLICT DO NOTHING``: when a concurrent writer created the same
contact first (same email key, phone, external id or contact key), the insert does
nothing and the contact is read again, so one contact results and no transaction aborts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from server.contacts.definitions import FieldDefinition
from server.contacts.deleted import KEYS as DELETED_KEYS
from server.contacts.deleted import remember_deleted
from server.contacts.identity import (
    IdentifierKind,
    Identifiers,
    IdentityNote,
    StoredIdentity,
    find_owner,
    owners_index,
    plan_link,
)
from server.contacts.model import ContactData
from server.contacts.record import (
    CONTACT_STATUSES,
    ContactRecord,
    check_required_fields,
    contact_columns,
    identifiers_of,
    record_from_row,
)
from server.contacts.sql import (
    conflicting_owner,
    insert_ignoring_conflicts,
    write_field_values,
    write_push_tokens,
)
from server.contacts.tables import CONTACTS, FIELD_VALUES, PUSH_TOKENS
from server.contacts.validation import email_key
from server.db.models import utcnow
from server.errors import Conflict, InvalidArgument, NotFound, Violation

__all__ = [
    "ContactRecord",
    "ContactSearch",
    "delete_contact",
    "find_contact_id",
    "find_contact_ids",
    "get_contact",
    "get_contacts",
    "link_contact",
    "load_identities",
    "search_contacts",
    "set_contact_status",
    "update_contact",
    "upsert_contact",
]

_c = CONTACTS
_tokens = PUSH_TOKENS
_values = FIELD_VALUES
SEARCH_LIMIT = 500
# Plans made again after losing a race before giving up (each loss means another writer won).
LINK_TRIES: Final = 4


async def load_identities(
    conn: AsyncConnection, *, account_id: int, identifiers: Sequence[Identifiers]
) -> list[StoredIdentity]:
    """Every contact of the account holding any of the identifiers (of one event or many),
    in one query (two when push tokens are among them)."""
    wanted: dict[IdentifierKind, set[int | str]] = {}
    for ids in identifiers:
        for kind, key in ids.lookup_keys():
            wanted.setdefault(kind, set()).add(key)
    if not wanted:
        return []
    token_owners: dict[int, set[str]] = {}
    if "push_token" in wanted:
        query = select(_tokens.c.token, _tokens.c.contact_id).where(and_(
            _tokens.c.account_id == account_id, _tokens.c.token.in_(sorted(
                str(token) for token in wanted.pop("push_token")))))
        for token, contact_id in (await conn.execute(query)).all():
            token_owners.setdefault(int(contact_id), set()).add(token)
        if token_owners:
            wanted.setdefault("contact_id", set()).update(token_owners)
    if not wanted:
        return []
    query = (select(_c.c.id, _c.c.external_customer_id, _c.c.email_key, _c.c.phone,
                    _c.c.contact_key)
             .where(and_(_c.c.account_id == account_id, or_(*(
                 _lookup_column(kind).in_(sorted(keys, key=str)) for kind, keys in wanted.items()
             )))))
    return [StoredIdentity(contact_id=int(row.id), external_customer_id=row.external_customer_id,
                           email_key=row.email_key, phone=row.phone, contact_key=row.contact_key,
                           push_tokens=frozenset(token_owners.get(int(row.id), ())))
            for row in (await conn.execute(query)).all()]


async def find_contact_id(
    conn: AsyncConnection, *, account_id: int, identifiers: Identifiers
) -> int | None:
    """The contact the identifiers name, trying them in the documented priority."""
    identities = await load_identities(conn, account_id=account_id, identifiers=[identifiers])
    found = find_owner(identifiers, owners_index(identities))
    return None if found is None else found[1].contact_id


async def link_contact(
    conn: AsyncConnection, *, account_id: int, identifiers: Identifiers, create: bool,
    source: str = "event",
) -> tuple[int | None, tuple[IdentityNote, ...]]:
    """Find the identifiers' contact, attach what it lacks or create it (``plan_link``);
    returns its id (``None``: none found, none created) and the notes to keep.

    A step that loses a race with a concurrent writer (the value was taken, the contact
    created or changed meanwhile) changes nothing and the plan is made again from what is
    stored now, so the unique constraints decide. On PostgreSQL a writer still in flight
    can make the update fail with ``IntegrityError``; the caller's transaction is then
    retried whole (the worker retries the event).
    """
    for _ in range(LINK_TRIES):
        identities = await load_identities(conn, account_id=account_id, identifiers=[identifiers])
        plan = plan_link(identifiers, owners_index(identities), create=create)
        if plan.create:
            created = await _create_identified(conn, account_id=account_id,
                                               identifiers=identifiers, source=source)
            if created is not None:
                return created, plan.notes
        elif plan.contact_id is None or await _attach(
                conn, account_id=account_id, contact_id=plan.contact_id, attach=plan.attach):
            return plan.contact_id, plan.notes
    raise Conflict("the contact's identifiers kept changing concurrently; retry")


async def upsert_contact(
    conn: AsyncConnection,
    *,
    account_id: int,
    data: ContactData,
    source: str,
    fields: Mapping[int, FieldDefinition] | None = None,
) -> int:
    """Create the contact or update the one its identifiers name; returns its id.

    A given ``contact_id`` must exist (else ``NotFound``). With ``fields``, a new contact
    must carry every required field (else ``ContactValidationError``).
    """
    if data.contact_id is not None:
        if await _exists(conn, account_id=account_id, contact_id=data.contact_id):
            await _apply(conn, account_id=account_id, contact_id=data.contact_id, data=data)
            return data.contact_id
        raise NotFound(f"no contact with id {data.contact_id} in this account")
    identifiers = identifiers_of(data)
    contact_id = await find_contact_id(conn, account_id=account_id, identifiers=identifiers)
    if contact_id is None:
        if fields is not None:
            check_required_fields(data, fields=fields)
        contact_id = await _create(conn, account_id=account_id, data=data, source=source)
        if contact_id is not None:
            return contact_id
        # A concurrent writer created it between our look-up and insert: update that one.
        contact_id = await find_contact_id(conn, account_id=account_id, identifiers=identifiers)
        if contact_id is None:
            raise Conflict("the contact was changed concurrently; retry")
    await _apply(conn, account_id=account_id, contact_id=contact_id, data=data)
    return contact_id


async def update_contact(conn: AsyncConnection, *, account_id: int, data: ContactData) -> int | None:
    """Update the contact the data identifies; ``None`` (nothing written) when there is none."""
    if data.contact_id is not None:
        exists = await _exists(conn, account_id=account_id, contact_id=data.contact_id)
        contact_id = data.contact_id if exists else None
    else:
        contact_id = await find_contact_id(conn, account_id=account_id,
                                           identifiers=identifiers_of(data))
    if contact_id is None:
        return None
    await _apply(conn, account_id=account_id, contact_id=contact_id, data=data)
    return contact_id


async def get_contact(
    conn: AsyncConnection, *, account_id: int, contact_id: int
) -> ContactRecord | None:
    """The stored contact, or ``None`` when the account has no such contact."""
    records = await _load(conn, account_id=account_id, where=_c.c.id == contact_id)
    return records[0] if records else None


async def get_contacts(conn: AsyncConnection, *, account_id: int, contact_ids: Sequence[int]
                       ) -> list[ContactRecord]:
    """The account's contacts with these ids, by id (ids of none are left out)."""
    if not contact_ids:
        return []
    ids = sorted(set(contact_ids))
    return await _load(conn, account_id=account_id, where=_c.c.id.in_(ids), limit=len(ids))


async def find_contact_ids(
    conn: AsyncConnection, *, account_id: int, identifiers: Sequence[Identifiers]
) -> list[int | None]:
    """``find_contact_id`` for many sets of identifiers in one query, in their order."""
    owners = owners_index(await load_identities(conn, account_id=account_id,
                                                identifiers=identifiers))
    out: list[int | None] = []
    for ids in identifiers:
        found = find_owner(ids, owners)
        out.append(None if found is None else found[1].contact_id)
    return out


@dataclass(frozen=True, kw_only=True)
class ContactSearch:
    """Criteria of ``search_contacts``, each compared as stored after normalising
    (email ignoring case, phone as E.164; names exactly as stored); None is any."""

    email: str | None = None
    phone: str | None = None
    external_customer_id: str | None = None
    contact_key: str | None = None
    first_name: str | None = None
    last_name: str | None = None


async def search_contacts(
    conn: AsyncConnection,
    *,
    account_id: int,
    search: ContactSearch = ContactSearch(),
    offset: int = 0,
    limit: int = SEARCH_LIMIT,
) -> tuple[list[ContactRecord], int]:
    """A page of the contacts matching every given criterion, oldest first, and how
    many match in all."""
    where = _search_where(search)
    total = (await conn.execute(select(func.count()).select_from(_c).where(
        and_(_c.c.account_id == account_id, where)))).scalar_one()
    records = await _load(conn, account_id=account_id, where=where, limit=limit, offset=offset)
    return records, int(total)


def _search_where(search: ContactSearch) -> Any:
    conditions = []
    if search.email is not None:
        conditions.append(_c.c.email_key == email_key(search.email))
    for column, value in ((_c.c.phone, search.phone),
                          (_c.c.external_customer_id, search.external_customer_id),
                          (_c.c.contact_key, search.contact_key),
                          (_c.c.first_name, search.first_name),
                          (_c.c.last_name, search.last_name)):
        if value is not None:
            conditions.append(column == value)
    return and_(*conditions) if conditions else _c.c.id.is_not(None)


async def delete_contact(conn: AsyncConnection, *, account_id: int, contact_id: int,
                         remember: bool) -> None:
    """Delete the contact with its tokens and field values, or raise ``NotFound``; with
    ``remember``, leave its tombstone (``server.contacts.deleted``: a plain delete does,
    an erasure does not)."""
    if remember:
        row = (await conn.execute(select(*(_c.c[k] for k in DELETED_KEYS)).where(and_(
            _c.c.account_id == account_id, _c.c.id == contact_id)))).first()
        if row is not None:
            await remember_deleted(conn, account_id=account_id, contact_id=contact_id,
                                   keys=dict(row._mapping))
    # Explicit deletes rather than relying on ON DELETE CASCADE being enabled everywhere.
    await conn.execute(delete(_values).where(and_(_values.c.account_id == account_id,
                                                  _values.c.contact_id == contact_id)))
    await conn.execute(delete(_tokens).where(and_(_tokens.c.account_id == account_id,
                                                  _tokens.c.contact_id == contact_id)))
    result = await conn.execute(delete(_c).where(and_(_c.c.account_id == account_id,
                                                      _c.c.id == contact_id)))
    if result.rowcount == 0:
        raise NotFound(f"no contact with id {contact_id} in this account")


async def set_contact_status(
    conn: AsyncConnection, *, account_id: int, contact_id: int, status: str
) -> None:
    """Set "active", "unsubscribed" or "blacklisted"; ``NotFound`` for an unknown contact."""
    if status not in CONTACT_STATUSES:
        raise InvalidArgument.from_violations([Violation(
            "status", f"{status!r} is not a status; use one of {', '.join(CONTACT_STATUSES)}")])
    result = await conn.execute(update(_c).where(and_(_c.c.account_id == account_id,
                                                      _c.c.id == contact_id))
                                .values(status=status, updated_at=utcnow()))
    if result.rowcount == 0:
        raise NotFound(f"no contact with id {contact_id} in this account")


async def _exists(conn: AsyncConnection, *, account_id: int, contact_id: int) -> bool:
    query = select(_c.c.id).where(and_(_c.c.account_id == account_id, _c.c.id == contact_id))
    return (await conn.execute(query)).first() is not None


async def _create(
    conn: AsyncConnection, *, account_id: int, data: ContactData, source: str
) -> int | None:
    """Insert a new contact; ``None`` when a unique identifier is already taken."""
    contact_id = await _insert_row(conn, account_id=account_id, data=data, source=source)
    if contact_id is None:
        return None
    await write_field_values(conn, account_id=account_id, changes=[(contact_id, data)])
    if data.push_tokens:
        await write_push_tokens(conn, account_id=account_id, changes=[(contact_id, data)])
    return contact_id


async def _insert_row(
    conn: AsyncConnection, *, account_id: int, data: ContactData, source: str
) -> int | None:
    """The ``contacts`` row of a new contact; its id, or ``None`` if an identifier is taken."""
    now = utcnow()
    row = {**contact_columns(data, every=True), "account_id": account_id, "status": "active",
           "source": source, "created_at": now, "updated_at": now}
    contact_id = await insert_ignoring_conflicts(conn, table=_c, row=row, returning=_c.c.id)
    return None if contact_id is None else int(contact_id)


async def _apply(conn: AsyncConnection, *, account_id: int, contact_id: int, data: ContactData) -> None:
    """Write the present attributes of ``data`` onto the stored contact."""
    columns = contact_columns(data, every=False)
    owner = await conflicting_owner(conn, account_id=account_id, contact_id=contact_id,
                                    columns=columns)
    if owner is not None:
        column, other_id = owner
        raise Conflict(f"{column.replace('_key', '')} {columns[column]!r} belongs to contact "
                       f"{other_id}; a contact's identifiers are unique in an account")
    await conn.execute(update(_c).where(and_(_c.c.account_id == account_id, _c.c.id == contact_id))
                       .values(**columns, updated_at=utcnow()))
    await write_field_values(conn, account_id=account_id, changes=[(contact_id, data)])
    if "push_tokens" in data.present:
        await write_push_tokens(conn, account_id=account_id, changes=[(contact_id, data)])


async def _load(
    conn: AsyncConnection, *, account_id: int, where: Any, limit: int = 1, offset: int = 0
) -> list[ContactRecord]:
    rows = (await conn.execute(select(_c).where(and_(_c.c.account_id == account_id, where))
                               .order_by(_c.c.id).limit(limit).offset(offset))).all()
    if not rows:
        return []
    ids = [int(row.id) for row in rows]
    tokens: dict[int, list[str]] = {}
    for contact_id, token in (await conn.execute(
            select(_tokens.c.contact_id, _tokens.c.token)
            .where(_tokens.c.contact_id.in_(ids)).order_by(_tokens.c.id))).all():
        tokens.setdefault(int(contact_id), []).append(token)
    values: dict[int, dict[int, str]] = {}
    for contact_id, field_id, text in (await conn.execute(
            select(_values.c.contact_id, _values.c.field_id, _values.c.value)
            .where(_values.c.contact_id.in_(ids)))).all():
        values.setdefault(int(contact_id), {})[int(field_id)] = text
    return [record_from_row(row, push_tokens=tokens.get(int(row.id), ()),
                            field_values=values.get(int(row.id), {})) for row in rows]


def _lookup_column(kind: IdentifierKind) -> Any:
    if kind == "contact_id":
        return _c.c.id
    if kind == "email":
        return _c.c.email_key
    return _c.c[kind]


async def _create_identified(
    conn: AsyncConnection, *, account_id: int, identifiers: Identifiers, source: str
) -> int | None:
    """Insert a contact holding the identifiers; its id, or ``None`` when one was taken."""
    data = ContactData(email=identifiers.email, phone=identifiers.phone,
                       external_customer_id=identifiers.external_customer_id,
                       contact_key=identifiers.contact_key)
    contact_id = await _insert_row(conn, account_id=account_id, data=data, source=source)
    if contact_id is None:
        return None
    if identifiers.push_token is not None and not await _add_push_token(
            conn, account_id=account_id, contact_id=contact_id, token=identifiers.push_token):
        return None
    return contact_id


async def _attach(
    conn: AsyncConnection, *, account_id: int, contact_id: int,
    attach: Sequence[tuple[IdentifierKind, int | str]],
) -> bool:
    """Give the contact identifiers it lacks; False (nothing written) if any was taken, or
    the contact got a value of that kind, since the plan was made."""
    columns: dict[str, Any] = {}
    guards = [_c.c.account_id == account_id, _c.c.id == contact_id]
    tokens: list[str] = []
    for kind, value in attach:
        if kind == "push_token":
            tokens.append(str(value))
            continue
        column = _lookup_column(kind)
        key = email_key(str(value)) if kind == "email" else value
        columns[column.name] = key
        if kind == "email":
            columns["email"] = value
        holder = _c.alias("holder")
        guards += [column.is_(None), ~exists().where(and_(
            holder.c.account_id == account_id, holder.c[column.name] == key))]
    if columns:
        result = await conn.execute(update(_c).where(and_(*guards))
                                    .values(**columns, updated_at=utcnow()))
        if result.rowcount != 1:
            return False
    for token in tokens:
        if not await _add_push_token(conn, account_id=account_id, contact_id=contact_id,
                                     token=token):
            return False
    return True


async def _add_push_token(conn: AsyncConnection, *, account_id: int, contact_id: int,
                          token: str) -> bool:
    row = {"account_id": account_id, "contact_id": contact_id, "token": token}
    added = await insert_ignoring_conflicts(conn, table=_tokens, row=row, returning=_tokens.c.id)
    return added is not None
