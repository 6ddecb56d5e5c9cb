"""EventService: thin servicer methods over the ingest domain.

Registered by ``add_to_server``, not the generated function: the event methods read each
event's params from the bytes received (``codec.received``) and the history methods
answer bytes of their own (``codec.wire.stored_event``), so an object value's keys keep
the order the caller sent them in, both ways (``api.ordered``, docs/compatibility.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from eventflow.v1 import events_pb2, events_pb2_grpc
from server.api.errors import current_account
from server.api.ordered import add_service
from server.codec import results, wire
from server.codec.proto import request_to_input
from server.codec.received import MAX_MESSAGE_BYTES, Bound, Parts, Received
from server.codec.values import dt_to_ts, py_to_value, ts_to_dt
from server.config import Settings
from server.contacts.contact_json import ContactJsonCheck
from server.errors import InvalidArgument, RateLimited, Violation
from server.eventtypes.rules import EventTypeRules
from server.eventtypes.settings import TypeSettings
from server.ingest import history
from server.ingest.accept import Acceptance, accept
from server.ingest.model import ValidEvent
from server.ingest.ratelimit import RateLimiter
from server.ingest.writer import Writer

MAX_BATCH = 500
MAX_IN_FLIGHT = 1000
# An event's wire bytes over its stored JSON at worst: a list of one-digit numbers takes
# 2 bytes an element as JSON and 11 on the wire (a double and two tags); the margin holds
# the fields not stored (message_id, occurred) and the tags around the params.
WIRE_FACTOR = 8
WIRE_MARGIN = 64 * 1024


def event_bound(settings: Settings) -> Bound:
    """The most bytes one event may take on the wire, whatever method carries it."""
    return Bound(WIRE_FACTOR * settings.max_event_bytes + WIRE_MARGIN, "the event",
                 f"{WIRE_FACTOR} x EVENTFLOW_MAX_EVENT_BYTES + {WIRE_MARGIN} on the wire; "
                 "raise EVENTFLOW_MAX_EVENT_BYTES to allow more")


def request_bounds(settings: Settings) -> dict[str, Bound]:
    """The event methods' requests (each message of a stream) refused on their length
    alone, before they are parsed: one event's bound; a batch's ``MAX_BATCH`` of them up to
    what gRPC takes at all, with each event within one event's bound."""
    one = event_bound(settings)
    batch = min(MAX_BATCH * one.max_bytes, MAX_MESSAGE_BYTES)
    return {
        "GenerateEvent": Bound(one.max_bytes, "the GenerateEvent request", one.how),
        "StreamEvents": Bound(one.max_bytes, "the StreamEvents message", one.how),
        "GenerateEvents": Bound(batch, "the GenerateEvents request",
                                f"{MAX_BATCH} events of {one.max_bytes} bytes, at most "
                                f"{MAX_MESSAGE_BYTES}; {one.how}",
                                parts=Parts(1, "events", MAX_BATCH, one)),
    }


@dataclass(slots=True)
class IngestDeps:
    settings: Settings
    writer: Writer
    limiter: RateLimiter
    engine: AsyncEngine
    # The process's cache of "Validate parameters" rules (kept current by app.py's feed).
    event_types: EventTypeRules


