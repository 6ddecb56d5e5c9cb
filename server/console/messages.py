"""Screen 4, Messages: the list, the editor (subject, HTML, text in Velocity) and its live
preview against an event from history or pasted JSON ("Configuring dynamic content")."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import grpc
from starlette.responses import JSONResponse, RedirectResponse, Response

from eventflow.v1 import (
    events_pb2,
    events_pb2_grpc,
    templates_pb2,
    templates_pb2_grpc,
    workflows_pb2,
    workflows_pb2_grpc,
)
from server.console.web import MAX_FORM_BYTES, Page, failure, read_json
from server.errors import InvalidArgument, Violation
from server.gateway.http import path_id
from server.templating.store import MAX_SOURCE

PARTS = ("subject", "html", "text")
RECENT_EVENTS = 30


def _stub(ctx: Page) -> templates_pb2_grpc.TemplateServiceStub:
    return ctx.stub(templates_pb2_grpc.TemplateServiceStub)


async def message_list(ctx: Page) -> Response:
    reply = await _stub(ctx).ListTemplates(templates_pb2.ListTemplatesRequest(),
                                           metadata=ctx.meta)
    return ctx.render("messages.html", templates=reply.templates)


async def _recent_events(ctx: Page) -> list[Any]:
    reply = await ctx.stub(events_pb2_grpc.EventServiceStub).ListEvents(
        events_pb2.ListEventsRequest(page_size=RECENT_EVENTS), metadata=ctx.meta)
    return list(reply.events)


async def editor(ctx: Page, *, values: dict[str, str], status: int = 200,
                 error: dict[str, Any] | None = None, template_id: int = 0) -> Response:
    events = await _recent_events(ctx)
    chosen = values.get("event_id") or ctx.request.query_params.get("event", "")
    if not chosen and events:
        chosen = str(events[0].id)
    return ctx.render("message_edit.html", status=status, v=values, error=error,
                      max_part=MAX_SOURCE, events=events, chosen=chosen, template_id=template_id,
                      hints={e.id: _param_hint(e) for e in events})


def _param_hint(e: events_pb2.StoredEvent) -> dict[str, str]:
    """What the preview's "nothing printed" hint says of an event: its param names, and the
    first param holding an ``array`` member (the seed's ``items``), the JSON param to try."""
    arrays = [p.name for p in e.params
              if p.value.HasField("struct_value") and "array" in p.value.struct_value.fields]
    return {"params": ", ".join(p.name for p in e.params), "array": arrays[0] if arrays else ""}


async def new_message(ctx: Page) -> Response:
    return await editor(ctx, values={"name": "", "subject": "", "html": "", "text": "",
                                     "json_param": ctx.request.query_params.get("json", "")})


async def _sent_with(ctx: Page, template_id: int) -> str:
    """The jsonParam of the first email block that sends this message: what its letters
    read as $data, so what the preview should read too."""
    reply = await ctx.stub(workflows_pb2_grpc.WorkflowServiceStub).ListWorkflows(
        workflows_pb2.ListWorkflowsRequest(), metadata=ctx.meta)
    for w in reply.workflows:
        for block in json.loads(w.definition_json).get("blocks") or []:
            if isinstance(block, dict) and block.get("templateId") == template_id \
                    and isinstance(block.get("jsonParam"), str) and block["jsonParam"]:
                return str(block["jsonParam"])
    return ""


async def show_message(ctx: Page) -> Response:
    template_id = path_id(ctx.request, "template_id")
    t = await _stub(ctx).GetTemplate(templates_pb2.GetTemplateRequest(id=template_id),
                                     metadata=ctx.meta)
    json_param = ctx.request.query_params.get("json")
    return await editor(ctx, template_id=t.id, values={
        "name": t.name, "subject": t.subject, "html": t.html, "text": t.text,
        "json_param": await _sent_with(ctx, t.id) if json_param is None else json_param})


async def save_message(ctx: Page) -> Response:
    """``POST /messages`` makes a new message; ``POST /messages/{id}`` saves that one in place
    (``UpdateTemplate``: it keeps its id, which workflows name)."""
    template_id = path_id(ctx.request, "template_id") if "template_id" in ctx.request.path_params \
        else 0
    form = await ctx.form()
    values = {k: form.get(k, "") for k in ("name", *PARTS, "json_param", "event_id")}
    # Browsers send textarea line breaks as CRLF; templates keep the author's LF.
    for part in ("html", "text"):
        values[part] = values[part].replace("\r\n", "\n")
    if not values["name"].strip():
        return await editor(ctx, values=values, status=400, template_id=template_id,
                            error={"field": "name", "message": "Give the message a name."})
    for part in PARTS:
        if len(values[part]) > MAX_SOURCE:
            return await editor(ctx, values=values, status=400, template_id=template_id,
                                error={"field": part, "message": too_long(part,
                                                                           len(values[part]))})
    texts = {"name": values["name"].strip(), "subject": values["subject"],
             "html": values["html"], "text": values["text"]}
    try:
        if template_id:
            reply = await _stub(ctx).UpdateTemplate(templates_pb2.UpdateTemplateRequest(
                id=template_id, **texts), metadata=ctx.meta)
        else:
            reply = await _stub(ctx).CreateTemplate(templates_pb2.CreateTemplateRequest(
                **texts), metadata=ctx.meta)
    except grpc.aio.AioRpcError as exc:
        if exc.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.NOT_FOUND):
            raise
        err = failure(exc)
        return await editor(ctx, values=values, status=err.status, template_id=template_id,
                            error={"field": err.metadata.get("field") or "",
                                   "message": readable(err.message),
                                   "line": err.metadata.get("line"),
                                   "column": err.metadata.get("column")})
    # The preview's choices travel along, so the saved message shows as it was written.
    keep = urlencode({"saved": "updated" if template_id else "created",
                      "json": values["json_param"], "event": values["event_id"]})
    return RedirectResponse(f"/messages/{reply.id}?{keep}", status_code=303)


