"""Screen 5, Workflows: the list with its active switch, a new workflow from a recipe or a
definition, a workflow's diagram, versions, runs and simulator, and a run's step log."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
from starlette.responses import RedirectResponse, Response

from eventflow.v1 import (
    console_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    templates_pb2,
    templates_pb2_grpc,
    workflows_pb2,
    workflows_pb2_grpc,
)
from server.console.diagram import layout
from server.console.web import Failure, Page, failure, read_json
from server.errors import InvalidArgument, Violation
from server.gateway.http import path_id
from server.ingest.model import EventInput
from server.ingest.validation import check_fields

RUNS_PAGE = 50
OPEN_STATUSES = ("running", "waiting")


def _stub(ctx: Page) -> workflows_pb2_grpc.WorkflowServiceStub:
    return ctx.stub(workflows_pb2_grpc.WorkflowServiceStub)


def _doc(w: workflows_pb2.Workflow) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(w.definition_json)
    return doc


async def workflow_list(ctx: Page) -> Response:
    reply = await _stub(ctx).ListWorkflows(workflows_pb2.ListWorkflowsRequest(),
                                           metadata=ctx.meta)
    rows = [(w, _doc(w)) for w in reply.workflows]
    return ctx.render("workflows.html", rows=rows)


async def _choices(ctx: Page) -> tuple[list[str], list[Any]]:
    types = await ctx.stub(events_pb2_grpc.EventServiceStub).ListEventTypes(
        events_pb2.ListEventTypesRequest(), metadata=ctx.meta)
    templates = await ctx.stub(templates_pb2_grpc.TemplateServiceStub).ListTemplates(
        templates_pb2.ListTemplatesRequest(), metadata=ctx.meta)
    return [t.key for t in types.event_types], list(templates.templates)


# The recipe form's fields by the wire name of what they fill in (blocks by the recipe's ids).
_FORM_FIELDS = {"name": "name", "trigger.eventTypeKey": "type", "trigger": "type",
                "wait.duration": "wait", "mail.templateId": "template", "mail.to": "to",
                "mail.jsonParam": "json_param"}


def _field_errors(error: Failure | None, values: dict[str, str]) -> tuple[dict[str, str], list[Any]]:
    """The violations of a recipe form placed beside its fields; the rest stay above it."""
    if error is None or values.get("definition", "").strip():
        return {}, list(error.violations) if error else []
    ids = [b["id"] for b in recipe(values)["blocks"]]
    placed: dict[str, str] = {}
    rest = []
    for v in error.violations:
        name = v.field
        if name.startswith("blocks["):
            index, _, tail = name[len("blocks["):].partition("]")
            if index.isdigit() and int(index) < len(ids):
                name = f"{ids[int(index)]}{tail}"
        target = _FORM_FIELDS.get(name)
        if target and target not in placed:
            placed[target] = v.message
        else:
            rest.append(v)
    return placed, rest


async def _new_form(ctx: Page, *, values: dict[str, str], status: int = 200,
                    error: Failure | None = None, prefill: bool = False) -> Response:
    types, templates = await _choices(ctx)
    if prefill and not values["type"] and len(types) == 1:
        values["type"] = types[0]  # the account's one event type: the one to start from
    if prefill and not values["name"] and values["type"]:
        values["name"] = values["type"].replace("_", " ")
    if prefill and values["type"] and not ctx.request.query_params.get("json"):
        # The JSON param the type's events carry (the seed's "items" only where they do).
        sample, recorded = await _sample_body(ctx, values["type"])
        params = [p for p in sample.get("params") or [] if isinstance(p, dict)]
        if recorded and values["json_param"] not in [p.get("name") for p in params]:
            values["json_param"] = next((str(p["name"]) for p in params if isinstance(
                p.get("value"), dict) and "array" in p["value"]), "")
    placed, rest = _field_errors(error, values)
    return ctx.render("workflow_new.html", status=status, v=values, types=types,
                      templates=templates, error=error, placed=placed, rest=rest,
                      examples=examples(values.get("type") or (types[0] if types else ""),
                                        templates[0].id if templates else 0))


def examples(type_key: str, template_id: int) -> list[tuple[str, str]]:
    """The seed's task blocks as definitions to start from: (title, JSON)."""
    trigger = {"eventTypeKey": type_key or "abandoned_cart"}
    docs = [
        (("Send obligatory (transactional) email: sent whatever the contact's subscription, "
          "except to blacklisted contacts"), {
             "name": "transactional email", "active": True, "trigger": trigger,
             "start": "mail", "blocks": [{"id": "mail", "type": "transactional_email",
                                          "templateId": template_id or 1, "to": "${email}"}]}),
        (("Create/Update contact: create_contact makes the event's contact (update_contact "
          "takes the same fields and skips contacts that do not exist)"), {
             "name": "create contact", "active": True, "trigger": trigger,
             "start": "contact", "blocks": [{"id": "contact", "type": "create_contact",
                                             "email": "${email}"}]}),
    ]
    return [(title, json.dumps(doc, indent=2, ensure_ascii=False)) for title, doc in docs]


