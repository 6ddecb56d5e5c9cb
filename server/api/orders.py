"""OrderService: orders in eSputnik's form, thin methods over ``server.orders``."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc
from google.protobuf import struct_pb2

from eventflow.v1 import orders_pb2, orders_pb2_grpc
from server.api.emit import Emitter
from server.api.errors import current_account
from server.api.events import IngestDeps
from server.codec.values import dt_to_ts, value_to_py
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

__all__ = ["MAX_ORDERS", "OrderService"]

Ctx: TypeAlias = grpc.aio.ServicerContext[Any, Any]
MAX_ORDERS = 1000
PAGE = 500
# Optimistic batch writes retried this often against concurrent writers of the same orders.
RACE_TRIES = 5


def _order(stored: StoredOrder) -> orders_pb2.Order:
    out = orders_pb2.Order(external_order_id=stored.external_order_id, status=stored.status,
                           contact_id=stored.contact_id or 0)
    out.document.update(stored.document)
    dt_to_ts(stored.created_at, out.created_at)
    dt_to_ts(stored.updated_at, out.updated_at)
    return out


def _dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    return {key: value_to_py(value) for key, value in struct.fields.items()}


class OrderService(orders_pb2_grpc.OrderServiceServicer):
    def __init__(self, deps: IngestDeps) -> None:
        self._d = deps
        self._emitter = Emitter(deps)

    async def _checked(self, request: orders_pb2.UpsertOrdersRequest, account_id: int
                 ) -> list[OrderData]:
        """Every order read and its event accepted in advance, or every violation."""
        if not request.orders:
            raise InvalidArgument.from_violations([Violation(
                "orders", 'is required: send {"orders": [{"externalOrderId": ...}]}')])
        if len(request.orders) > MAX_ORDERS:
            raise InvalidArgument.from_violations([Violation(
                "orders", f"holds {len(request.orders)} orders; send at most {MAX_ORDERS}")])
        orders: list[OrderData] = []
        problems: list[Violation] = []
        for index, struct in enumerate(request.orders):
            path = f"orders[{index}]"
            try:
                order = parse_order(_dict(struct), path=path)
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

    async def UpsertOrders(self, request: orders_pb2.UpsertOrdersRequest, context: Ctx
                           ) -> orders_pb2.UpsertOrdersResponse:
        account_id = current_account.get()
        orders = await self._checked(request, account_id)
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

    async def GetOrder(self, request: orders_pb2.GetOrderRequest, context: Ctx
                       ) -> orders_pb2.Order:
        async with self._d.engine.connect() as conn:
            stored = await get_order(conn, account_id=current_account.get(),
                                     external_order_id=request.external_order_id)
        if stored is None:
            raise NotFound(f"no order with externalOrderId {request.external_order_id!r} "
                           "in this account")
        return _order(stored)

    async def ListOrders(self, request: orders_pb2.ListOrdersRequest, context: Ctx
                         ) -> orders_pb2.ListOrdersResponse:
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
        return orders_pb2.ListOrdersResponse(orders=[_order(o) for o in found],
                                             total_count=total)
