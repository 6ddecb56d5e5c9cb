"""Order routes: eSputnik's ``POST /api/v1/orders`` (an empty 200, as eSputnik answers), and
our reads ``GET /api/v1/orders`` (paged, ``TotalCount`` header) and
``GET /api/v1/orders/{externalOrderId}``.

Orders travel to and from the server as wire bytes written and read here, so that their
members keep the caller's order (a parsed Struct keeps none: ``codec.wirejson``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventflow.v1 import orders_pb2
from server.codec import wire
from server.codec.values import struct_bytes, struct_from_bytes
from server.codec.wirejson import payloads
from server.errors import InvalidArgument, Violation
from server.gateway.http import auth_metadata, endpoint, json_response, query_number, read_json
from server.gateway.params import only_members, only_query, page_of
from server.gateway.state import GatewayState

# Plugins send 300 orders a call, far below; the request made of it must fit the server's
# gRPC limit (server.codec.received.MAX_MESSAGE_BYTES), a larger one is a 413.
MAX_ORDERS_BODY = 4 * 1024 * 1024
LIST_QUERY = ("externalCustomerId", "email", "contactId", "status", "startindex", "maxrows")


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds") + "Z"


def order_json(raw: bytes) -> dict[str, Any]:
    """A serialized ``Order`` as JSON, its document read from the bytes in their order."""
    order = orders_pb2.Order.FromString(raw)
    return {"externalOrderId": order.external_order_id, "status": order.status,
            "contactId": order.contact_id or None, "createdAt": _iso(order.created_at.ToDatetime()),
            "updatedAt": _iso(order.updated_at.ToDatetime()),
            "order": struct_from_bytes(b"".join(payloads(raw, 4)))}


def upsert_request(raw: Any) -> bytes:
    """The serialized ``UpsertOrdersRequest`` of the body, each order's members in order."""
    doc = only_members(raw, ("orders",))
    orders = doc.get("orders")
    if not isinstance(orders, list):
        raise InvalidArgument.from_violations([Violation(
            "orders", 'is required: a list, {"orders": [{"externalOrderId": ...}]}')])
    for index, order in enumerate(orders):
        if not isinstance(order, dict):
            raise InvalidArgument.from_violations([Violation(f"orders[{index}]",
                                                             "must be an object")])
    return wire.messages(1, [struct_bytes(order) for order in orders])


SERVICE = "/eventflow.v1.OrderService/"


def routes(state: GatewayState) -> list[Route]:
    calls: dict[str, Any] = {}

    def call(method: str, serializer: Any = None) -> Any:
        """The OrderService method answering bytes (and taking them, without
        ``serializer``), made once the channel is."""
        if method not in calls:
            calls[method] = state.channel.unary_unary(SERVICE + method,
                                                      request_serializer=serializer)
        return calls[method]

    @endpoint
    async def upsert(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, ())
        body = upsert_request(await read_json(request, limit=MAX_ORDERS_BODY))
        await call("UpsertOrders")(body, metadata=meta)
        return Response(status_code=200)

    @endpoint
    async def list_all(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, LIST_QUERY)
        offset, limit = page_of(request)
        query = request.query_params
        listing = call("ListOrders", orders_pb2.ListOrdersRequest.SerializeToString)
        reply = await listing(orders_pb2.ListOrdersRequest(
            external_customer_id=query.get("externalCustomerId", ""),
            email=query.get("email", ""), contact_id=query_number(request, "contactId"),
            status=query.get("status", ""), offset=offset, limit=limit), metadata=meta)
        total = orders_pb2.ListOrdersResponse.FromString(reply).total_count
        return json_response([order_json(o) for o in payloads(reply, 1)],
                             headers={"TotalCount": str(total)})

    @endpoint
    async def get_one(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, ())
        get = call("GetOrder", orders_pb2.GetOrderRequest.SerializeToString)
        reply = await get(orders_pb2.GetOrderRequest(
            external_order_id=request.path_params["external_order_id"]), metadata=meta)
        return json_response(order_json(reply))

    return [
        Route("/api/v1/orders", upsert, methods=["POST"]),
        Route("/api/v1/orders", list_all, methods=["GET"]),
        Route("/api/v1/orders/{external_order_id}", get_one, methods=["GET"]),
    ]