async def new_workflow(ctx: Page) -> Response:
    q = ctx.request.query_params
    return await _new_form(ctx, prefill=True, values={
        "name": "", "type": q.get("type", ""), "wait": "PT1M", "template": q.get("template", ""),
        "to": "${email}", "json_param": q.get("json") or "items", "active": "1",
        "definition": ""})


def recipe(values: dict[str, str]) -> dict[str, Any]:
    """The definition the "wait, then send an email" form describes."""
    template = values.get("template", "").strip()
    mail: dict[str, Any] = {"id": "mail", "type": "email",
                            "templateId": int(template) if template.isdigit() else template,
                            "to": values.get("to", "").strip() or "${email}"}
    if values.get("json_param", "").strip():
        mail["jsonParam"] = values["json_param"].strip()
    blocks: list[dict[str, Any]] = []
    if values.get("wait", "").strip():
        blocks.append({"id": "wait", "type": "timer", "duration": values["wait"].strip(),
                       "next": "mail"})
    blocks.append(mail)
    return {"name": values.get("name", "").strip(), "active": values.get("active") == "1",
            "trigger": {"eventTypeKey": values.get("type", "").strip()},
            "start": blocks[0]["id"], "blocks": blocks}


def trigger_violations(text: str) -> list[Violation]:
    """The event API's rule for an eventTypeKey, applied to a definition's trigger: a key
    the API refuses (a slash, a quote, over 100 characters) names a type no event can
    have, so the workflow could never run."""
    try:
        doc = json.loads(text)
        key = doc["trigger"]["eventTypeKey"]
    except (ValueError, RecursionError, TypeError, KeyError):
        return []  # the server's definition check says what is wrong with it
    if not isinstance(key, str) or not key.strip():
        return []
    _, found = check_fields(EventInput(event_type_key=key, key_value="x"))
    return [Violation("trigger.eventTypeKey", f"{v.message} (the event API refuses such a "
                      "key, so no event could start this workflow)")
            for v in found if v.field == "eventTypeKey"]


def param_warnings(doc: dict[str, Any], sample: dict[str, Any], recorded: bool) -> list[str]:
    """Email blocks whose jsonParam is not a param of the trigger type's last event."""
    if not recorded:
        return []
    names = [str(p.get("name")) for p in sample.get("params") or [] if isinstance(p, dict)]
    out = []
    for block in doc.get("blocks") or []:
        param = block.get("jsonParam") if isinstance(block, dict) else None
        if isinstance(param, str) and param and param not in names:
            out.append(f"Block \"{block.get('id')}\" reads JSON param {param!r}, but the last "
                       f"{sample.get('eventTypeKey')} event has no such param (it has: "
                       f"{', '.join(names) or 'none'}): its letters would fail with "
                       "Wrong Format. Set the block's jsonParam to one of those, or remove it.")
    return out


