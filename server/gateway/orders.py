"""Order routes: eSputnik's ``POST /api/v1/orders`` (an empty 200, as eSputnik answers), and
our reads ``GET /api/v1/orders`` (paged, ``TotalCount`` header) and
``GET /api/v1/orders/{externalOrderId}``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf import struct_pb2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventflow.v1 import orders_pb2, orders_pb2_grpc
from server.codec.values import value_to_py
from server.errors import InvalidArgument, Violation
from server.gateway.http import auth_metadata, endpoint, json_response, query_number, read_json
from server.gateway.params import only_members, only_query, page_of
from server.gateway.state import GatewayState

MAX_ORDERS_BODY = 32 * 1024 * 1024 - 64 * 1024  # under the gRPC message limit
LIST_QUERY = ("externalCustomerId", "email", "contactId", "status", "startindex", "maxrows")


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds") + "Z"


def order_json(order: orders_pb2.Order) -> dict[str, Any]:
    return {"externalOrderId": order.external_order_id, "status": order.status,
            "contactId": order.contact_id or None, "createdAt": _iso(order.created_at.ToDatetime()),
            "updatedAt": _iso(order.updated_at.ToDatetime()),
            "order": {k: value_to_py(v) for k, v in order.document.fields.items()}}


def upsert_request(raw: Any) -> orders_pb2.UpsertOrdersRequest:
    doc = only_members(raw, ("orders",))
    orders = doc.get("orders")
    if not isinstance(orders, list):
        raise InvalidArgument.from_violations([Violation(
            "orders", 'is required: a list, {"orders": [{"externalOrderId": ...}]}')])
    request = orders_pb2.UpsertOrdersRequest()
    for index, order in enumerate(orders):
        if not isinstance(order, dict):
            raise InvalidArgument.from_violations([Violation(f"orders[{index}]",
                                                             "must be an object")])
        struct = struct_pb2.Struct()
        struct.update(order)
        request.orders.append(struct)
    return request


def routes(state: GatewayState) -> list[Route]:
    def stub() -> orders_pb2_grpc.OrderServiceStub:
        return state.stub(orders_pb2_grpc.OrderServiceStub)

    @endpoint
    async def upsert(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, ())
        body = upsert_request(await read_json(request, limit=MAX_ORDERS_BODY))
        await stub().UpsertOrders(body, metadata=meta)
        return Response(status_code=200)

    @endpoint
    async def list_all(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, LIST_QUERY)
        offset, limit = page_of(request)
        query = request.query_params
        reply = await stub().ListOrders(orders_pb2.ListOrdersRequest(
            external_customer_id=query.get("externalCustomerId", ""),
            email=query.get("email", ""), contact_id=query_number(request, "contactId"),
            status=query.get("status", ""), offset=offset, limit=limit), metadata=meta)
        return json_response([order_json(o) for o in reply.orders],
                             headers={"TotalCount": str(reply.total_count)})

    @endpoint
    async def get_one(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, ())
        reply = await stub().GetOrder(orders_pb2.GetOrderRequest(
            external_order_id=request.path_params["external_order_id"]), metadata=meta)
        return json_response(order_json(reply))

    return [
        Route("/api/v1/orders", upsert, methods=["POST"]),
        Route("/api/v1/orders", list_all, methods=["GET"]),
        Route("/api/v1/orders/{external_order_id}", get_one, methods=["GET"]),
    ]
