"""Segments: the list (members, status), a segment's page (its definition in words, the
recount's progress, members paged with links to their contacts) and saving a definition
as JSON, every problem named by its JSON path. Through ``SegmentService`` only."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import urlencode

import grpc
from starlette.responses import RedirectResponse, Response

from eventflow.v1 import events_pb2, events_pb2_grpc, segments_pb2, segments_pb2_grpc
from server.console.segment_text import describe
from server.console.web import Failure, Page, failure, read_json
from server.errors import InvalidArgument, Violation
from server.gateway.http import path_id
from server.segments.definition import event_types_of

MEMBERS_PAGE = 50


class Redraw(Protocol):
    """A form page drawn again with what was typed and what is wrong with it."""

    def __call__(self, ctx: Page, *, text: str = "", errors: list[Violation] | None = None,
                 status: int = 200) -> Awaitable[Response]: ...


def _stub(ctx: Page) -> segments_pb2_grpc.SegmentServiceStub:
    return ctx.stub(segments_pb2_grpc.SegmentServiceStub)


async def _types(ctx: Page) -> dict[str, events_pb2.EventType]:
    reply = await ctx.stub(events_pb2_grpc.EventServiceStub).ListEventTypes(
        events_pb2.ListEventTypesRequest(), metadata=ctx.meta)
    return {t.key: t for t in reply.event_types}


def _example(types: dict[str, events_pb2.EventType]) -> str:
    key = "abandoned_cart" if "abandoned_cart" in types or not types else next(iter(types))
    doc = {"name": f"{key.replace('_', ' ')} in the last 7 days", "timeZone": "UTC",
           "conditions": {"all": [{"event": {"eventTypeKey": key, "within": "P7D"}}]}}
    return json.dumps(doc, indent=2, ensure_ascii=False)


def _not_counting(conditions: Any, types: dict[str, events_pb2.EventType]
                  ) -> list[tuple[str, str]]:
    """The definition's event types whose events do not count now: (key, why)."""
    try:
        keys = sorted(event_types_of(conditions)) if isinstance(conditions, dict) else []
    except (AttributeError, KeyError, TypeError):
        keys = []
    out = []
    for key in keys:
        t = types.get(key)
        if t is None:
            out.append((key, "missing"))
        elif not t.segmentation:
            out.append((key, "off"))
    return out


async def segment_list(ctx: Page) -> Response:
    reply = await _stub(ctx).ListSegments(segments_pb2.ListSegmentsRequest(), metadata=ctx.meta)
    counts = {}
    for s in reply.segments:
        counts[s.id] = (await _stub(ctx).CountSegment(
            segments_pb2.GetSegmentRequest(id=s.id), metadata=ctx.meta)).count
    return ctx.render("segments.html", segments=reply.segments, counts=counts,
                      deleted=ctx.request.query_params.get("deleted", ""))


def _violations(error: Failure) -> list[Violation]:
    return list(error.violations) or [Violation("", error.message)]


def _parse(text: str) -> Violation | None:
    """A definition that is not JSON (said with its line and column) or nests deeper than
    the API takes: nothing is sent."""
    try:
        read_json(text, "definition")
    except InvalidArgument as exc:
        return exc.violations[0] if exc.violations else Violation("definition", exc.message)
    return None


async def new_segment(ctx: Page, *, text: str = "", errors: list[Violation] | None = None,
                      status: int = 200) -> Response:
    types = await _types(ctx)
    text = text or _example(types)
    try:
        conditions = read_json(text, "definition").get("conditions")
    except (InvalidArgument, AttributeError):
        conditions = None
    return ctx.render("segment_new.html", status=status, text=text, errors=errors or [],
                      not_counting=_not_counting(conditions, types))


async def new_segment_page(ctx: Page) -> Response:
    return await new_segment(ctx)


async def _save(ctx: Page, send: Callable[[str], Awaitable[str]], again: Redraw) -> Response:
    """A posted definition: unparsable JSON or the server's 400 redraws the form (``again``)
    with the text kept and the problems listed; saved, on to the page ``send`` answers."""
    text = (await ctx.form()).get("definition", "")
    bad = _parse(text)
    if bad is not None:
        return await again(ctx, text=text, errors=[bad], status=400)
    try:
        target = await send(text)
    except grpc.aio.AioRpcError as exc:
        found = failure(exc)
        if found.status != 400:
            raise
        return await again(ctx, text=text, errors=_violations(found), status=400)
    return RedirectResponse(target, status_code=303)


async def create_segment(ctx: Page) -> Response:
    async def send(text: str) -> str:
        created = await _stub(ctx).CreateSegment(
            segments_pb2.CreateSegmentRequest(definition_json=text), metadata=ctx.meta)
        return f"/segments/{created.id}?saved=1"

    return await _save(ctx, send, new_segment)


async def segment_page(ctx: Page, *, text: str = "", errors: list[Violation] | None = None,
                       status: int = 200) -> Response:
    segment_id = path_id(ctx.request, "segment_id")
    s = await _stub(ctx).GetSegment(segments_pb2.GetSegmentRequest(id=segment_id),
                                    metadata=ctx.meta)
    try:
        start = min(max(0, int(ctx.request.query_params.get("from", "0"))), 2**31 - 1)
    except ValueError:
        start = 0
    members = await _stub(ctx).ListSegmentContacts(segments_pb2.ListSegmentContactsRequest(
        segment_id=segment_id, offset=start, limit=MEMBERS_PAGE), metadata=ctx.meta)
    doc = json.loads(s.definition_json)
    shown = {"name": doc.get("name", s.name), "timeZone": doc.get("timeZone", "UTC"),
             "conditions": doc.get("conditions")}
    return ctx.render(
        "segment.html", status=status, s=s, doc=doc, words=describe(doc.get("conditions")),
        members=members.contacts, total=members.total_count, start=start, page=MEMBERS_PAGE,
        text=text or json.dumps(shown, indent=2, ensure_ascii=False), errors=errors or [],
        not_counting=_not_counting(doc.get("conditions"), await _types(ctx)),
        saved=ctx.request.query_params.get("saved", ""))


async def show_segment(ctx: Page) -> Response:
    return await segment_page(ctx)


async def update_segment(ctx: Page) -> Response:
    segment_id = path_id(ctx.request, "segment_id")

    async def send(text: str) -> str:
        await _stub(ctx).UpdateSegment(segments_pb2.UpdateSegmentRequest(
            id=segment_id, definition_json=text), metadata=ctx.meta)
        return f"/segments/{segment_id}?saved=updated"

    return await _save(ctx, send, segment_page)


async def delete_segment(ctx: Page) -> Response:
    segment_id = path_id(ctx.request, "segment_id")
    s = await _stub(ctx).GetSegment(segments_pb2.GetSegmentRequest(id=segment_id),
                                    metadata=ctx.meta)
    await _stub(ctx).DeleteSegment(segments_pb2.GetSegmentRequest(id=segment_id),
                                   metadata=ctx.meta)
    return RedirectResponse("/segments?" + urlencode({"deleted": s.name}), status_code=303)