async def create_workflow(ctx: Page) -> Response:
    form = await ctx.form()
    values = {k: form.get(k, "") for k in ("name", "type", "wait", "template", "to",
                                           "json_param", "active", "definition")}
    text = values["definition"].strip()
    if text:
        try:
            read_json(text, "definition")
        except InvalidArgument as exc:
            return await _new_form(ctx, values=values, status=400, error=failure(exc))
    else:
        text = json.dumps(recipe(values))
    bad_key = trigger_violations(text)
    if bad_key:
        return await _new_form(ctx, values=values, status=400,
                               error=failure(InvalidArgument.from_violations(bad_key)))
    try:
        created = await _stub(ctx).CreateWorkflow(
            workflows_pb2.CreateWorkflowRequest(definition_json=text), metadata=ctx.meta)
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
            raise
        return await _new_form(ctx, values=values, status=400, error=failure(exc))
    return RedirectResponse(f"/workflows/{created.id}?created=1", status_code=303)


async def _sample_body(ctx: Page, event_type_key: str) -> tuple[dict[str, Any], bool]:
    """An event of the trigger type to start from: the newest one received (True), or one
    with only an email param when none has come yet (False)."""
    reply = await ctx.stub(events_pb2_grpc.EventServiceStub).ListEvents(
        events_pb2.ListEventsRequest(event_type_key=event_type_key, page_size=1),
        metadata=ctx.meta)
    if reply.events:
        body: dict[str, Any] = json.loads(reply.events[0].body_json)
        return body, True
    return {"eventTypeKey": event_type_key, "keyValue": "site@com.net",
            "params": [{"name": "email", "value": "site@ukr.net"}]}, False


def _curl_body(body: dict[str, Any]) -> str:
    """``body`` as the text of curl's ``-d '…'``: indented, single quotes escaped for sh."""
    shown = {k: body[k] for k in ("eventTypeKey", "keyValue", "params") if k in body}
    return json.dumps(shown, indent=2, ensure_ascii=False).replace("'", "'\\''")


def trouble(steps: Any) -> str:
    """What a run's steps skipped or failed, said in a line ("" when every step was done):
    a run that skipped its letter still ends completed, and should not look clean."""
    bad = [s for s in steps if s.status in ("skipped", "failed")]
    if not bad:
        return ""
    first = bad[0]
    why = str(json.loads(first.detail_json or "{}").get("reason") or "")
    count = f"{len(bad)} step{'s' if len(bad) != 1 else ''} {first.status}"
    return f"{count}: {first.block_id}" + (f" ({why})" if why else "")


async def _troubles(ctx: Page, runs: Any) -> dict[int, str]:
    """``trouble`` of each ended run of the list that has one."""
    ended = [r.id for r in runs if r.status == "completed"]
    replies = await asyncio.gather(*(_stub(ctx).ListRunSteps(
        workflows_pb2.ListRunStepsRequest(run_id=i), metadata=ctx.meta) for i in ended))
    found = {i: trouble(r.steps) for i, r in zip(ended, replies, strict=True)}
    return {i: t for i, t in found.items() if t}


def _as_simulated(result: dict[str, Any]) -> dict[str, Any]:
    """A simulation's steps say what would be sent: nothing is."""
    for step in result.get("steps") or []:
        detail = step.get("detail")
        if isinstance(detail, dict) and detail.get("status") == "sent":
            step["detail"] = {**detail, "status": "would be sent (simulated)"}
    return result


async def workflow_page(ctx: Page, *, status: int = 200, sim: dict[str, Any] | None = None,
                        sim_events: str = "", error: Failure | None = None,
                        definition: str = "") -> Response:
    workflow_id = path_id(ctx.request, "workflow_id")
    w = await _stub(ctx).GetWorkflow(workflows_pb2.GetWorkflowRequest(id=workflow_id),
                                     metadata=ctx.meta)
    doc = _doc(w)
    versions = await ctx.stub(console_pb2_grpc.ConsoleServiceStub).ListWorkflowVersions(
        workflows_pb2.GetWorkflowRequest(id=workflow_id), metadata=ctx.meta)
    runs = await _stub(ctx).ListRuns(workflows_pb2.ListRunsRequest(
        workflow_id=workflow_id, page_size=RUNS_PAGE), metadata=ctx.meta)
    trigger = (doc.get("trigger") or {}).get("eventTypeKey", "")
    shown = {k: v for k, v in doc.items() if k != "active"}
    sample, recorded = await _sample_body(ctx, trigger)
    return ctx.render(
        "workflow.html", status=status, w=w, doc=doc, diagram=layout(doc),
        versions=versions.workflows, runs=runs.runs, trigger=trigger, sim=sim, error=error,
        troubles=await _troubles(ctx, runs.runs),
        sim_events=sim_events or json.dumps([{**sample, "at": "PT0S"}], indent=2,
                                            ensure_ascii=False),
        curl_body=_curl_body(sample), curl_recorded=recorded,
        param_warnings=param_warnings(doc, sample, recorded),
        definition=definition or json.dumps(shown, indent=2, ensure_ascii=False),
        open_runs=any(r.status in OPEN_STATUSES for r in runs.runs))


