"""Screen 2: event types. The list, and one type's page: its settings form (segmentation,
create contacts, "Validate parameters") changed through ``EventTypeService.UpdateEventType``,
the structure of its params as recorded, and the nested paths seen in its newest events."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import quote

import grpc
from starlette.responses import RedirectResponse, Response

from eventflow.v1 import (
    console_pb2,
    console_pb2_grpc,
    event_types_pb2,
    event_types_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
)
from server.console.web import Failure, Page, failure
from server.errors import InvalidArgument, Violation
from server.eventtypes.settings import ParamRule, SettingsPatch, check_patch

# Empty rows under the list, to add names the type has not been seen with.
BLANK_ROWS = 2
STATES = ("required", "optional", "")
Rule = tuple[str, bool]


@dataclass(slots=True)
class RuleRow:
    """One row of the "Validate parameters" table: a name and whether it is required
    (``state`` "required" / "optional"; "" when the name is not in the list)."""

    name: str
    state: str
    recorded: bool = False
    error: str = ""


@dataclass(slots=True)
class SettingsForm:
    """The form as shown (or as sent back with its errors): values, and the values the
    person saw, so that a save sends only what they changed (patch semantics)."""

    segmentation: bool
    create_contacts: bool
    rows: list[RuleRow]
    was_segmentation: bool
    was_create_contacts: bool
    was_rules: list[Rule]
    errors: list[Violation] = field(default_factory=list)


def _rows(rules: list[Rule], recorded: list[str]) -> list[RuleRow]:
    listed = {name for name, _ in rules}
    rows = [RuleRow(name, "required" if req else "optional", recorded=name in recorded)
            for name, req in rules]
    rows += [RuleRow(name, "", recorded=True) for name in recorded if name not in listed]
    rows += [RuleRow("", "required") for _ in range(BLANK_ROWS)]
    return rows


def _form_of(t: events_pb2.EventType) -> SettingsForm:
    rules = [(r.name, r.required) for r in t.validate_params]
    return SettingsForm(segmentation=t.segmentation, create_contacts=t.create_contacts,
                        rows=_rows(rules, [p.name for p in t.params]),
                        was_segmentation=t.segmentation, was_create_contacts=t.create_contacts,
                        was_rules=rules)


async def event_types(ctx: Page) -> Response:
    reply = await ctx.stub(console_pb2_grpc.ConsoleServiceStub).ListEventTypeStats(
        console_pb2.ListEventTypeStatsRequest(), metadata=ctx.meta)
    listed = await ctx.stub(events_pb2_grpc.EventServiceStub).ListEventTypes(
        events_pb2.ListEventTypesRequest(), metadata=ctx.meta)
    settings = {t.key: t for t in listed.event_types}
    return ctx.render("event_types.html", types=reply.event_types, settings=settings)


async def _show(ctx: Page, key: str, form: SettingsForm | None = None, *, status: int = 200
                ) -> Response:
    detail = await ctx.stub(console_pb2_grpc.ConsoleServiceStub).GetEventTypeDetail(
        console_pb2.GetEventTypeDetailRequest(key=key), metadata=ctx.meta)
    t = await ctx.stub(event_types_pb2_grpc.EventTypeServiceStub).GetEventType(
        event_types_pb2.GetEventTypeRequest(key=key), metadata=ctx.meta)
    return ctx.render("event_type.html", status=status, d=detail, s=detail.stats, t=t,
                      form=form or _form_of(t), recorded=[p.name for p in t.params],
                      saved=ctx.request.query_params.get("saved") == "1")


async def event_type(ctx: Page) -> Response:
    return await _show(ctx, ctx.request.path_params["key"])


def _flag(raw: str | None, name: str) -> bool:
    if raw in (None, "", "0"):
        return False
    if raw == "1":
        return True
    raise InvalidArgument.from_violations([Violation(name, f"must be 1 or 0, not {raw!r}")])


def _was_rules(raw: str) -> list[Rule]:
    try:
        value = json.loads(raw)
        return [(str(name), bool(req)) for name, req in value]
    except (ValueError, TypeError, RecursionError):
        raise InvalidArgument.from_violations([Violation(
            "was_rules", "is not the list this form was shown with; reload the page")]) from None


async def save_event_type(ctx: Page) -> Response:
    """The settings form: only the settings the person changed go to UpdateEventType; a
    400 is shown beside the field it names, with the values as they were sent."""
    key = ctx.request.path_params["key"]
    data = await ctx.request.form()
    if "was_rules" not in data:
        raise InvalidArgument.from_violations([Violation(
            "was_rules", "is required: send the settings form of the event type's page")])
    stub = ctx.stub(event_types_pb2_grpc.EventTypeServiceStub)
    # The type must be this account's already (the form is on its page): a save never
    # creates a type, so a key of another account's answers 404 like every page.
    await stub.GetEventType(event_types_pb2.GetEventTypeRequest(key=key), metadata=ctx.meta)
    names = [str(v) for v in data.getlist("rule_name")]
    states = [str(v) for v in data.getlist("rule_state")]
    recorded = {str(v) for v in data.getlist("rule_recorded")}
    if len(names) != len(states) or any(s not in STATES for s in states):
        raise InvalidArgument.from_violations([Violation(
            "rule_state", "each row needs a name and one of required, optional or empty")])
    form = SettingsForm(
        segmentation=_flag(str(data.get("segmentation") or ""), "segmentation"),
        create_contacts=_flag(str(data.get("create_contacts") or ""), "create_contacts"),
        rows=[RuleRow(n.strip(), s, recorded=n in recorded) for n, s in zip(names, states)],
        was_segmentation=_flag(str(data.get("was_segmentation") or ""), "was_segmentation"),
        was_create_contacts=_flag(str(data.get("was_create_contacts") or ""),
                                  "was_create_contacts"),
        was_rules=_was_rules(str(data["was_rules"])))
    # Every named row, "not checked" ones too (they are never sent), under the server's
    # own rule: a name in two rows is the person's mistake to see, not one to merge away.
    named = [i for i, r in enumerate(form.rows) if r.name]
    try:
        check_patch(key, SettingsPatch(validate_params=tuple(
            ParamRule(form.rows[i].name, form.rows[i].state == "required") for i in named)))
    except InvalidArgument as exc:
        _place_errors(form, failure(exc), named)
        return await _show(ctx, key, form, status=400)
    # The list sent: rows with a name and a state, in order; row_of maps its index back.
    row_of = [i for i, r in enumerate(form.rows) if r.name and r.state]
    rules = [(form.rows[i].name, form.rows[i].state == "required") for i in row_of]
    req = event_types_pb2.UpdateEventTypeRequest(key=key)
    if form.segmentation != form.was_segmentation:
        req.segmentation = form.segmentation
    if form.create_contacts != form.was_create_contacts:
        req.create_contacts = form.create_contacts
    if rules != form.was_rules:
        req.validate_params.SetInParent()
        for name, required in rules:
            req.validate_params.params.add(name=name, required=required)
    if len(req.ListFields()) > 1:
        try:
            await stub.UpdateEventType(req, metadata=ctx.meta)
        except grpc.aio.AioRpcError as exc:
            shown = failure(exc)
            if shown.status != 400:
                raise  # the page's one mapping: a 404, a 503 as their own pages
            _place_errors(form, shown, row_of)
            return await _show(ctx, key, form, status=shown.status)
    return RedirectResponse(f"/event-types/{quote(key, safe='')}?saved=1", status_code=303)


def _place_errors(form: SettingsForm, found: Failure, row_of: list[int]) -> None:
    """Each violation beside its row (``validateParams[i].name``); the rest above the form."""
    for v in found.violations:
        prefix, _, rest = v.field.partition("[")
        index = rest.split("]", 1)[0]
        if prefix == "validateParams" and index.isdigit() and int(index) < len(row_of):
            form.rows[row_of[int(index)]].error = v.message
        else:
            form.errors.append(v)
    if not found.violations:
        form.errors.append(Violation("", found.message))

