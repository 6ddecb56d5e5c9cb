"""Bulk create-or-update of up to 3,000 contacts in a few statements (SQLAlchemy Core).

Contacts are matched on one identifier, ``dedupe_on``; entries of the batch with the same
key are merged in order. A contact that cannot be written (no key, an identifier another
contact holds, an unknown id) is reported and skipped; the others are written. Steps: one
look-up of the keys, one of the other unique identifiers, one multi-row insert, one
multi-row update per shape of change, then field values and push tokens in batches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from server.contacts.definitions import FieldDefinition
from server.contacts.deleted import DELETED, Tombstone, forget_deleted, tombstones
from server.contacts.model import CHANNEL_ATTRIBUTES, ContactData
from server.contacts.record import check_required_fields, contact_columns
from server.contacts.sql import UNIQUE_COLUMNS, chunked, write_field_values, write_push_tokens
from server.contacts.tables import CONTACTS
from server.contacts.validation import email_key
from server.db.models import utcnow
from server.errors import ContactValidationError, InvalidArgument, Violation

__all__ = [
    "CONTACT_FIELDS",
    "DEDUPE_ON",
    "MAX_BULK",
    "MAX_BULK_BYTES",
    "MAX_CONTACT_BYTES",
    "BulkRaced",
    "BulkResult",
    "UpdateOnly",
    "bulk_size_problem",
    "bulk_upsert",
    "contact_size_problem",
    "dedupe_column",
    "dedupe_columns",
]

MAX_BULK: Final = 3000
# Size bounds, checked before a contact is converted or validated, so the work a request
# can cause is bounded by its size: one contact's body (JSON over HTTP, serialized Struct
# over gRPC) and a whole bulk body. The bench's contacts are ~260 bytes; 4 MiB is 3,000
# contacts of 1.4 KB on average.
MAX_CONTACT_BYTES: Final = 64 * 1024
MAX_BULK_BYTES: Final = 4 * 1024 * 1024
# dedupeOn spellings (compared lower-cased) -> contacts column.
DEDUPE_ON: Final[Mapping[str, str]] = {
    "email": "email_key",
    "sms": "phone",
    "phone": "phone",
    "externalcustomerid": "external_customer_id",
    "contactkey": "contact_key",
    "id": "id",
}
# dedupeOn values matching on the first of several identifiers an entry has: email_or_sms
# finds by email, else (no email, or none found by it) by phone.
DEDUPE_EITHER: Final[Mapping[str, tuple[str, ...]]] = {"email_or_sms": ("email_key", "phone")}
# eSputnik's contactFields names (compared lower-cased) -> ContactData attributes.
CONTACT_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "firstname": ("first_name",),
    "lastname": ("last_name",),
    "email": ("email",),
    "sms": ("phone",),
    "phone": ("phone",),
    "mobilepush": ("push_tokens",),
    "channels": CHANNEL_ATTRIBUTES,
    "externalcustomerid": ("external_customer_id",),
    "contactkey": ("contact_key",),
    "languagecode": ("language_code",),
    "timezone": ("time_zone",),
    "address": ("address.address",),
    "town": ("address.town",),
    "region": ("address.region",),
    "postcode": ("address.postcode",),
    "confirmed": ("confirmed",),
}
_c = CONTACTS


class BulkRaced(Exception):
    """Another call created one of the bulk's new contacts while it was being written: the
    caller rolls back and tries the bulk again, which then finds and updates it."""


@dataclass(frozen=True, kw_only=True)
class UpdateOnly:
    """What a bulk may change in contacts that exist: these attributes and additional
    fields (None: every one given). eSputnik's ``contactFields`` / ``customFieldsIDs``."""

    attributes: frozenset[str] | None = None
    field_ids: frozenset[int] | None = None

    @classmethod
    def parse(cls, *, contact_fields: Sequence[str] | None,
              custom_field_ids: Sequence[int] | None) -> UpdateOnly:
        """From the request's lists (None: not given); unknown names are violations."""
        attributes: set[str] | None = None
        if contact_fields is not None:
            attributes = set()
            problems = []
            for index, name in enumerate(contact_fields):
                found = CONTACT_FIELDS.get(name.strip().lower())
                if found is None:
                    problems.append(Violation(f"contactFields[{index}]", (
                        f"{name!r} is not a contact field; it takes firstName, lastName, email, "
                        "sms, mobilepush, channels, externalCustomerId, contactKey, "
                        "languageCode, timeZone, address, town, region, postcode, confirmed")))
                else:
                    attributes.update(found)
            if problems:
                raise InvalidArgument.from_violations(problems)
        return cls(attributes=None if attributes is None else frozenset(attributes),
                   field_ids=None if custom_field_ids is None else frozenset(custom_field_ids))