async def show_workflow(ctx: Page) -> Response:
    return await workflow_page(ctx)


async def set_active(ctx: Page) -> Response:
    workflow_id = path_id(ctx.request, "workflow_id")
    form = await ctx.form()
    req = workflows_pb2.GetWorkflowRequest(id=workflow_id)
    if form.get("active") == "1":
        await _stub(ctx).ActivateWorkflow(req, metadata=ctx.meta)
    else:
        await _stub(ctx).DeactivateWorkflow(req, metadata=ctx.meta)
    back = form.get("back", "")
    return RedirectResponse(back if back == "/workflows" else f"/workflows/{workflow_id}", 303)


async def update_workflow(ctx: Page) -> Response:
    workflow_id = path_id(ctx.request, "workflow_id")
    text = (await ctx.form()).get("definition", "")
    try:
        read_json(text, "definition")
        bad_key = trigger_violations(text)
        if bad_key:
            raise InvalidArgument.from_violations(bad_key)
        await _stub(ctx).UpdateWorkflow(workflows_pb2.UpdateWorkflowRequest(
            id=workflow_id, definition_json=text), metadata=ctx.meta)
    except InvalidArgument as exc:
        return await workflow_page(ctx, status=400, definition=text, error=failure(exc))
    except grpc.aio.AioRpcError as exc:
        if exc.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.NOT_FOUND):
            raise
        return await workflow_page(ctx, status=400, definition=text, error=failure(exc))
    return RedirectResponse(f"/workflows/{workflow_id}?saved=1", status_code=303)


async def simulate(ctx: Page) -> Response:
    workflow_id = path_id(ctx.request, "workflow_id")
    if ctx.request.method == "GET":  # a reload of the result page
        return RedirectResponse(f"/workflows/{workflow_id}#simulator", status_code=303)
    events_text = (await ctx.form()).get("events", "")
    w = await _stub(ctx).GetWorkflow(workflows_pb2.GetWorkflowRequest(id=workflow_id),
                                     metadata=ctx.meta)
    try:
        read_json(events_text, "events")
        reply = await _stub(ctx).SimulateWorkflow(workflows_pb2.SimulateWorkflowRequest(
            definition_json=w.definition_json, events_json=events_text), metadata=ctx.meta)
    except InvalidArgument as exc:
        err = failure(exc)
        return await workflow_page(ctx, status=400, sim_events=events_text, sim={
            "error": err.message, "violations": err.violations})
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
            raise
        err = failure(exc)
        return await workflow_page(ctx, status=400, sim_events=events_text, sim={
            "error": err.message, "violations": err.violations})
    return await workflow_page(ctx, sim=_as_simulated(json.loads(reply.result_json)),
                               sim_events=events_text)


async def run_page(ctx: Page) -> Response:
    run_id = path_id(ctx.request, "run_id")
    reply = await _stub(ctx).ListRunSteps(workflows_pb2.ListRunStepsRequest(run_id=run_id),
                                          metadata=ctx.meta)
    messages = await _stub(ctx).ListMessages(workflows_pb2.ListMessagesRequest(run_id=run_id),
                                             metadata=ctx.meta)
    steps = [(s, json.loads(s.detail_json or "{}")) for s in reply.steps]
    return ctx.render("run.html", r=reply.run, steps=steps, messages=messages.messages,
                      trouble=trouble(reply.steps),
                      open=reply.run.status in OPEN_STATUSES)
