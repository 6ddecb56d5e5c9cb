"""Account routes as eSputnik's: ``GET /api/v1/account/info`` and ``GET /api/v1/version``
(also under ``/api/v2``, where some clients look for it)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventflow.v1 import account_pb2, account_pb2_grpc
from server.gateway.http import auth_metadata, endpoint, json_response
from server.gateway.state import GatewayState


def routes(state: GatewayState) -> list[Route]:
    def stub() -> account_pb2_grpc.AccountServiceStub:
        return state.stub(account_pb2_grpc.AccountServiceStub)

    @endpoint
    async def info(request: Request) -> Response:
        reply = await stub().GetAccountInfo(account_pb2.GetAccountInfoRequest(),
                                            metadata=auth_metadata(request))
        return json_response({"userEmail": reply.user_email,
                              "organisationName": reply.organisation_name,
                              "orgId": reply.org_id})

    @endpoint
    async def version(request: Request) -> Response:
        reply = await stub().GetVersion(account_pb2.GetVersionRequest(),
                                        metadata=auth_metadata(request))
        return json_response({"version": reply.version,
                              "protocolVersion": reply.protocol_version})

    return [
        Route("/api/v1/account/info", info, methods=["GET"]),
        Route("/api/v1/version", version, methods=["GET"]),
        Route("/api/v2/version", version, methods=["GET"]),
    ]