def _source(doc: dict[str, Any], event_json: str) -> dict[str, Any]:
    """The preview's data source as RenderTemplateRequest fields."""
    json_param = str(doc.get("jsonParam") or "")
    if doc.get("source") == "json":
        # Pasted JSON is $data, as in eSputnik's dynamic content window.
        return {"context_json": json.dumps({"data": doc.get("data")})}
    return {"event_json": event_json, "json_param": json_param}


def readable(message: str) -> str:
    """A template error as the editor shows it: the parser's "got:" with nothing after it
    (the line ended where it expected more) says so."""
    stripped = message.rstrip()
    return f"{stripped} the end of the line" if stripped.endswith("got:") else message


def too_long(part: str, length: int) -> str:
    return (f"The {part} is {length:,} characters; a message part may be up to "
            f"{MAX_SOURCE:,}. Shorten it (move long content to links or images) before "
            "saving: a longer one is not saved.")


def _pasted(raw: str) -> tuple[Any, dict[str, Any] | None]:
    """Pasted JSON read as the JSON API reads a body: (its value, None), or (None, the
    "Wrong Format" the preview shows: where it does not parse, or that it nests too deep)."""
    try:
        return read_json(raw, "JSON"), None
    except InvalidArgument as exc:
        try:
            json.loads(raw)
        except json.JSONDecodeError as bad:
            return None, {"message": f"Wrong Format: the JSON does not parse ({bad.msg} at "
                          f"line {bad.lineno}, column {bad.colno})", "line": bad.lineno,
                          "column": bad.colno, "kind": "wrong_format"}
        except (ValueError, RecursionError):
            pass
        v = exc.violations[0] if exc.violations else None
        why = f"{v.field} {v.message}" if v else exc.message
        return None, {"message": f"Wrong Format: {why}", "line": 0, "column": 0,
                      "kind": "wrong_format"}


def _event_id(raw: Any) -> int:
    """The chosen event's id (a number, or digits as text); 0 when none is chosen."""
    if raw in (None, ""):
        return 0
    text = str(raw)
    if isinstance(raw, bool) or not (text.isascii() and text.isdigit()):
        raise InvalidArgument.from_violations([Violation("eventId", "must be an event id")])
    return int(text)


async def preview(ctx: Page) -> Response:
    """``POST /messages/preview`` (JSON, CSRF header): each part rendered, or its error."""
    raw = await ctx.request.body()
    if len(raw) > MAX_FORM_BYTES:
        return JSONResponse({"error": f"the message is over {MAX_FORM_BYTES // 2**20} MiB: "
                             "shorten it to see a preview"}, 413)
    doc = read_json(raw, "preview request")
    if not isinstance(doc, dict):
        return JSONResponse({"error": "the preview request must be an object"}, 400)
    if doc.get("source") == "json":
        doc["data"], bad = _pasted(str(doc.get("json") or ""))
        if bad is not None:
            return JSONResponse({"data": bad})
        event_json = ""
    else:
        event_id = _event_id(doc.get("eventId"))
        if not event_id:
            return JSONResponse({"data": {"message": "Choose an event from history, or paste "
                                          "JSON data.", "kind": "no_data"}})
        event = await ctx.stub(events_pb2_grpc.EventServiceStub).GetEvent(
            events_pb2.GetEventRequest(id=event_id), metadata=ctx.meta)
        event_json = event.body_json
    source = _source(doc, event_json)
    out: dict[str, Any] = {}
    if doc.get("source") == "json" and not isinstance(doc["data"], dict):
        kind = {list: "a list", str: "a string", bool: "true or false"}.get(
            type(doc["data"]), "a number" if isinstance(doc["data"], (int, float)) else "null")
        out["note"] = (f"The pasted JSON is {kind}, not an object: $data.get('name') reads "
                       "an object's members, so nothing can be found in it. Paste an object, "
                       "e.g. {\"array\": [1, 2, 3]}, and loop over $data.get('array').")
    for part in PARTS:
        text = str(doc.get(part) or "")
        if not text:
            out[part] = {"rendered": ""}
            continue
        if len(text) > MAX_SOURCE:  # said here, beside the part, with what to do
            out[part] = {"error": {"message": too_long(part, len(text)), "line": 0,
                                   "column": 0, "kind": "too_long"}}
            continue
        reply = await _stub(ctx).RenderTemplate(
            templates_pb2.RenderTemplateRequest(template=text, **source), metadata=ctx.meta)
        if reply.HasField("error"):
            e = reply.error
            out[part] = {"error": {"message": readable(e.message), "line": e.line, "column": e.column,
                                   "kind": e.kind}}
        else:
            out[part] = {"rendered": reply.rendered}
    return JSONResponse(out)
