"""Admin routes (``/api/v1/admin/...``) over AdminService: accounts and their API keys.

The caller sends the admin key (EVENTFLOW_ADMIN_KEY) as it would an API key (HTTP Basic
password or ``x-api-key``); the server checks it, as for every call.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventflow.v1 import admin_pb2, admin_pb2_grpc
from server.errors import InvalidArgument, Violation
from server.gateway.http import (
    auth_metadata,
    endpoint,
    json_object,
    json_response,
    path_id,
    read_json,
)
from server.gateway.state import GatewayState

MAX_ADMIN_BODY = 16 * 1024


def _text(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgument.from_violations([Violation(name, "must be a string")])
    return value


def routes(state: GatewayState) -> list[Route]:
    def stub() -> admin_pb2_grpc.AdminServiceStub:
        return state.stub(admin_pb2_grpc.AdminServiceStub)

    @endpoint
    async def create_account(request: Request) -> Response:
        meta = auth_metadata(request)
        doc = json_object(await read_json(request, limit=MAX_ADMIN_BODY))
        reply = await stub().CreateAccount(admin_pb2.CreateAccountRequest(
            name=_text(doc, "name"), email=_text(doc, "email")), metadata=meta)
        return json_response({"id": reply.account_id, "apiKey": reply.api_key}, 201)

    @endpoint
    async def list_keys(request: Request) -> Response:
        reply = await stub().ListKeys(admin_pb2.ListKeysRequest(
            account_id=path_id(request, "account_id")), metadata=auth_metadata(request))
        return json_response([
            {"id": k.id, "accountId": k.account_id, "label": k.label,
             "createdAt": k.created_at.ToDatetime().isoformat(timespec="seconds") + "Z"}
            for k in reply.keys])

    @endpoint
    async def create_key(request: Request) -> Response:
        meta = auth_metadata(request)
        account_id = path_id(request, "account_id")
        doc = json_object(await read_json(request, limit=MAX_ADMIN_BODY))
        reply = await stub().CreateKey(admin_pb2.CreateKeyRequest(
            account_id=account_id, label=_text(doc, "label")), metadata=meta)
        return json_response({"id": reply.key_id, "apiKey": reply.api_key}, 201)

    @endpoint
    async def revoke_key(request: Request) -> Response:
        reply = await stub().RevokeKey(admin_pb2.RevokeKeyRequest(
            key_id=path_id(request, "key_id")), metadata=auth_metadata(request))
        return json_response({"accountId": reply.account_id, "confirmed": reply.confirmed,
                              "subscribed": reply.subscribed})

    return [
        Route("/api/v1/admin/accounts", create_account, methods=["POST"]),
        Route("/api/v1/admin/accounts/{account_id}/keys", list_keys, methods=["GET"]),
        Route("/api/v1/admin/accounts/{account_id}/keys", create_key, methods=["POST"]),
        Route("/api/v1/admin/keys/{key_id}", revoke_key, methods=["DELETE"]),
    ]
