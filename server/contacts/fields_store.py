"""Stored additional field definitions of an account: create, read, replace, delete.

Ids are per account. A definition sent without an id gets the next free one, starting at
10001 as in eSputnik. Deleting a definition deletes every contact's value of it.
"""

from __future__ import annotations

from decimal import Decimal

import orjson
from sqlalchemy import ColumnElement, and_, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from server.contacts.definitions import FieldDefinition, parse_field_type
from server.contacts.tables import FIELD_VALUES, FIELDS
from server.db.models import id_is, utcnow
from server.errors import Conflict, NotFound

__all__ = [
    "FIRST_FIELD_ID",
    "create_field",
    "delete_field",
    "get_field",
    "load_field_definitions",
    "replace_field",
]

FIRST_FIELD_ID = 10001
_f = FIELDS
_v = FIELD_VALUES


async def load_field_definitions(
    conn: AsyncConnection, *, account_id: int
) -> dict[int, FieldDefinition]:
    """Every field definition of the account, by id."""
    rows = (await conn.execute(select(_f).where(_f.c.account_id == account_id)
                               .order_by(_f.c.field_id))).all()
    return {int(row.field_id): _definition(row) for row in rows}


async def get_field(conn: AsyncConnection, *, account_id: int, field_id: int) -> FieldDefinition:
    """One definition, or ``NotFound``."""
    row = (await conn.execute(select(_f).where(_key(account_id, field_id)))).first()
    if row is None:
        raise NotFound(f"no additional field with id {field_id} in this account")
    return _definition(row)


async def create_field(
    conn: AsyncConnection, *, account_id: int, definition: FieldDefinition
) -> FieldDefinition:
    """Store a new definition; a given id must be free (else ``Conflict``)."""
    field_id = definition.id
    if field_id is None:
        highest = (await conn.execute(select(func.max(_f.c.field_id))
                                      .where(_f.c.account_id == account_id))).scalar()
        field_id = max(FIRST_FIELD_ID, int(highest or 0) + 1)
    elif (await conn.execute(select(_f.c.field_id).where(_key(account_id, field_id)))).first():
        raise Conflict(f"additional field {field_id} already exists; PUT /api/v1/fields/"
                       f"{field_id} to change it")
    stored = _with_id(definition, field_id)
    await conn.execute(insert(_f).values(account_id=account_id, field_id=field_id,
                                         created_at=utcnow(), **_columns(stored)))
    return stored


async def replace_field(
    conn: AsyncConnection, *, account_id: int, field_id: int, definition: FieldDefinition
) -> FieldDefinition:
    """Replace a definition. Stored values are kept; they were valid when written."""
    stored = _with_id(definition, field_id)
    result = await conn.execute(update(_f).where(_key(account_id, field_id))
                                .values(**_columns(stored)))
    if result.rowcount == 0:
        raise NotFound(f"no additional field with id {field_id} in this account")
    return stored


async def delete_field(conn: AsyncConnection, *, account_id: int, field_id: int) -> None:
    """Delete a definition and every contact's value of it."""
    result = await conn.execute(delete(_f).where(_key(account_id, field_id)))
    if result.rowcount == 0:
        raise NotFound(f"no additional field with id {field_id} in this account")
    await conn.execute(delete(_v).where(and_(_v.c.account_id == account_id,
                                             _v.c.field_id == field_id)))


def _key(account_id: int, field_id: int) -> ColumnElement[bool]:
    return and_(_f.c.account_id == account_id, id_is(_f.c.field_id, field_id))


def _with_id(definition: FieldDefinition, field_id: int) -> FieldDefinition:
    return FieldDefinition(id=field_id, name=definition.name, type=definition.type,
                           allowed_values=definition.allowed_values, min=definition.min,
                           max=definition.max, required=definition.required)


def _columns(definition: FieldDefinition) -> dict[str, object]:
    return {
        "name": definition.name,
        "type": definition.type,
        "allowed_values": orjson.dumps(list(definition.allowed_values)).decode(),
        "min_value": None if definition.min is None else str(definition.min),
        "max_value": None if definition.max is None else str(definition.max),
        "required": definition.required,
    }


def _definition(row: object) -> FieldDefinition:
    r = row
    return FieldDefinition(
        id=int(r.field_id),  # type: ignore[attr-defined]
        name=r.name,  # type: ignore[attr-defined]
        type=parse_field_type(r.type),  # type: ignore[attr-defined]
        allowed_values=tuple(orjson.loads(r.allowed_values)),  # type: ignore[attr-defined]
        min=None if r.min_value is None else Decimal(r.min_value),  # type: ignore[attr-defined]
        max=None if r.max_value is None else Decimal(r.max_value),  # type: ignore[attr-defined]
        required=bool(r.required),  # type: ignore[attr-defined]
    )
