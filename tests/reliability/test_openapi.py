"""The OpenAPI 3.1 document at ``/openapi.json`` (issue 12, Build): it lists exactly the
gateway's routes, and schemathesis, driven by it against a running deployment, finds no
5xx and no answer that breaks the documented schemas, statuses, media types or headers.

Operations are read from the document the app builds from its own route table, so a
route added later is covered (or fails the drift test until it is described).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Route

from server.config import Settings
from server.gateway.app import build_app
from server.gateway.openapi import document, route_operations
from server.gateway.openapi.operations import CONSOLE, OPERATIONS
from tests.reliability.procs import Procs, running
from tests.support import Backends, basic, private_backends

# Per operation: 15 valid requests; 8 invalid ones where the document leaves room for any.
POSITIVE_EXAMPLES = 15
NEGATIVE_EXAMPLES = 8
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]
_SETTINGS = settings(derandomize=True, database=None, deadline=None,
                     suppress_health_check=list(HealthCheck), max_examples=POSITIVE_EXAMPLES)


def _app_document() -> dict[str, Any]:
    app = build_app(Settings(grpc_addr="127.0.0.1:1"))
    return document(app.routes, version="test")


APP_DOC = _app_document()
SCHEMA = schemathesis.openapi.from_dict(APP_DOC)
OPERATION_KEYS = [(method.upper(), path) for path, ops in APP_DOC["paths"].items()
                  for method in ops]


def _breakable(op: dict[str, Any]) -> bool:
    """Whether a request can break ``op``'s document: a body, or a parameter that is not
    any string (a route taking nothing, or only free text, has no invalid request)."""
    return "requestBody" in op or any(p["schema"] != {"type": "string"}
                                      for p in op.get("parameters", []))


BREAKABLE_KEYS = [(method.upper(), path) for path, ops in APP_DOC["paths"].items()
                  for method, op in ops.items() if _breakable(op)]


def test_document_lists_every_route_and_only_routes(procs: Procs) -> None:
    """The served document's paths and methods are the route table's, each described."""
    served = httpx.get(f"{procs.http_url}/openapi.json", timeout=10)
    assert served.status_code == 200 and served.headers["content-type"] == "application/json"
    doc = served.json()
    assert doc["openapi"].startswith("3.1")
    in_doc = sorted((method.upper(), path) for path, ops in doc["paths"].items() for method in ops)
    routes = build_app(Settings(grpc_addr="127.0.0.1:1")).routes
    assert in_doc == sorted(route_operations(routes))
    undocumented = [(m, p) for p, ops in doc["paths"].items() for m, op in ops.items()
                    if op.get("x-undocumented")]
    assert undocumented == [], "describe these in server/gateway/openapi/operations.py"
    stale = sorted((set(OPERATIONS) | set(CONSOLE)) - set(route_operations(routes)))
    assert stale == [], "operations written for routes that are gone"
    for path, ops in doc["paths"].items():
        names = set(re.findall(r"\{([^}]+)\}", path))
        for method, op in ops.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (method, path, declared)
            for p in op.get("parameters", []):
                if p["in"] == "path":
                    assert "example" in p, (method, path, p["name"])


def test_a_route_without_a_description_shows_as_undocumented() -> None:
    """The drift check can fail: a route nobody described is listed, flagged."""
    async def nothing(request: Any) -> Any:
        raise AssertionError

    routes = [*build_app(Settings(grpc_addr="127.0.0.1:1")).routes,
              Route("/api/v1/new-thing/{thing:path}", nothing, methods=["GET", "PATCH"])]
    doc = document(routes, version="test")
    added = doc["paths"]["/api/v1/new-thing/{thing}"]
    assert sorted(added) == ["get", "patch"]
    assert all(op["x-undocumented"] for op in added.values())


# --- schemathesis ------------------------------------------------------------------------

class Target:
    """The deployment schemathesis calls, with one of everything id 1 names."""

    def __init__(self, procs: Procs) -> None:
        self.procs = procs
        self.session = requests.Session()
        self.throwaway_key = 0

    def headers(self, path: str) -> dict[str, str]:
        if path.startswith("/api/v1/admin"):
            return {"Authorization": basic(self.procs.admin_key)}
        if path.startswith("/api/") or path == "/healthz":
            return {"Authorization": basic(self.procs.api_key)}
        return {}


def _seed(procs: Procs, session: requests.Session) -> int:
    """Objects with id 1 (and order ``order-1``) so examples reach real answers; a signed-in
    console session; and a key for the revoke route to revoke (never the test's own)."""
    url, auth = procs.http_url, {"Authorization": basic(procs.api_key)}

    def post(path: str, body: Any, key: dict[str, str] = auth) -> requests.Response:
        r = session.post(url + path, json=body, headers=key, timeout=30)
        assert r.status_code in (200, 201), (path, r.status_code, r.text)
        return r

    post("/api/v2/event", {"eventTypeKey": "abandoned_cart", "keyValue": "a@example.com",
                           "params": [{"name": "email", "value": "a@example.com"}]})
    post("/api/v1/messages", {"name": "Cart", "subject": "Cart", "html": "<p>$!email</p>",
                              "text": "$!email"})
    post("/api/v1/workflows", {"name": "cart", "active": True,
                               "trigger": {"eventTypeKey": "abandoned_cart"}, "start": "mail",
                               "blocks": [{"id": "mail", "type": "email", "templateId": 1,
                                           "to": "${email}"}]})
    post("/api/v1/contact", {"firstName": "A", "channels": [{"type": "email",
                                                             "value": "a@example.com"}]})
    post("/api/v1/fields", {"name": "city", "type": "text"})
    post("/api/v1/segments", {"name": "named A", "conditions": {
        "contact": {"field": "firstName", "op": "eq", "value": "A"}}})
    post("/api/v1/orders", {"orders": [{"externalOrderId": "order-1", "status": "INITIALIZED",
                                        "date": "2026-11-27T10:00:00", "totalCost": 1, "currency": "UAH",
                                        "email": "a@example.com"}]})
    login = session.get(url + "/login", timeout=30)
    token = re.search(r'name="login_token" value="([^"]+)"', login.text)
    assert token is not None
    session.post(url + "/login", data={"api_key": procs.api_key,
                                       "login_token": token.group(1)}, timeout=30)
    assert session.cookies.get("ef_session")
    admin = {"Authorization": basic(procs.admin_key)}
    created = post("/api/v1/admin/accounts", {"name": "to revoke"}, admin).json()
    return int(created["id"])


@pytest.fixture(scope="module")
def target(backends: Backends, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    own = private_backends(backends, tmp_path_factory.mktemp("openapi-db"))
    try:
        # No rate limit: events reach the codecs, not the limiter.
        with running(own, tmp_path_factory.mktemp("openapi"), EVENTFLOW_RATE_LIMIT="0") as procs:
            found = Target(procs)
            account = _seed(procs, found.session)
            keys = found.session.get(f"{procs.http_url}/api/v1/admin/accounts/{account}/keys",
                                     headers=found.headers("/api/v1/admin"), timeout=30).json()
            found.throwaway_key = keys[0]["id"]
            yield found
    finally:
        own.close()


def _strategy(method: str, path: str, target: Target, mode: GenerationMode) -> Any:
    operation = SCHEMA[path][method]
    fixed = {"key_id": target.throwaway_key} if path == "/api/v1/admin/keys/{key_id}" else None
    return operation.as_strategy(generation_mode=mode, path_parameters=fixed)


def _run(target: Target, method: str, path: str, mode: GenerationMode, examples: int) -> None:
    strategy = _strategy(method, path, target, mode)

    @settings(_SETTINGS, max_examples=examples)
    @given(case=strategy)
    def calls(case: Any) -> None:
        case.call_and_validate(base_url=target.procs.http_url, session=target.session,
                               headers=target.headers(path), checks=CHECKS, timeout=60)

    calls()


@pytest.mark.parametrize("method,path", OPERATION_KEYS, ids=[f"{m} {p}" for m, p in OPERATION_KEYS])
def test_schemathesis_valid_requests_get_documented_answers(target: Target, method: str,
                                                           path: str) -> None:
    """Requests that keep to the document: no 5xx, every answer as documented."""
    _run(target, method, path, GenerationMode.POSITIVE, POSITIVE_EXAMPLES)


@pytest.mark.parametrize("method,path", BREAKABLE_KEYS, ids=[f"{m} {p}" for m, p in BREAKABLE_KEYS])
def test_schemathesis_invalid_requests_get_documented_refusals(target: Target, method: str,
                                                              path: str) -> None:
    """Requests that break the document: no 5xx, every refusal as documented."""
    _run(target, method, path, GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES)



