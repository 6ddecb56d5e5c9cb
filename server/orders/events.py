"""Which order event a change calls for, and the event itself.

A new order is ``orderCreated``; a changed one is ``orderDelivered`` or ``orderCancelled``
when its status just became DELIVERED or CANCELLED, else ``orderUpdated``; an order sent
again unchanged emits nothing (a retried call does not start workflows twice), unless its
earlier event is still pending. The event's params are the order's members; its key is
the customer's external id, email or phone; its message id names the order's revision.
"""

from __future__ import annotations

import hashlib
from typing import Final

from server.ingest.model import EventInput
from server.ingest.validation import FORBIDDEN, MAX_KEY_VALUE
from server.orders.model import OrderData

__all__ = [
    "CANCELLED",
    "CREATED",
    "DELIVERED",
    "LONGEST_TYPE",
    "MESSAGE_PREFIX",
    "ORDER_EVENT_TYPES",
    "STATUS_OF_EVENT",
    "UPDATED",
    "next_event",
    "order_event",
]

CREATED: Final = "orderCreated"
UPDATED: Final = "orderUpdated"
DELIVERED: Final = "orderDelivered"
CANCELLED: Final = "orderCancelled"
ORDER_EVENT_TYPES: Final = frozenset({CREATED, UPDATED, DELIVERED, CANCELLED})
LONGEST_TYPE: Final = max(ORDER_EVENT_TYPES, key=len)
# The status an order event implies when its params carry none.
STATUS_OF_EVENT: Final = {CREATED: "INITIALIZED", UPDATED: "IN_PROGRESS",
                          DELIVERED: "DELIVERED", CANCELLED: "CANCELLED"}
# Message ids of the events the server emits for orders; a client's never start so.
MESSAGE_PREFIX: Final = "eventflow-order:"


def next_event(*, before_status: str | None, before_document: dict[str, object] | None,
               pending: str | None, order: OrderData) -> str | None:
    """The event type for ``order`` given the stored state (``None`` documents: new)."""
    if before_document is None:
        return CREATED
    if before_document == order.document:
        return pending
    if pending == CREATED:
        return CREATED
    if order.status != before_status and order.status == "DELIVERED":
        return DELIVERED
    if order.status != before_status and order.status == "CANCELLED":
        return CANCELLED
    return UPDATED


def _key(order: OrderData) -> str:
    for value in (order.external_customer_id, order.email, order.phone):
        if value and len(value) <= MAX_KEY_VALUE and not FORBIDDEN.intersection(value):
            return value
    return ""  # the pipeline then refuses the event, naming keyValue


def order_event(order: OrderData, *, event_type: str, revision: int) -> EventInput:
    digest = hashlib.sha256(order.external_order_id.encode()).hexdigest()[:24]
    return EventInput(event_type_key=event_type, key_value=_key(order),
                      params=list(order.document.items()),
                      message_id=f"{MESSAGE_PREFIX}{digest}:{revision}")
