"""Stored orders: the route's batch write, the order events' write, and reads.

The route's write is optimistic: rows are read, then inserted with ``ON CONFLICT DO
NOTHING`` or updated where their ``revision`` is still the one read. A concurrent writer
makes that fail (``Raced``) and the caller runs the transaction again, so no lock is held
across the batch on either dialect and no change is lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from server.contacts.sql import chunked
from server.contacts.validation import email_key
from server.db.dialect import on_conflict_insert
from server.db.models import as_utc, utcnow
from server.orders.events import STATUS_OF_EVENT, next_event
from server.orders.model import OrderData
from server.orders.tables import ORDERS

__all__ = [
    "Planned",
    "Raced",
    "StoredOrder",
    "erase_order_buyer",
    "get_order",
    "link_order_contact",
    "list_orders",
    "record_event_order",
    "settle_events",
    "write_route_orders",
]

_o = ORDERS


class Raced(Exception):
    """Another writer changed one of the batch's orders meanwhile; run the batch again."""


@dataclass(frozen=True, slots=True)
class StoredOrder:
    id: int
    external_order_id: str
    status: str
    contact_id: int | None
    document: dict[str, Any]
    revision: int
    pending_event: str | None
    last_event_id: int | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Planned:
    """An order the route wrote and the event it must emit for it (``None``: none)."""

    row_id: int
    revision: int
    event_type: str | None
    order: OrderData


def _stored(row: Any) -> StoredOrder:
    return StoredOrder(id=int(row.id), external_order_id=row.external_order_id,
                       status=row.status, contact_id=row.contact_id,
                       document=orjson.loads(row.document), revision=int(row.revision),
                       pending_event=row.pending_event,
                       last_event_id=None if row.last_event_id is None else int(row.last_event_id),
                       created_at=as_utc(row.created_at),
                       updated_at=as_utc(row.updated_at))


def _columns(order: OrderData, status: str) -> dict[str, Any]:
    return {"external_customer_id": order.external_customer_id, "status": status,
            "total_cost": None if order.total_cost is None else str(order.total_cost),
            "currency": order.currency, "ordered_at": order.ordered_at,
            "email": None if order.email is None else email_key(order.email),
            "phone": order.phone, "document": orjson.dumps(order.document).decode()}


async def _load(conn: AsyncConnection, account_id: int, external_ids: Sequence[str]
                ) -> dict[str, StoredOrder]:
    found: dict[str, StoredOrder] = {}
    for part in chunked(sorted(set(external_ids))):
        rows = await conn.execute(select(_o).where(and_(
            _o.c.account_id == account_id, _o.c.external_order_id.in_(part))))
        found.update({row.external_order_id: _stored(row) for row in rows})
    return found


async def write_route_orders(conn: AsyncConnection, *, account_id: int,
                             orders: Sequence[OrderData]) -> list[Planned]:
    """Write the batch in order (a repeated externalOrderId sees its earlier entry) and
    mark each order's event pending; raises ``Raced`` (see the module docstring)."""
    current = await _load(conn, account_id, [o.external_order_id for o in orders])
    planned: list[Planned] = []
    now = utcnow()
    for order in orders:
        status = order.status or "INITIALIZED"
        before = current.get(order.external_order_id)
        event_type = next_event(before_status=before.status if before else None,
                                before_document=before.document if before else None,
                                pending=before.pending_event if before else None,
                                order=order)
        if before is None:
            stmt = on_conflict_insert(conn, _o).values(
                account_id=account_id, external_order_id=order.external_order_id,
                revision=1, pending_event=event_type, created_at=now, updated_at=now,
                **_columns(order, status)).on_conflict_do_nothing().returning(_o.c.id)
            row_id = (await conn.execute(stmt)).scalar()
            if row_id is None:
                raise Raced(order.external_order_id)
            revision = 1
        elif before.document == order.document and before.status == status:
            row_id, revision = before.id, before.revision  # unchanged: nothing to write
        else:
            row_id, revision = before.id, before.revision + 1
            result = await conn.execute(update(_o).where(and_(
                _o.c.id == before.id, _o.c.revision == before.revision)).values(
                revision=revision, pending_event=event_type, updated_at=now,
                **_columns(order, status)))
            if result.rowcount != 1:
                raise Raced(order.external_order_id)
        current[order.external_order_id] = StoredOrder(
            id=int(row_id), external_order_id=order.external_order_id, status=status,
            contact_id=before.contact_id if before else None, document=order.document,
            revision=revision, pending_event=event_type,
            last_event_id=before.last_event_id if before else None,
            created_at=before.created_at if before else now, updated_at=now)
        planned.append(Planned(row_id=int(row_id), revision=revision, event_type=event_type,
                               order=order))
    return planned


