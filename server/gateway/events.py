"""Event routes: eSputnik's /api/v2/event, /api/v1/event, past events, and history reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import grpc
import orjson
from google.protobuf import timestamp_pb2
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from eventflow.v1 import events_pb2
from server.codec import results
from server.codec.jsonbody import event_from_json
from server.codec.values import time_to_ts
from server.codec.wire import batch_bytes, event_bytes
from server.errors import EventflowError, InvalidArgument, Violation
from server.gateway.coalesce import batch_ends
from server.gateway.event_types import event_type_json
from server.gateway.http import (
    INT32_MAX,
    auth_metadata,
    credentials,
    endpoint,
    error_response,
    json_response,
    parse_json,
    path_id,
    query_number,
    read_body,
    read_json,
)
from server.gateway.state import GatewayState

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
    time_to_ts(dt, out, field=name)


def _latin1(raw: bytes | None) -> str | None:
    return raw.decode("latin-1") if raw is not None else None


class EventPost:
    """``POST`` of one event (``/api/v2/event``, ``/api/v1/event``) as a bare ASGI app.

    Starlette's middleware, routing, Request and Response objects cost the gateway about
    as much CPU as storing the event, so ``GatewayApp`` hands these paths straight to this
    app; Starlette's router mounts the same app (under a root path, say), so both answer
    alike. It reads the scope's headers and the body itself; the checks and the error
    answers are the other routes' (http.py). The event joins the coalescer's next
    ``GenerateEvents`` call and is answered from its own result.
    """

    def __init__(self, state: GatewayState, *, legacy: bool) -> None:
        self._state = state
        self._legacy = legacy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self._state
        try:
            # The first occurrence of each header wins, as with Starlette's Headers.get.
            headers: dict[bytes, bytes] = dict(reversed(scope["headers"]))
            meta = credentials(_latin1(headers.get(b"authorization")),
                               _latin1(headers.get(b"x-api-key")))
            body = await read_body(receive, content_type=_latin1(headers.get(b"content-type")),
                                   content_length=_latin1(headers.get(b"content-length")),
                                   limit=state.settings.max_event_bytes,
                                   setting="EVENTFLOW_MAX_EVENT_BYTES")
            event = event_from_json(parse_json(body, events=True), legacy_v1=self._legacy,
                                    source=body)
            result = await state.coalescer.submit(meta, event_bytes(event))
            refused = results.refusal(result)
            if refused is not None:
                raise refused
        except ClientDisconnect:
            return  # the client went away
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
            (b"x-event-id", str(result.event_id).encode()), (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


def event_posts(state: GatewayState) -> dict[str, ASGIApp]:
    """The single-event paths (trailing slash too) and the app that serves each."""
    v2, v1 = EventPost(state, legacy=False), EventPost(state, legacy=True)
    return {"/api/v2/event": v2, "/api/v2/event/": v2, "/api/v1/event": v1, "/api/v1/event/": v1}


def _past_result(result: events_pb2.EventResult, index: int) -> dict[str, Any]:
    """One event's entry in the past_events answer; fields as paths into the body."""
    out: dict[str, Any] = {"status": result.status}
    if result.event_id:
        out["eventId"] = result.event_id
    if result.violations:
        # "body" names the event itself (it is not an object).
        out["violations"] = [
            {"field": f"events[{index}]" if v.field == "body" else f"events[{index}].{v.field}",
             "message": v.description} for v in result.violations]
    return out


def routes(state: GatewayState, posts: dict[str, ASGIApp]) -> list[Route]:
    @endpoint
    async def past_events(request: Request) -> Response:
        meta = auth_metadata(request)
        doc = await read_json(request, limit=state.settings.max_event_bytes * MAX_PAST_EVENTS,
                              setting=f"{MAX_PAST_EVENTS} x EVENTFLOW_MAX_EVENT_BYTES",
                              events=True)
        items = doc.get("events") if isinstance(doc, dict) else doc
        if not isinstance(items, list):
            raise InvalidArgument("the body must be an array of events (or {\"events\": [...]})",
                                  [Violation("events", "must be an array")])
        if len(items) > MAX_PAST_EVENTS:
            raise InvalidArgument(f"{len(items)} events; send at most {MAX_PAST_EVENTS} per call",
                                  [Violation("events", f"holds more than {MAX_PAST_EVENTS} events")])
        answers = [events_pb2.EventResult() for _ in items]
        encoded: list[bytes] = []
        positions: list[int] = []
        for i, item in enumerate(items):
            try:
                event = event_from_json(item, past_event=True)
            except InvalidArgument as exc:  # OccurredError too: its own status
                results.refuse(answers[i], exc)
                continue
            encoded.append(event_bytes(event))
            positions.append(i)
        if encoded:
            # Every event is charged against the rate limit: those past the account's
            # bucket come back RATE_LIMITED, each on its own.
            # In as many calls as the server's message limit needs (500 events of 20 KB
            # make more than one); the results keep the body's order.
            start = 0
            for end in batch_ends([len(e) for e in encoded]):
                reply = await state.generate_events(batch_bytes(encoded[start:end]), metadata=meta)
                for i, r in zip(positions[start:end], reply.results):
                    answers[i] = r
                start = end
        out = [_past_result(r, i) for i, r in enumerate(answers)]
        ok = sum(1 for r in answers if r.status == results.ACCEPTED)
        waits = [r.retry_after for r in answers if r.status == results.RATE_LIMITED]
        return json_response({"results": out, "successCount": ok, "errorCount": len(out) - ok},
                             headers={"Retry-After": str(max(1, min(waits)))} if waits else None)

    @endpoint
    async def event_types(request: Request) -> Response:
        reply = await state.events.ListEventTypes(events_pb2.ListEventTypesRequest(),
                                                  metadata=auth_metadata(request))
        return json_response([event_type_json(t, params=False) for t in reply.event_types])

    @endpoint
    async def list_events(request: Request) -> Response:
        meta = auth_metadata(request)
        q = request.query_params
        req = events_pb2.ListEventsRequest(event_type_key=q.get("eventTypeKey", ""),
                                           key_value=q.get("keyValue", ""),
                                           page_token=q.get("pageToken", ""))
        req.page_size = query_number(request, "pageSize", most=INT32_MAX)
        _parse_time("since", q.get("since"), req.since)
        _parse_time("until", q.get("until"), req.until)
        reply = await state.events.ListEvents(req, metadata=meta)
        return json_response({"events": [_stored(e) for e in reply.events],
                              "nextPageToken": reply.next_page_token or None})

    @endpoint
    async def get_event(request: Request) -> Response:
        reply = await state.events.GetEvent(
            events_pb2.GetEventRequest(id=path_id(request, "event_id")),
            metadata=auth_metadata(request))
        return json_response(_stored(reply))

    return [
        *(Route(path, post, methods=["POST"]) for path, post in posts.items()),
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
    if e.identity_notes:
        out["identityNotes"] = [{"status": n.status, "field": n.field, "message": n.message}
                                for n in e.identity_notes]
    out.update(body)
    if "keyValue" not in out:
        out["keyValue"] = e.key_value
    out["body"] = body  # as received; the contact is the event's own field, never in it
    return out
