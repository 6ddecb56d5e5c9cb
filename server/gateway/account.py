"""Account routes as eSputnik's: ``GET /api/v1/account/info`` and ``GET /api/v1/version``
(also under ``/api/v2``, where some clients look for it)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventflow.v1 import account_pb2, account_pb2_grpc
from server.errors import InvalidArgument, Violation
from server.gateway.http import auth_metadata, endpoint, json_response, read_json
from server.gateway.state import GatewayState
from server.members import only_members

MAX_ACCOUNT_BODY = 4 * 1024


def routes(state: GatewayState) -> list[Route]:
    def stub() -> account_pb2_grpc.AccountServiceStub:
        return state.stub(account_pb2_grpc.AccountServiceStub)

    @endpoint
    async def info(request: Request) -> Response:
        # eSputnik's three members exactly: strict client models refuse any other.
        reply = await stub().GetAccountInfo(account_pb2.GetAccountInfoRequest(),
                                            metadata=auth_metadata(request))
        return json_response({"userEmail": reply.user_email,
                              "organisationName": reply.organisation_name,
                              "orgId": reply.org_id})

    def settings_json(reply: account_pb2.AccountInfo) -> dict[str, object]:
        return {"timeZone": reply.time_zone}

    @endpoint
    async def settings(request: Request) -> Response:
        reply = await stub().GetAccountInfo(account_pb2.GetAccountInfoRequest(),
                                            metadata=auth_metadata(request))
        return json_response(settings_json(reply))

    @endpoint
    async def update(request: Request) -> Response:
        meta = auth_metadata(request)
        body = only_members(await read_json(request, limit=MAX_ACCOUNT_BODY), ("timeZone",))
        change = account_pb2.UpdateAccountRequest()
        if "timeZone" in body:
            if not isinstance(body["timeZone"], str):
                raise InvalidArgument.from_violations([Violation(
                    "timeZone", "must be an IANA time zone name such as Europe/Kyiv")])
            change.time_zone = body["timeZone"]
        return json_response(settings_json(await stub().UpdateAccount(change, metadata=meta)))

    @endpoint
    async def version(request: Request) -> Response:
        reply = await stub().GetVersion(account_pb2.GetVersionRequest(),
                                        metadata=auth_metadata(request))
        return json_response({"version": reply.version,
                              "protocolVersion": reply.protocol_version})

    return [
        Route("/api/v1/account/info", info, methods=["GET"]),
        Route("/api/v1/account/settings", settings, methods=["GET"]),
        Route("/api/v1/account/settings", update, methods=["PATCH"]),
        Route("/api/v1/version", version, methods=["GET"]),
        Route("/api/v2/version", version, methods=["GET"]),
    ]
