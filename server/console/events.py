"""Screen 3: event history (filtered, paged) and one event's body as received."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from starlette.responses import Response

from eventflow.v1 import console_pb2, console_pb2_grpc, events_pb2, events_pb2_grpc
from server.codec.values import time_to_ts
from server.console.web import Page
from server.errors import InvalidArgument, Violation
from server.gateway.http import path_id

PAGE_SIZE = 25


def _time(raw: str, name: str) -> datetime | None:
    """A datetime-local input (UTC) or ISO time; 400 naming the field otherwise."""
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidArgument.from_violations([Violation(
            name, f"must be a date and time such as 2025-01-31T09:00, not {raw!r}")]) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def history(ctx: Page) -> Response:
    q = ctx.request.query_params
    # The JSON API's names (eventTypeKey, keyValue) are taken too: people try them.
    aliases = {"type": "eventTypeKey", "key": "keyValue"}
    filters = {name: (q.get(name) or q.get(aliases.get(name, ""), "")).strip()
               for name in ("type", "key", "since", "until")}
    req = events_pb2.ListEventsRequest(event_type_key=filters["type"],
                                       key_value=filters["key"], page_size=PAGE_SIZE,
                                       page_token=q.get("page", ""))
    for name, field in (("since", req.since), ("until", req.until)):
        value = _time(filters[name], name)
        if value is not None:
            time_to_ts(value, field, field=name)  # 400 past years 1-9999 in UTC
    stub = ctx.stub(events_pb2_grpc.EventServiceStub)
    types = await stub.ListEventTypes(events_pb2.ListEventTypesRequest(), metadata=ctx.meta)
    keys = [t.key for t in types.event_types]
    if filters["type"] and filters["type"] not in keys:
        return ctx.render("events.html", events=[], filters=filters, next_url="", types=keys,
                          filtered=True, first_page=True, unknown_type=filters["type"])
    reply = await stub.ListEvents(req, metadata=ctx.meta)
    active = {k: v for k, v in filters.items() if v}
    next_url = ("/events?" + urlencode({**active, "page": reply.next_page_token})
                if reply.next_page_token else "")
    return ctx.render("events.html", events=reply.events, filters=filters, next_url=next_url,
                      types=keys, filtered=bool(active),
                      first_page=not q.get("page"))


async def event(ctx: Page) -> Response:
    event_id = path_id(ctx.request, "event_id")
    found = await ctx.stub(events_pb2_grpc.EventServiceStub).GetEvent(
        events_pb2.GetEventRequest(id=event_id), metadata=ctx.meta)
    runs = await ctx.stub(console_pb2_grpc.ConsoleServiceStub).ListEventRuns(
        console_pb2.ListEventRunsRequest(event_id=event_id), metadata=ctx.meta)
    return ctx.render("event.html", e=found, runs=runs.runs)