async def settle_events(conn: AsyncConnection, *, done: Sequence[tuple[Planned, int]]) -> None:
    """The emitted events are committed: clear each order's pending mark (unless the order
    changed again meanwhile) and note its newest event."""
    for plan, event_id in done:
        await conn.execute(update(_o).where(and_(_o.c.id == plan.row_id,
                                                 _o.c.revision == plan.revision))
                           .values(pending_event=None, last_event_id=event_id))


async def record_event_order(conn: AsyncConnection, *, account_id: int, event_id: int,
                             event_type: str, contact_id: int | None,
                             order: OrderData) -> bool:
    """Store the order an order event carries, unless a newer event already did; the
    status comes from the params, else from the event type. True when written."""
    existing = (await _load(conn, account_id, [order.external_order_id])).get(
        order.external_order_id)
    if existing is not None and existing.last_event_id is not None \
            and existing.last_event_id >= event_id:
        return False
    status = order.status or STATUS_OF_EVENT[event_type]
    now = utcnow()
    values = {**_columns(order, status), "last_event_id": event_id, "updated_at": now}
    if contact_id is not None:
        values["contact_id"] = contact_id
    if existing is None:
        stmt = on_conflict_insert(conn, _o).values(
            account_id=account_id, external_order_id=order.external_order_id, revision=1,
            created_at=now, **values)
        await conn.execute(stmt.on_conflict_do_update(
            index_elements=[_o.c.account_id, _o.c.external_order_id],
            set_={**values, "revision": _o.c.revision + 1}))
    else:
        await conn.execute(update(_o).where(_o.c.id == existing.id)
                           .values(revision=_o.c.revision + 1, **values))
    return True


async def link_order_contact(conn: AsyncConnection, *, account_id: int,
                             external_order_id: str, contact_id: int) -> None:
    """The event of a route-written order found its contact: the order belongs to it."""
    await conn.execute(update(_o).where(and_(
        _o.c.account_id == account_id, _o.c.external_order_id == external_order_id))
        .values(contact_id=contact_id))


async def get_order(conn: AsyncConnection, *, account_id: int, external_order_id: str
                    ) -> StoredOrder | None:
    return (await _load(conn, account_id, [external_order_id])).get(external_order_id)


async def list_orders(conn: AsyncConnection, *, account_id: int,
                      external_customer_id: str | None = None, email: str | None = None,
                      contact_id: int | None = None, status: str | None = None,
                      offset: int = 0, limit: int = 500) -> tuple[list[StoredOrder], int]:
    """Orders matching every given criterion, newest first, and how many match in all."""
    where = [_o.c.account_id == account_id]
    if external_customer_id is not None:
        where.append(_o.c.external_customer_id == external_customer_id)
    if email is not None:
        where.append(_o.c.email == email_key(email))
    if contact_id is not None:
        where.append(_o.c.contact_id == contact_id)
    if status is not None:
        where.append(_o.c.status == status)
    total = (await conn.execute(select(func.count()).select_from(_o).where(and_(*where)))
             ).scalar_one()
    rows = await conn.execute(select(_o).where(and_(*where)).order_by(_o.c.id.desc())
                              .offset(offset).limit(limit))
    return [_stored(row) for row in rows], int(total)


# Members of an order that identify or describe its buyer; erasure removes them.
PERSONAL_MEMBERS = ("externalCustomerId", "email", "phone", "firstName", "lastName",
                    "deliveryAddress", "additionalInfo")


async def erase_order_buyer(conn: AsyncConnection, *, account_id: int, contact_id: int,
                            email: str | None, external_customer_id: str | None) -> None:
    """The buyer's details leave the contact's orders (amounts and items stay), and the
    orders belong to nobody."""
    mine = [_o.c.contact_id == contact_id]
    if email is not None:
        mine.append(_o.c.email == email_key(email))
    if external_customer_id is not None:
        mine.append(_o.c.external_customer_id == external_customer_id)
    rows = await conn.execute(select(_o.c.id, _o.c.document).where(
        and_(_o.c.account_id == account_id, or_(*mine))))
    for row in rows.all():
        document = {k: v for k, v in orjson.loads(row.document).items()
                    if k not in PERSONAL_MEMBERS}
        await conn.execute(update(_o).where(_o.c.id == row.id).values(
            contact_id=None, email=None, phone=None, external_customer_id=None,
            document=orjson.dumps(document).decode(), updated_at=utcnow()))
