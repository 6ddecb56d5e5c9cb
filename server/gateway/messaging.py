"""Sending routes as eSputnik's: ``POST /api/v1/message/{id}/smartsend`` and
``POST /api/v1/message/email`` answer ``{"results": [{"id": 0, "locator", "status",
"requestId", "message"}]}``; ``GET /api/v1/message/status?ids=...`` reads outcomes.

The send bodies go to the server as wire bytes written here, so that a template's data
(``jsonParam`` given as an object) keeps the caller's key order (``codec.wirejson``).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventflow.v1 import messaging_pb2, messaging_pb2_grpc
from server.codec import wire
from server.codec.values import struct_bytes
from server.errors import InvalidArgument, Violation
from server.gateway.http import (
    auth_metadata,
    endpoint,
    json_object,
    json_response,
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

    service = "/eventflow.v1.MessagingService/"
    smart_send = state.channel_call(service + "SmartSend", messaging_pb2.SendResponse)
    send_email = state.channel_call(service + "SendEmail", messaging_pb2.SendResponse)

    @endpoint
    async def smartsend(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, ())
        message_id = path_id(request, "message_id")
        body = struct_bytes(json_object(await read_json(request, limit=MAX_SEND_BODY)))
        # SmartSendRequest{message_id = 1, body = 2}
        raw = wire.number_field(1, message_id) + wire.messages(2, [body])
        return _results(await smart_send()(raw, metadata=meta))

    @endpoint
    async def email(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, ())
        body = struct_bytes(json_object(await read_json(request, limit=MAX_SEND_BODY)))
        # SendEmailRequest{body = 1}
        return _results(await send_email()(wire.messages(1, [body]), metadata=meta))

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