class EventService(events_pb2_grpc.EventServiceServicer):
    """Each event method decodes, charges the rate limit (one token per event), accepts through
    ``server.ingest.accept`` and writes; it only maps the outcome to its answer."""

    def __init__(self, deps: IngestDeps) -> None:
        self._d = deps
        self.settings = deps.settings
        self._acceptance = Acceptance(max_bytes=deps.settings.max_event_bytes,
                                      contact_json=ContactJsonCheck(deps.engine),
                                      event_types=deps.event_types)
        self._event_bound = event_bound(deps.settings)

    async def _judge(self, request: events_pb2.GenerateEventRequest, raw: bytes, *,
                     account_id: int, refused: RateLimited | None,
                     result: events_pb2.EventResult) -> ValidEvent | None:
        """The accepted event (``raw``: the bytes ``request`` was parsed from), or None with
        ``result`` filled with why it was refused (``refused``: the rate limit's refusal of
        this event, charged beforehand)."""
        try:
            if refused is not None:
                raise refused
            # One event of a batch may be most of it: judged on its length before a
            # param of it is converted.
            self._event_bound.check(len(raw))
            return await accept(request_to_input(request, raw), account_id=account_id,
                                using=self._acceptance)
        except results.REFUSALS as exc:
            results.refuse(result, exc)
            return None

    async def GenerateEvent(self, received: Received[events_pb2.GenerateEventRequest],
                            context: grpc.aio.ServicerContext[Any, Any]) -> events_pb2.GenerateEventResponse:
        account_id = current_account.get()
        # The one rate-limit charge of the event methods: one token per event, however
        # it arrives (server.ingest.ratelimit).
        await self._d.limiter.take(account_id)
        event = await accept(request_to_input(received.message, received.raw),
                             account_id=account_id, using=self._acceptance)
        (written,) = await self._d.writer.write([event])
        return events_pb2.GenerateEventResponse(event_id=written.event_id,
                                                duplicate=written.duplicate)

    async def GenerateEvents(self, received: Received[events_pb2.GenerateEventsRequest],
                             context: grpc.aio.ServicerContext[Any, Any]) -> events_pb2.GenerateEventsResponse:
        request = received.message
        if len(request.events) > MAX_BATCH:
            raise InvalidArgument.from_violations([Violation(
                "events", f"holds {len(request.events)} events; send at most {MAX_BATCH} per call")])
        account_id = current_account.get()
        # Every event is charged (count_each_event is no longer read): as many go on as
        # the account's bucket allows, each of the rest is refused on its own.
        admission = await self._d.limiter.admit(account_id, len(request.events))
        answer = events_pb2.GenerateEventsResponse()
        valid: list[tuple[events_pb2.EventResult, ValidEvent]] = []
        for i, (req, raw) in enumerate(zip(request.events, received.parts(1))):
            result = answer.results.add()
            refused = (None if i < admission.granted
                       else self._d.limiter.refused(admission, i - admission.granted))
            event = await self._judge(req, raw, account_id=account_id, refused=refused,
                                      result=result)
            if event is not None:
                valid.append((result, event))
        if valid:
            written = await self._d.writer.write([event for _, event in valid])
            for (result, _), w in zip(valid, written):
                results.accept(result, w)
        answer.success_count = len(valid)
        answer.error_count = len(request.events) - len(valid)
        return answer

    async def StreamEvents(self,
                           request_iterator: AsyncIterator[Received[events_pb2.StreamEventsRequest]],
                           context: grpc.aio.ServicerContext[Any, Any]
                           ) -> AsyncIterator[events_pb2.StreamEventsResponse]:
        account_id = current_account.get()
        acks: asyncio.Queue[tuple[str, asyncio.Future[events_pb2.EventResult]] | None] = \
            asyncio.Queue(MAX_IN_FLIGHT)

        async def one(req: Received[events_pb2.StreamEventsRequest]) -> events_pb2.EventResult:
            current_account.set(account_id)
            result = events_pb2.EventResult()
            admission = await self._d.limiter.admit(account_id, 1)
            refused = None if admission.granted else self._d.limiter.refused(admission)
            event = await self._judge(req.message.event, req.part(2), account_id=account_id,
                                      refused=refused, result=result)
            if event is not None:
                (written,) = await self._d.writer.write([event])
                results.accept(result, written)
            return result

        async def read() -> None:
            try:
                async for req in request_iterator:
                    await acks.put((req.message.client_ref, asyncio.ensure_future(one(req))))
            finally:
                await acks.put(None)

        reader = asyncio.create_task(read())
        try:
            while (item := await acks.get()) is not None:
                ref, fut = item
                # The ack leaves only after the event's transaction committed.
                yield events_pb2.StreamEventsResponse(client_ref=ref, result=await fut)
            # The stream's end, or a message that could not be read: then the call ends
            # with its INVALID_ARGUMENT (after the acks of the messages before it), never OK.
            await reader
        finally:
            reader.cancel()

    async def ListEventTypes(self, request: events_pb2.ListEventTypesRequest,
                             context: grpc.aio.ServicerContext[Any, Any]) -> events_pb2.ListEventTypesResponse:
        rows = await history.list_event_types(self._d.engine, account_id=current_account.get())
        out = events_pb2.ListEventTypesResponse()
        for r in rows:
            t = out.event_types.add(id=r.id, key=r.key, event_count=r.event_count)
            dt_to_ts(r.created_at, t.created_at)
            fill_settings(t, r.settings)
        return out

    async def ListEvents(self, request: events_pb2.ListEventsRequest,
                         context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        """A serialized ``ListEventsResponse`` (``stored_event_bytes``)."""
        rows, token = await history.list_events(
            self._d.engine, account_id=current_account.get(),
            event_type_key=request.event_type_key, key_value=request.key_value,
            since=ts_to_dt(request.since, field="since"),
            until=ts_to_dt(request.until, field="until"),
            page_size=request.page_size, page_token=request.page_token)
        return wire.events_page([stored_event_bytes(row) for row in rows], token)

    async def GetEvent(self, request: events_pb2.GetEventRequest,
                       context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        """A serialized ``StoredEvent`` (``stored_event_bytes``)."""
        row = await history.get_event(self._d.engine, account_id=current_account.get(),
                                      event_id=request.id)
        return stored_event_bytes(row)


def add_to_server(service: EventService, server: grpc.aio.Server) -> None:
    """Registers ``service``: the event methods read ``Received`` requests, refused
    unparsed past ``request_bounds``; the history methods answer bytes (``api.ordered``)."""
    add_service(service, server, events_pb2.DESCRIPTOR.services_by_name["EventService"],
                received=("GenerateEvent", "GenerateEvents", "StreamEvents"),
                answers_bytes=("GetEvent", "ListEvents"),
                bounds=request_bounds(service.settings))


def fill_settings(out: events_pb2.EventType, settings: TypeSettings) -> None:
    """An event type's settings into its message."""
    out.segmentation = settings.segmentation
    out.create_contacts = settings.create_contacts
    dt_to_ts(settings.segmentation_since, out.segmentation_since)
    for rule in settings.validate_params:
        out.validate_params.add(name=rule.name, required=rule.required)


def stored_event_bytes(row: history.StoredEventRow) -> bytes:
    """The serialized ``StoredEvent`` of ``row``, its params written in the stored body's
    order (object keys too), where a message's maps would lose it."""
    out = events_pb2.StoredEvent()
    doc = _fill_stored(out, row, params=False)
    return wire.stored_event(out.SerializeToString(), doc.get("params", []))


def _fill_stored(out: events_pb2.StoredEvent, row: history.StoredEventRow, *,
                 params: bool = True) -> dict[str, Any]:
    """``row`` into ``out`` (its params too, unless not ``params``); the parsed body."""
    doc: dict[str, Any] = orjson.loads(row.body)
    out.id = row.id
    out.event_type_key = row.event_type_key
    out.key_value = row.key_value
    out.body_json = row.body
    if row.contact_id is not None:
        out.contact_id = row.contact_id
    for note in row.notes:
        out.identity_notes.add(status=note["status"], field=note["field"],
                               message=note["message"])
    if params:
        for p in doc.get("params", []):
            param = out.params.add(name=p["name"])
            py_to_value(p["value"], param.value)
    dt_to_ts(row.received_at, out.received_at)
    dt_to_ts(row.occurred_at, out.occurred_at)
    return doc

