"""The OpenAPI document from the routes the app really has.

A route with no written operation is still listed (``x-undocumented``, any answer), so the
document never hides a path; the drift test in ``tests/reliability/test_openapi.py``
fails on such a route and on a written operation whose route is gone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib import metadata
from typing import Any

from starlette.routing import BaseRoute, Route

from server.gateway.openapi.operations import CONSOLE, OPERATIONS, Operation
from server.gateway.openapi.schemas import COMPONENTS

_CONVERTER = re.compile(r"\{([^}:]+):[^}]+\}")
_SECURITY = {
    "basic": {"type": "http", "scheme": "basic",
              "description": "any user name, the API key as password (as eSputnik)"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
    "adminBasic": {"type": "http", "scheme": "basic",
                   "description": "any user name, EVENTFLOW_ADMIN_KEY as password"},
    "adminKey": {"type": "apiKey", "in": "header", "name": "x-api-key",
                 "description": "EVENTFLOW_ADMIN_KEY"},
    "console": {"type": "apiKey", "in": "cookie", "name": "ef_session",
                "description": "the console's session, from signing in at /login"},
}


def release() -> str:
    """eventflow's installed version (as ``GET /api/v1/version`` answers it)."""
    try:
        return metadata.version("eventflow")
    except metadata.PackageNotFoundError:
        return "0.0.0+source"


def openapi_path(path: str) -> str:
    """A Starlette path as OpenAPI writes it: ``{key:path}`` is ``{key}``."""
    return _CONVERTER.sub(r"{\1}", path)


def route_operations(routes: Iterable[BaseRoute]) -> list[tuple[str, str]]:
    """``(method, OpenAPI path)`` of every route; HEAD is Starlette's echo of GET."""
    found = {(method, openapi_path(route.path)) for route in routes if isinstance(route, Route)
             for method in (route.methods or ()) if method != "HEAD"}
    return sorted(found, key=lambda pair: (pair[1], pair[0]))


def _undocumented(method: str, path: str) -> Operation:
    return {"summary": f"{method} {path}", "x-undocumented": True,
            "responses": {"default": {"description": "not described yet"}}}


def document(routes: Iterable[BaseRoute], *, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``."""
    written = {**OPERATIONS, **CONSOLE}
    paths: dict[str, dict[str, Any]] = {}
    for method, path in route_operations(routes):
        op = dict(written.get((method, path)) or _undocumented(method, path))
        op["operationId"] = f"{method.lower()} {path}"
        paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "eventflow HTTP API", "version": version,
                 "description": "eSputnik's Generate event API and eventflow's own routes; "
                                "errors in docs/errors.md, behaviour in docs/behaviour.md."},
        "paths": paths,
        "components": {"schemas": COMPONENTS, "securitySchemes": _SECURITY},
        "security": [{"basic": []}, {"apiKey": []}],
    }
