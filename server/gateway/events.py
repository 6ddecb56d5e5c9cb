"""Event routes: eSputnik's /api/v2/event, /api/v1/event, past events, and history reads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import grpc
import orjson
from google.protobuf import timestamp_pb2
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from eventflow.v1 import events_pb2
from server.api.convert import input_to_request
from server.errors import EventflowError, InvalidArgument, OccurredError, TooLarge, Violation
from server.gateway.http import (
    auth_metadata,
    check_json_headers,
    credentials,
    endpoint,
    error_response,
    json_response,
    over_limit,
    parse_json,
    read_json,
)
from server.gateway.state import GatewayState
from server.gateway.wire import event_bytes
from server.ingest.jsonform import event_from_json, few_containers

MAX_PAST_EVENTS = 500


def _iso(ts: timestamp_pb2.Timestamp) -> str | None:
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return ts.ToDatetime().isoformat(timespec="milliseconds") + "Z"


def _parse_time(name: str, raw: str | None, out: timestamp_pb2.Timestamp) -> None:
    if not raw:
        return
    try:
        dt = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidArgument.from_violations(
            [Violation(name, f"{raw!r} is not an ISO 8601 time such as 2026-11-27T10:00:00Z")]
        ) from None
    out.FromDatetime(dt)


def _rejected(result: events_pb2.EventResult) -> EventflowError:
    """The domain error of an event the server refused inside a coalesced call."""
    violations = [Violation(v.field, v.description) for v in result.violations]
    if result.status == "TOO_LARGE":
        return TooLarge(violations[0].message if violations else "the event is too large")
    if not violations:
        return InvalidArgument(f"the event was refused ({result.status})")
    return InvalidArgument.from_violations(violations)


async def _ingest(state: GatewayState, meta: tuple[tuple[str, str], ...], doc: Any,
                  legacy: bool, *, check_depth: bool = True) -> int:
    """Store one event body (through the coalescer); its id, or the error to answer."""
    event = event_from_json(doc, legacy_v1=legacy, check_depth=check_depth)
    result = await state.coalescer.submit(meta, event_bytes(event))
    if result.status != "ACCEPTED":
        raise _rejected(result)
    event_id: int = result.event_id
    return event_id


# The single-event routes the fast path serves, and whether each is the v1 (legacy) body.
EVENT_PATHS = {"/api/v2/event": False, "/api/v2/event/": False,
               "/api/v1/event": True, "/api/v1/event/": True}
FastHandler = Callable[[Scope, Receive, Send, bool], Awaitable[None]]


def fast_handler(state: GatewayState) -> FastHandler:
    """``POST`` of one event as a bare ASGI handler, answering exactly as the routes do.

    Starlette's middleware, routing, Request and Response objects cost the gateway about
    as much CPU as storing the event; this handler reads the scope's headers and the body
    messages itself and reuses the routes' checks and error answers (http.py), so status
    codes, messages and headers stay the same.
    """

    async def handle(scope: Scope, receive: Receive, send: Send, legacy: bool) -> None:
        try:
            # The first occurrence of each header wins, as with Starlette's Headers.get.
            headers: dict[bytes, bytes] = dict(reversed(scope["headers"]))
            auth = headers.get(b"authorization")
            key = headers.get(b"x-api-key")
            meta = credentials(auth.decode("latin-1") if auth is not None else None,
                               key.decode("latin-1") if key is not None else None)
            ctype = headers.get(b"content-type")
            length = headers.get(b"content-length")
            limit = state.settings.max_event_bytes
            check_json_headers(ctype.decode("latin-1") if ctype is not None else None,
                               length.decode("latin-1") if length is not None else None, limit)
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body: bytes = message.get("body", b"")
            if len(body) > limit:
                raise over_limit(limit)
            if message.get("more_body", False):
                chunks, size = [body], len(body)
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        return
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        raise over_limit(limit)
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
                body = b"".join(chunks)
            event_id = await _ingest(state, meta, parse_json(body), legacy,
                                     check_depth=not few_containers(body))
        except (EventflowError, grpc.aio.AioRpcError) as exc:
            response = error_response(exc)
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": response.raw_headers})
            await send({"type": "http.response.body", "body": response.body})
            return
        except Exception:
            # As Starlette's ServerErrorMiddleware: a plain 500, and the error logged.
            await PlainTextResponse("Internal Server Error", status_code=500)(scope, receive, send)
            raise
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"x-event-id", str(event_id).encode()), (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    return handle


def routes(state: GatewayState) -> list[Route]:
    async def generate(request: Request, legacy: bool) -> Response:
        meta = auth_metadata(request)
        doc = await read_json(request, limit=state.settings.max_event_bytes)
        event_id = await _ingest(state, meta, doc, legacy)
        return Response(status_code=200, headers={"X-Event-Id": str(event_id)})

    @endpoint
    async def event_v2(request: Request) -> Response:
        return await generate(request, legacy=False)

    @endpoint
    async def event_v1(request: Request) -> Response:
        return await generate(request, legacy=True)

    @endpoint
    async def past_events(request: Request) -> Response:
        meta = auth_metadata(request)
        doc = await read_json(request, limit=state.settings.max_event_bytes * MAX_PAST_EVENTS)
        items = doc.get("events") if isinstance(doc, dict) else doc
        if not isinstance(items, list):
            raise InvalidArgument("the body must be an array of events (or {\"events\": [...]})",
                                  [Violation("events", "must be an array")])
        if len(items) > MAX_PAST_EVENTS:
            raise InvalidArgument(f"{len(items)} events; send at most {MAX_PAST_EVENTS} per call",
                                  [Violation("events", f"holds more than {MAX_PAST_EVENTS} events")])
        results: list[dict[str, Any]] = [{} for _ in items]
        batch = events_pb2.GenerateEventsRequest()
        positions: list[int] = []
        for i, item in enumerate(items):
            try:
                if not isinstance(item, dict) or "occurred" not in item:
                    raise OccurredError("OCCURRED_DATE_IS_REQUIRED")
                event = event_from_json(item, allow_occurred=True, where=f"events[{i}].")
            except OccurredError as exc:
                results[i] = {"status": exc.status}
                continue
            except InvalidArgument as exc:
                results[i] = {"status": "INVALID", "violations": [
                    {"field": v.field, "message": v.message} for v in exc.violations]}
                continue
            input_to_request(event, batch.events.add())
            positions.append(i)
        if positions:
            reply = await state.events.GenerateEvents(batch, metadata=meta)
            for i, r in zip(positions, reply.results):
                results[i] = {"status": r.status}
                if r.event_id:
                    results[i]["eventId"] = r.event_id
                if r.violations:
                    results[i]["violations"] = [
                        {"field": f"events[{i}].{v.field}", "message": v.description}
                        for v in r.violations]
        ok = sum(1 for r in results if r["status"] == "ACCEPTED")
        return json_response({"results": results, "successCount": ok,
                              "errorCount": len(results) - ok})

    @endpoint
    async def event_types(request: Request) -> Response:
        reply = await state.events.ListEventTypes(events_pb2.ListEventTypesRequest(),
                                                  metadata=auth_metadata(request))
        return json_response([{"id": t.id, "key": t.key, "createdAt": _iso(t.created_at),
                               "eventCount": t.event_count} for t in reply.event_types])

    @endpoint
    async def list_events(request: Request) -> Response:
        meta = auth_metadata(request)
        q = request.query_params
        req = events_pb2.ListEventsRequest(event_type_key=q.get("eventTypeKey", ""),
                                           key_value=q.get("keyValue", ""),
                                           page_token=q.get("pageToken", ""))
        size = q.get("pageSize", "")
        if size:
            if not size.isdigit():
                raise InvalidArgument.from_violations([Violation("pageSize", "must be a number")])
            req.page_size = int(size)
        _parse_time("since", q.get("since"), req.since)
        _parse_time("until", q.get("until"), req.until)
        reply = await state.events.ListEvents(req, metadata=meta)
        return json_response({"events": [_stored(e) for e in reply.events],
                              "nextPageToken": reply.next_page_token or None})

    @endpoint
    async def get_event(request: Request) -> Response:
        raw_id = request.path_params["event_id"]
        if not raw_id.isdigit():
            raise InvalidArgument.from_violations([Violation("id", "must be a number")])
        reply = await state.events.GetEvent(events_pb2.GetEventRequest(id=int(raw_id)),
                                            metadata=auth_metadata(request))
        return json_response(_stored(reply))

    return [
        Route("/api/v2/event", event_v2, methods=["POST"]),
        Route("/api/v2/event/", event_v2, methods=["POST"]),
        Route("/api/v1/event", event_v1, methods=["POST"]),
        Route("/api/v1/event/", event_v1, methods=["POST"]),
        Route("/api/v2/past_events", past_events, methods=["POST"]),
        Route("/api/v2/past_events/", past_events, methods=["POST"]),
        Route("/api/v1/event-types", event_types, methods=["GET"]),
        Route("/api/v1/events", list_events, methods=["GET"]),
        Route("/api/v1/events/{event_id}", get_event, methods=["GET"]),
    ]


def _stored(e: events_pb2.StoredEvent) -> dict[str, Any]:
    body = orjson.loads(e.body_json)
    out: dict[str, Any] = {"id": e.id, "receivedAt": _iso(e.received_at)}
    occurred = _iso(e.occurred_at)
    if occurred:
        out["occurred"] = occurred
    if e.contact_id:
        out["contactId"] = e.contact_id
    out.update(body)
    if "keyValue" not in out:
        out["keyValue"] = e.key_value
    return out
