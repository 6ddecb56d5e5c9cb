"""Sending routes as eSputnik's: ``POST /api/v1/message/{id}/smartsend`` and
``POST /api/v1/message/email`` answer ``{"results": [{"id": 0, "locator", "status",
"requestId", "message"}]}``; ``GET /api/v1/message/status?ids=...`` reads outcomes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventflow.v1 import messaging_pb2, messaging_pb2_grpc
from server.errors import InvalidArgument, Violation
from server.gateway.http import (
    auth_metadata,
    endpoint,
    json_response,
    json_struct,
    path_id,
    read_json,
)
from server.gateway.params import only_query
from server.gateway.state import GatewayState

MAX_SEND_BODY = 8 * 1024 * 1024


def _results(reply: messaging_pb2.SendResponse) -> Response:
    return json_response({"results": [
        {"id": 0, "locator": r.locator, "status": r.status, "requestId": r.request_id,
         "message": r.message or None} for r in reply.results]})


def routes(state: GatewayState) -> list[Route]:
    def stub() -> messaging_pb2_grpc.MessagingServiceStub:
        return state.stub(messaging_pb2_grpc.MessagingServiceStub)

    @endpoint
    async def smartsend(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, ())
        message_id = path_id(request, "message_id")
        body = json_struct(await read_json(request, limit=MAX_SEND_BODY))
        reply = await stub().SmartSend(messaging_pb2.SmartSendRequest(
            message_id=message_id, body=body), metadata=meta)
        return _results(reply)

    @endpoint
    async def email(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, ())
        body = json_struct(await read_json(request, limit=MAX_SEND_BODY))
        return _results(await stub().SendEmail(messaging_pb2.SendEmailRequest(body=body),
                                               metadata=meta))

    @endpoint
    async def status(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, ("ids",))
        ids = [i.strip() for i in request.query_params.get("ids", "").split(",") if i.strip()]
        if not ids:
            raise InvalidArgument.from_violations([Violation(
                "ids", "is required: the requestIds the send answered, comma-separated")])
        reply = await stub().GetMessageStatus(
            messaging_pb2.GetMessageStatusRequest(request_ids=ids), metadata=meta)
        return json_response({"results": [
            {"requestId": r.request_id, "locator": r.locator, "status": r.status,
             "delivered": r.status == "SENT", "failed": r.status == "FAILED",
             "message": r.reason or None, "messageId": r.message_id} for r in reply.results]})

    return [
        Route("/api/v1/message/{message_id}/smartsend", smartsend, methods=["POST"]),
        Route("/api/v1/message/email", email, methods=["POST"]),
        Route("/api/v1/message/status", status, methods=["GET"]),
    ]
