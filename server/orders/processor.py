"""The worker's processor for order events: an order that arrives as an event is stored.

It runs after the contact linking, so the order belongs to the event's contact. Events the
server emitted for route-written orders (their message id says so) only link the contact:
the route already stored their data. Params that do not make an order leave the event as
it is (workflows still see it) and are logged with the reason.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from server.db.models import Event, table_of
from server.orders.events import MESSAGE_PREFIX, ORDER_EVENT_TYPES
from server.orders.model import OrderInvalid, parse_order
from server.orders.store import link_order_contact, record_event_order

__all__ = ["record_order_event"]

log = logging.getLogger(__name__)
_events = table_of(Event)


async def record_order_event(conn: AsyncConnection, event: Any, ctx: dict[str, Any]) -> None:
    """A ``Processor`` of ``workers.events`` (event: a ``DispatchedEvent``)."""
    if event.event_type_key not in ORDER_EVENT_TYPES or event.past:
        # A past event is history for segments; orders are imported by POST /api/v1/orders.
        return
    row = (await conn.execute(select(_events.c.message_id, _events.c.contact_id)
                              .where(_events.c.id == event.id))).one()
    contact_id = None if row.contact_id is None else int(row.contact_id)
    try:
        order = parse_order(dict(event.params), path="params", complete=False)
    except OrderInvalid as error:
        log.warning("event %s (%s) carries no order: %s", event.id, event.event_type_key, error)
        return
    if (row.message_id or "").startswith(MESSAGE_PREFIX):
        if contact_id is not None:
            await link_order_contact(conn, account_id=event.account_id,
                                     external_order_id=order.external_order_id,
                                     contact_id=contact_id)
        return
    await record_event_order(conn, account_id=event.account_id, event_id=event.id,
                             event_type=event.event_type_key, contact_id=contact_id,
                             order=order)
