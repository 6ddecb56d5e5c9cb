"""OrderService: orders in eSputnik's form, thin methods over ``server.orders``.

An order's members keep the order the caller sent them in: ``UpsertOrders`` reads each
order from the bytes received and the reads answer bytes (``api.ordered``), since a
parsed Struct keeps no order of its keys.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc

from eventflow.v1 import orders_pb2, orders_pb2_grpc
from server.api.emit import Emitter
from server.api.errors import current_account
from server.api.events import IngestDeps
from server.api.ordered import add_service
from server.codec import wire
from server.codec.received import Received
from server.codec.values import dt_to_ts, struct_bytes, struct_from_bytes
from server.errors import Conflict, InvalidArgument, NotFound, TooLarge, Violation
from server.orders.events import LONGEST_TYPE, order_event
from server.orders.model import ORDER_STATUSES, OrderData, OrderInvalid, parse_order
from server.orders.store import (
    Raced,
    StoredOrder,
    get_order,
    list_orders,
    settle_events,
    write_route_orders,
)

__all__ = ["MAX_ORDERS", "OrderService", "add_to_server"]

Ctx: TypeAlias = grpc.aio.ServicerContext[Any, Any]
MAX_ORDERS = 1000
PAGE = 500
# Optimistic batch writes retried this often against concurrent writers of the same orders.
RACE_TRIES = 5


def _order(stored: StoredOrder) -> bytes:
    """The serialized ``Order``, its document (field 4) written in the stored order."""
    out = orders_pb2.Order(external_order_id=stored.external_order_id, status=stored.status,
                           contact_id=stored.contact_id or 0)
    dt_to_ts(stored.created_at, out.created_at)
    dt_to_ts(stored.updated_at, out.updated_at)
    raw: bytes = out.SerializeToString()
    return raw + wire.messages(4, [struct_bytes(stored.document)])


def add_to_server(service: OrderService, server: grpc.aio.Server) -> None:
    add_service(service, server, orders_pb2.DESCRIPTOR.services_by_name["OrderService"],
                received=("UpsertOrders",), answers_bytes=("GetOrder", "ListOrders"))


class OrderService(orders_pb2_grpc.OrderServiceServicer):
    def __init__(self, deps: IngestDeps) -> None:
        self._d = deps
        self._emitter = Emitter(deps)

    async def _checked(self, received: Received[orders_pb2.UpsertOrdersRequest],
                       account_id: int) -> list[OrderData]:
        """Every order read and its event accepted in advance, or every violation."""
        request = received.message
        if not request.orders:
            raise InvalidArgument.from_violations([Violation(
                "orders", 'is required: send {"orders": [{"externalOrderId": ...}]}')])
        if len(request.orders) > MAX_ORDERS:
            raise InvalidArgument.from_violations([Violation(
                "orders", f"holds {len(request.orders)} orders; send at most {MAX_ORDERS}")])
        orders: list[OrderData] = []
        problems: list[Violation] = []
        for index, raw in enumerate(received.parts(1)):
            path = f"orders[{index}]"
            try:
                order = parse_order(struct_from_bytes(raw), path=path)
            except OrderInvalid as error:
                problems += error.violations
                continue
            try:
                # The longest type and revision bound the real event's size from above.
                await self._emitter.check(
                    order_event(order, event_type=LONGEST_TYPE, revision=10**12),
                    account_id=account_id)
            except InvalidArgument as error:
                problems += [Violation(f"{path} (its event).{v.field}", v.message)
                             for v in error.violations]
            except TooLarge as error:
                problems.append(Violation(path, error.message))
            orders.append(order)
        if problems:
            raise InvalidArgument.from_violations(problems)
        return orders

    async def UpsertOrders(self, received: Received[orders_pb2.UpsertOrdersRequest],
                           context: Ctx) -> orders_pb2.UpsertOrdersResponse:
        account_id = current_account.get()
        orders = await self._checked(received, account_id)
        for attempt in range(RACE_TRIES):
            try:
                async with self._d.engine.begin() as conn:
                    planned = await write_route_orders(conn, account_id=account_id,
                                                       orders=orders)
                break
            except Raced:
                if attempt == RACE_TRIES - 1:
                    raise Conflict("these orders kept being changed concurrently; retry the "
                                   "call") from None
        emitting = [p for p in planned if p.event_type is not None]
        ids = await self._emitter.emit([
            order_event(p.order, event_type=p.event_type, revision=p.revision)
            for p in emitting if p.event_type is not None], account_id=account_id)
        async with self._d.engine.begin() as conn:
            await settle_events(conn, done=list(zip(emitting, ids, strict=True)))
        event_ids = {p.row_id: (p.event_type, i) for p, i in zip(emitting, ids, strict=True)}
        out = orders_pb2.UpsertOrdersResponse()
        for p in planned:
            event_type, event_id = event_ids.get(p.row_id, ("", 0))
            out.results.add(external_order_id=p.order.external_order_id,
                            event_type_key=event_type or "", event_id=event_id)
        return out

    async def GetOrder(self, request: orders_pb2.GetOrderRequest, context: Ctx) -> bytes:
        """A serialized ``Order`` (``_order``)."""
        async with self._d.engine.connect() as conn:
            stored = await get_order(conn, account_id=current_account.get(),
                                     external_order_id=request.external_order_id)
        if stored is None:
            raise NotFound(f"no order with externalOrderId {request.external_order_id!r} "
                           "in this account")
        return _order(stored)

    async def ListOrders(self, request: orders_pb2.ListOrdersRequest, context: Ctx) -> bytes:
        """A serialized ``ListOrdersResponse`` of ``_order``s."""
        status = request.status.upper() or None
        if status is not None and status not in ORDER_STATUSES:
            raise InvalidArgument.from_violations([Violation(
                "status", f"must be one of {', '.join(ORDER_STATUSES)}")])
        if request.offset < 0 or request.limit < 0 or request.contact_id < 0:
            raise InvalidArgument.from_violations([Violation("offset", "must not be negative")])
        async with self._d.engine.connect() as conn:
            found, total = await list_orders(
                conn, account_id=current_account.get(),
                external_customer_id=request.external_customer_id or None,
                email=request.email or None, contact_id=request.contact_id or None,
                status=status, offset=request.offset, limit=min(request.limit or PAGE, PAGE))
        count = orders_pb2.ListOrdersResponse(total_count=total).SerializeToString()
        return wire.messages(1, [_order(o) for o in found]) + count
