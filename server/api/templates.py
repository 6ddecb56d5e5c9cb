"""TemplateService: preview ("View message") and stored message templates."""

from __future__ import annotations

from typing import Any

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from eventflow.v1 import templates_pb2, templates_pb2_grpc
from server.api.errors import current_account
from server.codec.jsonbody import event_from_json
from server.codec.proto import request_to_input
from server.codec.values import dt_to_ts, value_to_py
from server.errors import InvalidArgument, Violation
from server.templating import TemplateError, WrongFormat, build_context, compile_template
from server.templating.context import parse_json
from server.templating.pool import RenderPart, RenderPool
from server.templating.store import (
    StoredTemplate,
    create_template,
    get_template,
    list_templates,
    update_template,
)


def _context_from(request: templates_pb2.RenderTemplateRequest) -> dict[str, Any]:
    """The variables of a preview; raises WrongFormat for JSON text that does not parse."""
    source = request.WhichOneof("source")
    json_param = request.json_param or None
    if source == "context":
        return {k: value_to_py(v) for k, v in request.context.fields.items()}
    if source == "context_json":
        doc = parse_json(request.context_json)
        if not isinstance(doc, dict):
            raise WrongFormat("the context must be a JSON object whose keys are variables")
        return doc
    if source == "event":
        params = request_to_input(request.event).params
        return build_context(params=params, json_param=json_param)
    if source == "event_json":
        doc = parse_json(request.event_json)
        try:
            params = event_from_json(doc).params
        except InvalidArgument as exc:
            raise WrongFormat(exc.message) from None
        return build_context(params=params, json_param=json_param)
    return {}


async def _preview(request: templates_pb2.RenderTemplateRequest, *, renderer: RenderPool,
                   account_id: int) -> templates_pb2.RenderTemplateResponse:
    try:
        compile_template(request.template)  # syntax errors answered here, without a child
        (rendered,) = await renderer.render([RenderPart(request.template)],
                                            _context_from(request), account_id=account_id)
    except TemplateError as exc:
        # A preview's failure is its answer (the proto's contract), not a failed call.
        return templates_pb2.RenderTemplateResponse(error=templates_pb2.TemplateError(
            message=exc.message, line=exc.line or 0, column=exc.column or 0, kind=exc.kind))
    return templates_pb2.RenderTemplateResponse(rendered=rendered)


def _message(t: StoredTemplate) -> templates_pb2.MessageTemplate:
    out = templates_pb2.MessageTemplate(id=t.id, name=t.name, subject=t.subject, html=t.html,
                                        text=t.text)
    dt_to_ts(t.created_at, out.created_at)
    return out


class TemplateService(templates_pb2_grpc.TemplateServiceServicer):
    def __init__(self, engine: AsyncEngine, renderer: RenderPool) -> None:
        self._engine = engine
        self._renderer = renderer

    async def RenderTemplate(self, request: templates_pb2.RenderTemplateRequest,
                             context: grpc.aio.ServicerContext[Any, Any]
                             ) -> templates_pb2.RenderTemplateResponse:
        if len(request.template) > 256 * 1024:
            raise InvalidArgument.from_violations(
                [Violation("template", "is longer than 262144 characters")])
        # Rendering runs in the pool's child processes, bounded in time and memory there,
        # so this loop keeps answering other callers meanwhile.
        return await _preview(request, renderer=self._renderer,
                              account_id=current_account.get())

    async def CreateTemplate(self, request: templates_pb2.CreateTemplateRequest,
                             context: grpc.aio.ServicerContext[Any, Any]) -> templates_pb2.MessageTemplate:
        async with self._engine.begin() as conn:
            stored = await create_template(conn, account_id=current_account.get(),
                                           name=request.name, subject=request.subject,
                                           html=request.html, text=request.text)
        return _message(stored)

    async def UpdateTemplate(self, request: templates_pb2.UpdateTemplateRequest,
                             context: grpc.aio.ServicerContext[Any, Any]) -> templates_pb2.MessageTemplate:
        async with self._engine.begin() as conn:
            stored = await update_template(conn, account_id=current_account.get(),
                                           template_id=request.id, name=request.name,
                                           subject=request.subject, html=request.html,
                                           text=request.text)
        return _message(stored)

    async def ListTemplates(self, request: templates_pb2.ListTemplatesRequest,
                            context: grpc.aio.ServicerContext[Any, Any]
                            ) -> templates_pb2.ListTemplatesResponse:
        async with self._engine.connect() as conn:
            rows = await list_templates(conn, account_id=current_account.get())
        return templates_pb2.ListTemplatesResponse(templates=[_message(t) for t in rows])

    async def GetTemplate(self, request: templates_pb2.GetTemplateRequest,
                          context: grpc.aio.ServicerContext[Any, Any]) -> templates_pb2.MessageTemplate:
        async with self._engine.connect() as conn:
            return _message(await get_template(conn, account_id=current_account.get(),
                                               template_id=request.id))


__all__ = ["TemplateService"]
