"""The Starlette application of the gateway; each feature contributes its routes."""

from __future__ import annotations

import contextlib
from typing import Any

import grpc
import orjson
from grpc_health.v1 import health_pb2, health_pb2_grpc
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from server.codec import values
from server.config import Settings
from server.errors import InvalidArgument, MethodNotAllowed, NotFound, TooLarge, Violation
from server.gateway import events
from server.gateway.http import error_response, json_response
from server.gateway.state import GatewayState
from server.gateway.unread import UnreadBody


def without_trailing_slash(scope: Scope) -> Scope:
    """The request with one trailing ``/`` of its path dropped: clients in the wild send
    ``/api/v1/contact/`` and expect the answer at once, not Starlette's 307 redirect."""
    path = scope["path"]
    if len(path) > 1 and path.endswith("/"):
        return {**scope, "path": path[:-1]}
    return scope


class GatewayApp(Starlette):
    """The Starlette app, with ``POST`` of one event handed to its ``events.EventPost``
    before Starlette's middleware and router (the gateway's hot path; the router mounts
    the same apps); every other request, and anything under a root path, goes through
    Starlette as usual, its path without a trailing slash."""

    def __init__(self, posts: dict[str, ASGIApp], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._posts = posts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        # An answer sent before the body was read whole drains it first (gateway.unread).
        request = UnreadBody(scope, receive, send)
        if scope["method"] == "POST" and not scope.get("root_path"):
            post = self._posts.get(scope["path"])
            if post is not None:
                await post(scope, request.receive, request.send)
                return
        await super().__call__(without_trailing_slash(scope), request.receive, request.send)


def openapi_route(routes: list[Any]) -> Any:
    """``GET /openapi.json``: the document of ``routes`` (this route included), built once."""
    from server.gateway.openapi import document, release

    built: list[bytes] = []

    async def openapi(request: Request) -> Response:
        if not built:
            built.append(orjson.dumps(document(routes, version=release())))
        return Response(built[0], media_type="application/json")

    return openapi


def build_app(settings: Settings, *, grpc_target: str | None = None) -> Starlette:
    values.configure(settings)
    state = GatewayState(settings, grpc_target)
    posts = events.event_posts(state)

    async def healthz(request: Request) -> Response:
        try:
            reply = await health_pb2_grpc.HealthStub(state.channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=2)
            ok = reply.status == health_pb2.HealthCheckResponse.SERVING
        except grpc.aio.AioRpcError as exc:
            return json_response({"status": "unavailable", "grpc": exc.code().name}, 503)
        return json_response({"status": "ok" if ok else "not serving"}, 200 if ok else 503)

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            return error_response(MethodNotAllowed(
                f"{request.method} is not allowed on {request.url.path}"))
        if exc.status_code == 413:
            return error_response(TooLarge(f"the body is too large: {exc.detail}"))
        if exc.status_code == 400:
            # Starlette's own refusals of a body it could not read (a form part past its
            # limit, a broken multipart body): the caller's input, not a missing route.
            return error_response(InvalidArgument.from_violations(
                [Violation("body", f"could not be read: {exc.detail}")]))
        return error_response(NotFound(f"no route {request.method} {request.url.path}; "
                                       "see the README for the API"))

    from server.gateway.extra import extra_routes

    route_list: list[Any] = [Route("/healthz", healthz, methods=["GET"])]
    route_list += events.routes(state, posts)
    route_list += extra_routes(state)
    from server.console import routes as console_routes

    route_list += console_routes(state)  # the operator console at /
    route_list.append(Route("/openapi.json", openapi_route(route_list), methods=["GET"]))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        state.open()
        yield
        await state.close()

    app = GatewayApp(posts, routes=route_list,
                     exception_handlers={HTTPException: not_found}, lifespan=lifespan)
    app.state.gateway = state
    return app
