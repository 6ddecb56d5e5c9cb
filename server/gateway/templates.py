"""Message routes: preview (`POST /api/v1/messages/preview`) and stored templates."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventflow.v1 import templates_pb2, templates_pb2_grpc
from server.api.status import GRPC_MAP, ErrorReport
from server.errors import InvalidArgument, TemplateError, Violation
from server.gateway.http import (
    auth_metadata,
    endpoint,
    error_response,
    json_object,
    json_response,
    path_id,
    read_json,
)
from server.gateway.state import GatewayState

MAX_TEMPLATE_BODY = 1024 * 1024


def _text(doc: dict[str, Any], name: str, out: list[Violation], *, required: bool = False) -> str:
    value = doc.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        out.append(Violation(name, "must be a string"))
        return ""
    if required and not value:
        out.append(Violation(name, "is required"))
    return str(value)


def _fields(doc: dict[str, Any]) -> dict[str, str]:
    """A template body's four texts, each checked to be a string."""
    out: list[Violation] = []
    fields = {name: _text(doc, name, out) for name in ("name", "subject", "html", "text")}
    if out:
        raise InvalidArgument.from_violations(out)
    return fields


def _template(t: templates_pb2.MessageTemplate) -> dict[str, Any]:
    created = t.created_at.ToDatetime().isoformat(timespec="milliseconds") + "Z"
    return {"id": t.id, "name": t.name, "subject": t.subject, "html": t.html, "text": t.text,
            "createdAt": created}


def _preview_request(doc: Any) -> templates_pb2.RenderTemplateRequest:
    doc = json_object(doc)
    out: list[Violation] = []
    req = templates_pb2.RenderTemplateRequest(template=_text(doc, "template", out, required=True))
    json_param = doc.get("jsonParam")
    if json_param is not None and not isinstance(json_param, str):
        out.append(Violation("jsonParam", "must be a string naming an event param"))
    elif json_param:
        req.json_param = json_param
    if "event" in doc and "context" in doc:
        out.append(Violation("context", "give either context or event, not both"))
    elif "event" in doc:
        event = doc["event"]
        # A string is JSON text to parse on the server, where bad JSON is "Wrong Format".
        req.event_json = event if isinstance(event, str) else orjson.dumps(event).decode()
    elif "context" in doc:
        ctx = doc["context"]
        req.context_json = ctx if isinstance(ctx, str) else orjson.dumps(ctx).decode()
    if out:
        raise InvalidArgument.from_violations(out)
    return req


def _failure(error: templates_pb2.TemplateError) -> ErrorReport:
    """A preview's render error (data in the gRPC answer) as the report of a TemplateError."""
    code, reason = GRPC_MAP[TemplateError]
    return ErrorReport(code, reason, error.message, metadata={
        "line": str(error.line), "column": str(error.column), "kind": error.kind})


def routes(state: GatewayState) -> list[Route]:
    def stub() -> templates_pb2_grpc.TemplateServiceStub:
        return state.stub(templates_pb2_grpc.TemplateServiceStub)

    @endpoint
    async def preview(request: Request) -> Response:
        meta = auth_metadata(request)
        doc = await read_json(request, limit=MAX_TEMPLATE_BODY)
        reply = await stub().RenderTemplate(_preview_request(doc), metadata=meta)
        if reply.HasField("error"):
            return error_response(_failure(reply.error))
        return json_response({"rendered": reply.rendered})

    @endpoint
    async def create(request: Request) -> Response:
        meta = auth_metadata(request)
        doc = json_object(await read_json(request, limit=MAX_TEMPLATE_BODY))
        reply = await stub().CreateTemplate(templates_pb2.CreateTemplateRequest(**_fields(doc)),
                                            metadata=meta)
        return json_response({"id": reply.id})

    @endpoint
    async def replace(request: Request) -> Response:
        """PUT: the whole template (name, subject, html, text) replaces the stored one."""
        meta = auth_metadata(request)
        template_id = path_id(request, "template_id")
        doc = json_object(await read_json(request, limit=MAX_TEMPLATE_BODY))
        reply = await stub().UpdateTemplate(templates_pb2.UpdateTemplateRequest(
            id=template_id, **_fields(doc)), metadata=meta)
        return json_response(_template(reply))

    @endpoint
    async def list_all(request: Request) -> Response:
        reply = await stub().ListTemplates(templates_pb2.ListTemplatesRequest(),
                                           metadata=auth_metadata(request))
        return json_response([_template(t) for t in reply.templates])

    @endpoint
    async def get_one(request: Request) -> Response:
        reply = await stub().GetTemplate(
            templates_pb2.GetTemplateRequest(id=path_id(request, "template_id")),
                                         metadata=auth_metadata(request))
        return json_response(_template(reply))

    return [
        Route("/api/v1/messages/preview", preview, methods=["POST"]),
        Route("/api/v1/messages", create, methods=["POST"]),
        Route("/api/v1/messages", list_all, methods=["GET"]),
        Route("/api/v1/messages/{template_id}", get_one, methods=["GET"]),
        Route("/api/v1/messages/{template_id}", replace, methods=["PUT"]),
    ]