@dataclass(frozen=True, kw_only=True)
class BulkResult:
    """What happened to entry ``index``: CREATED, UPDATED, INVALID, CONFLICT, NOT_FOUND or
    DELETED (it names a deleted contact and the import does not restore it)."""

    index: int
    status: str
    contact_id: int | None = None
    errors: tuple[str, ...] = ()


@dataclass(kw_only=True, eq=False)
class _Group:
    key: Any
    data: ContactData
    # The contacts column ``key`` is a value of.
    column: str
    indexes: list[int] = field(default_factory=list)
    target: int | None = None
    columns: dict[str, Any] = field(default_factory=dict)
    changed: dict[str, Any] = field(default_factory=dict)
    created: bool = False
    # The old id of a deleted contact this entry restores.
    restored_id: int | None = None


def bulk_size_problem(count: int) -> str | None:
    """Why a bulk of ``count`` contacts is refused whole, or None."""
    if count > MAX_BULK:
        return f"holds {count} contacts; send at most {MAX_BULK} per call"
    return None


def contact_size_problem(size: int) -> str | None:
    """Why a contact body of ``size`` bytes is refused, or None."""
    if size > MAX_CONTACT_BYTES:
        return f"is {size} bytes; a contact may take at most {MAX_CONTACT_BYTES}"
    return None


def dedupe_column(dedupe_on: str) -> str | None:
    """The contacts column a ``dedupeOn`` value names, or ``None`` if it names none."""
    return DEDUPE_ON.get(dedupe_on.strip().lower())


def dedupe_columns(dedupe_on: str) -> tuple[str, ...] | None:
    """The contacts columns a bulk's ``dedupeOn`` matches on, in order, or ``None``."""
    either = DEDUPE_EITHER.get(dedupe_on.strip().lower())
    if either is not None:
        return either
    column = dedupe_column(dedupe_on)
    return None if column is None else (column,)


async def bulk_upsert(
    conn: AsyncConnection,
    *,
    account_id: int,
    items: Sequence[tuple[int, ContactData]],
    dedupe_on: str,
    fields: Mapping[int, FieldDefinition],
    source: str = "bulk",
    update_only: UpdateOnly = UpdateOnly(),
    restore_deleted: bool = False,
) -> list[BulkResult]:
    """Write ``(index, contact)`` pairs matched on ``dedupe_on``; one result per index.
    Contacts that exist change only as ``update_only`` allows. A key that names no live
    contact but a deleted one is ``DELETED`` (not written) unless ``restore_deleted``."""
    columns = dedupe_columns(dedupe_on)
    assert columns is not None, "check dedupe_on with dedupe_columns first"
    results: list[BulkResult] = []
    groups = _group(items, columns=columns, results=results)
    await _find_targets(conn, account_id=account_id, groups=groups)
    for later in columns[1:]:  # email_or_sms: by phone where the email found nobody
        await _find_targets(conn, account_id=account_id, by=later,
                            groups=[g for g in groups if g.target is None])
    groups = await _skip_deleted(conn, account_id=account_id, groups=groups,
                                 restore=restore_deleted, results=results)
    if update_only != UpdateOnly():
        for group in groups:
            if group.target is not None:
                group.data = group.data.only(attributes=update_only.attributes,
                                             field_ids=update_only.field_ids)
                group.changed = contact_columns(group.data, every=False)
    if columns == ("id",):
        for group in groups:
            if group.target is None:
                _fail(results, group, "NOT_FOUND", f"no contact with id {group.key} in this account")
        groups = [group for group in groups if group.target is not None]
    live = await _check_unique(conn, account_id=account_id, groups=groups, results=results)
    live = _with_required_fields(live, fields=fields, results=results)
    new = [g for g in live if g.target is None]
    await _insert(conn, account_id=account_id, groups=new, source=source)
    await _update(conn, account_id=account_id, groups=[g for g in live if not g.created])
    changes = [(g.target, g.data) for g in live if g.target is not None]
    await write_field_values(conn, account_id=account_id, changes=changes)
    await write_push_tokens(conn, account_id=account_id, changes=[
        (g.target, g.data) for g in live
        if g.target is not None and ("push_tokens" in g.data.present or g.data.push_tokens)])
    for group in live:
        status = "CREATED" if group.created else "UPDATED"
        results += [BulkResult(index=i, status=status, contact_id=group.target)
                    for i in group.indexes]
    return sorted(results, key=lambda result: result.index)


