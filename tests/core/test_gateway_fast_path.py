"""The gateway's bare-ASGI event handler answers exactly as the Starlette routes do.

Each request goes once through the fast path (``GatewayApp.__call__``) and once through
Starlette's middleware and router (the same app, called as a plain ``Starlette``); status,
headers and body must match (event ids aside, which differ per stored event).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from server.gateway.app import build_app
from server.gateway.unread import UnreadBody
from tests.support import Stack, free_port

JSON = {"Content-Type": "application/json"}
GOOD = b'{"eventTypeKey":"fast_path","keyValue":"k","params":[{"name":"a","value":[1,{"b":null}]}]}'
# v1 values are text: the same value as escaped JSON (an array there is refused).
GOOD_V1 = (b'{"eventTypeKey":"fast_path","keyValue":"k","params":[{"name":"a",'
           b'"value":"[1,{\\"b\\":null}]"}]}')


class _Pair:
    def __init__(self, app: Any) -> None:
        self.app = app

        async def starlette_only(scope: Scope, receive: Receive, send: Send) -> None:
            # GatewayApp wraps both paths alike (gateway.unread); so does this one.
            request = UnreadBody(scope, receive, send)
            await Starlette.__call__(app, scope, request.receive, request.send)

        self.fast = httpx.AsyncClient(transport=httpx.ASGITransport(
            app=app, raise_app_exceptions=False), base_url="http://gw")
        self.slow = httpx.AsyncClient(transport=httpx.ASGITransport(
            app=starlette_only, raise_app_exceptions=False), base_url="http://gw")

    async def both(self, path: str, content: Any, headers: dict[str, str]
                   ) -> tuple[httpx.Response, httpx.Response]:
        body = content() if callable(content) else content
        fast = await self.fast.post(path, content=body, headers=headers)
        body = content() if callable(content) else content
        slow = await self.slow.post(path, content=body, headers=headers)
        return fast, slow

    async def same(self, path: str, content: Any, headers: dict[str, str]) -> httpx.Response:
        fast, slow = await self.both(path, content, headers)
        assert fast.status_code == slow.status_code, (fast.text, slow.text)
        assert fast.content == slow.content
        strip = {"x-event-id"}
        assert [(k, v) for k, v in fast.headers.multi_items() if k not in strip] == \
            [(k, v) for k, v in slow.headers.multi_items() if k not in strip]
        assert ("x-event-id" in fast.headers) == ("x-event-id" in slow.headers)
        return fast

    async def close(self) -> None:
        await self.fast.aclose()
        await self.slow.aclose()
        await self.app.state.gateway.close()


@pytest.fixture
async def pair(stack: Stack) -> AsyncIterator[_Pair]:
    # A gateway body limit above the server's lets the server's TOO_LARGE answer show.
    app = build_app(stack.settings.with_(max_event_bytes=stack.settings.max_event_bytes * 2),
                    grpc_target=stack.grpc_target)
    app.state.gateway.open()
    p = _Pair(app)
    yield p
    await p.close()


def _chunks(*parts: bytes) -> Any:
    async def gen() -> AsyncIterator[bytes]:
        for part in parts:
            yield part
    return gen


@pytest.mark.parametrize("path", ["/api/v2/event", "/api/v2/event/", "/api/v1/event",
                                  "/api/v1/event/"])
async def test_accepted_event_answers_alike(stack: Stack, pair: _Pair, path: str) -> None:
    before = await stack.count_events()
    body = GOOD_V1 if path.startswith("/api/v1/") else GOOD
    r = await pair.same(path, body, {**stack.auth(), **JSON})
    assert r.status_code == 200 and int(r.headers["x-event-id"]) > 0 and r.content == b""
    assert await stack.count_events() == before + 2


CASES: list[tuple[str, Any, dict[str, str], int]] = [
    ("text/plain", GOOD, {"Content-Type": "text/plain"}, 415),
    ("no content type", GOOD, {}, 415),
    ("+json with charset", GOOD, {"Content-Type": "application/vnd.x+json; charset=utf-8"}, 200),
    ("upper case json", GOOD, {"Content-Type": " Application/JSON ;q=1"}, 200),
    ("declared too long", GOOD, {**JSON, "Content-Length": "999999"}, 413),
    ("streamed too long", _chunks(b'{"eventTypeKey":"', b"x" * 30000, b"y" * 30000, b'"}'),
     JSON, 413),
    ("too large for the server", b'{"eventTypeKey":"t","keyValue":"k","params":[{"name":"x",'
     b'"value":"' + b"a" * 30000 + b'"}]}', JSON, 413),
    ("streamed in pieces", _chunks(GOOD[:10], b"", GOOD[10:]), JSON, 200),
    ("broken json", b'{"eventTypeKey": "t", ', JSON, 400),
    ("invalid utf-8", b'{"eventTypeKey":"t\xff\xfe","keyValue":"k"}', JSON, 400),
    ("lone surrogate", b'{"eventTypeKey":"\\ud800","keyValue":"k"}', JSON, 400),
    ("empty body", b"", JSON, 400),
    ("not an object", b"[1,2]", JSON, 400),
    ("shape errors", b'{"eventTypeKey":5,"params":[3,{"name":4}]}', JSON, 400),
    ("rule errors", b'{"eventTypeKey":"bad|key","keyValue":"' + b"k" * 301 + b'"}', JSON, 400),
    ("too deep", b'{"eventTypeKey":"t","keyValue":"k","params":[{"name":"d","value":'
     + b"[" * 30 + b"1" + b"]" * 30 + b"}]}", JSON, 400),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
async def test_bodies_answer_alike(stack: Stack, pair: _Pair, case: Any) -> None:
    _name, content, headers, status = case
    r = await pair.same("/api/v2/event", content, {**stack.auth(), **headers})
    assert r.status_code == status, r.text


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": ""}, {"Authorization": "Basic bm9wZTpub3Bl"},
    {"Authorization": "Basic !!!"}, {"x-api-key": "wrong"}, {"X-Api-Key": ""},
    {"Authorization": "Bearer nothing"}])
async def test_credentials_answer_alike(stack: Stack, pair: _Pair, headers: dict[str, str]
                                        ) -> None:
    r = await pair.same("/api/v1/event", GOOD, {**headers, **JSON})
    assert r.status_code == 401


async def test_api_key_header_and_repeated_headers(stack: Stack, pair: _Pair) -> None:
    r = await pair.same("/api/v2/event", GOOD, {"x-api-key": stack.api_key, **JSON})
    assert r.status_code == 200
    # The first of repeated headers counts, as with Starlette's Headers.get.
    headers = httpx.Headers([("authorization", stack.auth()["Authorization"]),
                             ("authorization", "Basic bm9wZTpub3Bl"),
                             ("content-type", "application/json"), ("content-type", "text/plain")])
    fast = await pair.fast.post("/api/v2/event", content=GOOD, headers=headers)
    slow = await pair.slow.post("/api/v2/event", content=GOOD, headers=headers)
    assert fast.status_code == slow.status_code == 200


async def test_other_routes_and_methods_go_to_starlette(stack: Stack, pair: _Pair) -> None:
    r = await pair.fast.get("/api/v2/event", headers=stack.auth())
    assert r.status_code == 405 and "error" in r.json()
    r = await pair.fast.post("/api/v2/events", content=GOOD, headers={**stack.auth(), **JSON})
    assert r.status_code == 404
    r = await pair.fast.post("/api/v2/past_events", content=b"[]", headers={**stack.auth(), **JSON})
    assert r.status_code == 200 and r.json()["successCount"] == 0


def _rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


@pytest.mark.parametrize("error,status", [
    # gRPC's own (no ErrorInfo): a message over its size limit, an over-size answer.
    (_rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "Received message larger than max"), 413),
    (_rpc_error(grpc.StatusCode.UNAUTHENTICATED, "unknown API key"), 401),
    (_rpc_error(grpc.StatusCode.INTERNAL, "boom"), 502),
    (RuntimeError("a bug"), 500),
])
async def test_call_failures_answer_alike(stack: Stack, pair: _Pair, monkeypatch: pytest.MonkeyPatch,
                                          error: Exception, status: int) -> None:
    async def fail(meta: Any, event: bytes) -> Any:
        raise error

    monkeypatch.setattr(pair.app.state.gateway.coalescer, "submit", fail)
    r = await pair.same("/api/v2/event", GOOD, {**stack.auth(), **JSON})
    assert r.status_code == status, r.text


async def test_server_down_answers_alike(stack: Stack) -> None:
    app = build_app(stack.settings, grpc_target=f"127.0.0.1:{free_port()}")
    app.state.gateway.open()
    p = _Pair(app)
    try:
        r = await p.same("/api/v2/event", GOOD, {**stack.auth(), **JSON})
        assert r.status_code == 503 and r.json()["error"]
    finally:
        await p.close()
