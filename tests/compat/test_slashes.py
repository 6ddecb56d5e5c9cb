"""Every gateway route answers at once with a trailing slash, exactly as without one."""

from __future__ import annotations

import re

from starlette.routing import Route

from server.gateway.app import build_app
from tests.compat.conftest import replay
from tests.support import Stack


def _routes(compat: Stack) -> list[tuple[str, str]]:
    app = build_app(compat.settings, grpc_target=compat.grpc_target)
    out = []
    for route in app.routes:
        assert isinstance(route, Route)
        path = re.sub(r"\{[^}]+\}", "987654321", route.path)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            out.append((method, path))
    return out


async def test_every_route_answers_the_same_with_a_trailing_slash(compat: Stack) -> None:
    """No 307 anywhere: a slash changes neither the status nor the body's shape."""
    routes = _routes(compat)
    assert len(routes) > 20
    for method, path in routes:
        body = b"{}" if method in ("POST", "PUT") else None
        plain = await replay(compat, method, path, body)
        slashed = await replay(compat, method, path + "/", body)
        assert slashed.status_code != 307, (method, path)
        assert slashed.status_code == plain.status_code, (method, path, plain.text, slashed.text)
        assert slashed.headers.get("content-type") == plain.headers.get("content-type")


async def test_unknown_path_with_a_slash_is_a_json_404(compat: Stack) -> None:
    """A path no route has is 404 with a JSON error, slash or not."""
    r = await replay(compat, "GET", "/api/v1/nothing/here/", content_type=None)
    assert r.status_code == 404 and "error" in r.json()