async def _skip_deleted(
    conn: AsyncConnection, *, account_id: int, groups: list[_Group], restore: bool,
    results: list[BulkResult],
) -> list[_Group]:
    """The groups to write: those naming a deleted contact are reported ``DELETED`` and
    dropped, or (restoring) kept and their tombstones forgotten."""
    new = [g for g in groups if g.target is None]
    found: dict[tuple[str, Any], Tombstone] = {}
    for column in sorted({g.column for g in new}):
        stones = await tombstones(conn, account_id=account_id, column=column,
                                  keys=[g.key for g in new if g.column == column])
        found.update({(column, key): stone for key, stone in stones.items()})
    if not found:
        return groups
    if restore:
        # A restored contact comes back under its old id, as eSputnik restores it, when
        # that id is still free (SQLite may give a deleted highest id to a new contact).
        old_ids = sorted({gone.contact_id for gone in found.values()})
        taken: set[int] = set()
        for part in chunked(old_ids):
            taken.update(int(i) for i in (await conn.execute(
                select(_c.c.id).where(_c.c.id.in_(part)))).scalars())
        claimed: set[int] = set()
        for group in new:
            gone = found.get((group.column, group.key))
            if gone is not None and gone.contact_id not in taken | claimed:
                group.restored_id = gone.contact_id
                claimed.add(gone.contact_id)
        await forget_deleted(conn, account_id=account_id, keys=list(found))
        return groups
    kept = []
    for group in groups:
        gone = found.get((group.column, group.key)) if group.target is None else None
        if gone is None:
            kept.append(group)
            continue
        name = "email" if group.column == "email_key" else group.column
        _fail(results, group, DELETED, (
            f"the contact with this {name} (id {gone.contact_id}) was deleted on "
            f"{gone.deleted_at:%Y-%m-%d}; import it with restoreDeleted: true to bring it back"))
    return kept


def _group(
    items: Sequence[tuple[int, ContactData]], *, columns: tuple[str, ...],
    results: list[BulkResult],
) -> list[_Group]:
    groups: dict[tuple[str, Any], _Group] = {}
    for index, data in items:
        column, key = next(((c, _key(data, c)) for c in columns if _key(data, c) is not None),
                           (columns[0], None))
        if key is None:
            name = " or ".join("sms" if c == "phone" and len(columns) > 1 else
                               c.removesuffix("_key") for c in columns)
            results.append(BulkResult(index=index, status="INVALID", errors=(
                f"has no {name} to deduplicate on; give one or choose another dedupeOn",)))
            continue
        if (column, key) in groups:
            group = groups[(column, key)]
            group.data = data.apply_to(group.data)
            group.indexes.append(index)
        else:
            groups[(column, key)] = _Group(key=key, column=column, data=data, indexes=[index])
    for group in groups.values():
        group.columns = contact_columns(group.data, every=True)
        group.changed = contact_columns(group.data, every=False)
    return list(groups.values())


async def _find_targets(
    conn: AsyncConnection, *, account_id: int, groups: list[_Group], by: str | None = None
) -> None:
    """Each group's contact, by its own key (or by its ``by`` column's value)."""
    by_column: dict[str, dict[Any, _Group]] = {}
    for group in groups:
        key = group.key if by is None else group.columns.get(by)
        if key is not None:
            by_column.setdefault(by or group.column, {})[key] = group
    for column, by_key in by_column.items():
        key_column = _c.c[column]
        for part in chunked(list(by_key)):
            rows = await conn.execute(select(_c.c.id, key_column).where(
                and_(_c.c.account_id == account_id, key_column.in_(part))))
            for contact_id, key in rows.all():
                by_key[key].target = int(contact_id)


async def _check_unique(
    conn: AsyncConnection, *, account_id: int, groups: list[_Group], results: list[BulkResult]
) -> list[_Group]:
    """Groups whose unique identifiers no other contact (stored or in the batch) holds."""
    owners: dict[tuple[str, Any], int] = {}
    for name in UNIQUE_COLUMNS:
        values = sorted({g.columns[name] for g in groups if g.columns.get(name) is not None})
        for part in chunked(values):
            rows = await conn.execute(select(_c.c.id, _c.c[name]).where(
                and_(_c.c.account_id == account_id, _c.c[name].in_(part))))
            owners.update({(name, value): int(owner) for owner, value in rows.all()})
    claimed: dict[tuple[str, Any], Any] = {}
    live: list[_Group] = []
    for group in groups:
        problems = []
        for name in UNIQUE_COLUMNS:
            value = group.columns.get(name)
            if value is None or (name not in group.changed and group.target is not None):
                continue
            owner = owners.get((name, value))
            if owner is not None and group.target is None and name == group.column:
                # Its own key names a contact that the lookup a moment ago did not find:
                # another call created it since (PostgreSQL reads what committed meanwhile).
                raise BulkRaced(f"contact {owner} was created by another call meanwhile")
            if owner is not None and owner != group.target:
                problems.append(f"{name.removesuffix('_key')} {value!r} belongs to contact {owner}")
            elif claimed.setdefault((name, value), group.key) != group.key:
                problems.append(f"{name.removesuffix('_key')} {value!r} is given to another "
                                "contact earlier in this batch")
        if problems:
            _fail(results, group, "CONFLICT", *problems)
        else:
            live.append(group)
    return live


async def _insert(
    conn: AsyncConnection, *, account_id: int, groups: list[_Group], source: str
) -> None:
    """A plain executemany INSERT (cheaper than RETURNING rows), then the new ids by key."""
    if not groups:
        return
    now = utcnow()
    rows = [{**g.columns, "account_id": account_id, "status": "active", "source": source,
             "created_at": now, "updated_at": now} for g in groups if g.restored_id is None]
    restored = [{**g.columns, "id": g.restored_id, "account_id": account_id, "status": "active",
                 "source": source, "created_at": now, "updated_at": now}
                for g in groups if g.restored_id is not None]
    # In slices: the statement's parameters are processed on the event loop, which other
    # callers share, so one slice at a time holds it. One statement per shape of row.
    for shape in (rows, restored):
        for part in chunked(shape):
            await conn.execute(insert(_c), list(part))
    await _find_targets(conn, account_id=account_id, groups=groups)
    for group in groups:
        group.created = True


async def _update(conn: AsyncConnection, *, account_id: int, groups: list[_Group]) -> None:
    """One executemany UPDATE per set of changed columns (a batch usually has one shape)."""
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    now = utcnow()
    for group in groups:
        shape = tuple(sorted(group.changed))
        shapes.setdefault(shape, []).append(
            {"p_id": group.target, **{f"p_{name}": value for name, value in group.changed.items()}})
    for shape, params in shapes.items():
        stmt = (update(_c).where(and_(_c.c.account_id == account_id,
                                      _c.c.id == bindparam("p_id")))
                .values(updated_at=now, **{name: bindparam(f"p_{name}") for name in shape}))
        for part in chunked(params):  # in slices, as in _insert
            await conn.execute(stmt, list(part))


def _key(data: ContactData, column: str) -> Any:
    if column == "id":
        return data.contact_id
    if column == "email_key":
        return None if data.email is None else email_key(data.email)
    return getattr(data, column)


def _with_required_fields(
    groups: list[_Group], *, fields: Mapping[int, FieldDefinition], results: list[BulkResult]
) -> list[_Group]:
    """Drop (and report) new contacts that lack a required field."""
    kept: list[_Group] = []
    for group in groups:
        try:
            if group.target is None:
                check_required_fields(group.data, fields=fields)
        except ContactValidationError as exc:
            _fail(results, group, "INVALID", *map(str, exc.violations))
            continue
        kept.append(group)
    return kept


def _fail(results: list[BulkResult], group: _Group, status: str, *errors: str) -> None:
    results += [BulkResult(index=i, status=status, contact_id=group.target, errors=errors)
                for i in group.indexes]


