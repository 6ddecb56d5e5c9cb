"""EventService: thin servicer methods over the ingest domain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from eventflow.v1 import events_pb2, events_pb2_grpc
from server.api.convert import dt_to_ts, py_to_value, request_to_input, ts_to_dt
from server.api.errors import current_account
from server.config import Settings
from server.contacts.events import CONTACT_JSON, ContactJsonCheck
from server.db.models import utcnow
from server.errors import InvalidArgument, TooLarge, Violation
from server.ingest import history
from server.ingest.model import ValidEvent
from server.ingest.ratelimit import RateLimiter
from server.ingest.validation import validate_event
from server.ingest.writer import EventWriter

MAX_BATCH = 500
MAX_IN_FLIGHT = 1000
PAST_LIMIT = timedelta(days=365 * 2)
FUTURE_SLACK = timedelta(minutes=5)


@dataclass(slots=True)
class IngestDeps:
    settings: Settings
    writer: EventWriter
    limiter: RateLimiter
    engine: AsyncEngine


def _past_status(event: ValidEvent) -> str | None:
    """Past-event statuses of eSputnik's import, for events that carry ``occurred``."""
    if event.occurred is None:
        return None
    now = utcnow()
    if event.occurred > now + FUTURE_SLACK:
        return "OCCURRED_TIME_IN_FUTURE"
    if event.occurred < now - PAST_LIMIT:
        return "OCCURRED_TIME_TOO_DEPTH"
    return None


class EventService(events_pb2_grpc.EventServiceServicer):
    def __init__(self, deps: IngestDeps) -> None:
        self._d = deps
        self._contact_json = ContactJsonCheck(deps.engine)

    async def _validate(self, request: events_pb2.GenerateEventRequest) -> ValidEvent:
        event, account_id = request_to_input(request), current_account.get()
        max_bytes = self._d.settings.max_event_bytes
        # Only events with a contactJson param pay for the contact check (issue 4); the
        # others skip its coroutine (this runs per event of a 500-event batch).
        for name, _value in event.params:
            if len(name) == len(CONTACT_JSON) and name.lower() == CONTACT_JSON:
                return await self._contact_json.checked(
                    event.params, account_id=account_id,
                    run=lambda: validate_event(event, account_id=account_id,
                                               max_bytes=max_bytes))
        return validate_event(event, account_id=account_id, max_bytes=max_bytes)

    async def GenerateEvent(self, request: events_pb2.GenerateEventRequest,
                            context: grpc.aio.ServicerContext[Any, Any]) -> events_pb2.GenerateEventResponse:
        self._d.limiter.take(current_account.get())
        event = await self._validate(request)
        status = _past_status(event)
        if status is not None:
            raise InvalidArgument.from_violations([Violation("occurred", status)])
        (result,) = await self._d.writer.write([event])
        return events_pb2.GenerateEventResponse(event_id=result.event_id,
                                                duplicate=result.duplicate)

    async def GenerateEvents(self, request: events_pb2.GenerateEventsRequest,
                             context: grpc.aio.ServicerContext[Any, Any]) -> events_pb2.GenerateEventsResponse:
        if len(request.events) > MAX_BATCH:
            raise InvalidArgument.from_violations([Violation(
                "events", f"holds {len(request.events)} events; send at most {MAX_BATCH} per call")])
        self._d.limiter.take(current_account.get(),
                             len(request.events) if request.count_each_event else 1)
        results = [events_pb2.EventResult() for _ in request.events]
        valid: list[tuple[int, ValidEvent]] = []
        for i, req in enumerate(request.events):
            try:
                event = await self._validate(req)
            except InvalidArgument as exc:
                _reject(results[i], exc.violations, "INVALID")
                continue
            except TooLarge as exc:
                _reject(results[i], [Violation("event", exc.message)], "TOO_LARGE")
                continue
            status = _past_status(event)
            if status is not None:
                _reject(results[i], [Violation("occurred", status)], status)
                continue
            valid.append((i, event))
        if valid:
            written = await self._d.writer.write([ev for _, ev in valid])
            for (i, _), w in zip(valid, written):
                results[i].event_id = w.event_id
                results[i].duplicate = w.duplicate
                results[i].status = "ACCEPTED"
        ok = sum(1 for r in results if r.status == "ACCEPTED")
        return events_pb2.GenerateEventsResponse(results=results, success_count=ok,
                                                 error_count=len(results) - ok)

    async def StreamEvents(self, request_iterator: AsyncIterator[events_pb2.StreamEventsRequest],
                           context: grpc.aio.ServicerContext[Any, Any]
                           ) -> AsyncIterator[events_pb2.StreamEventsResponse]:
        account = current_account.get()
        acks: asyncio.Queue[tuple[str, asyncio.Future[events_pb2.EventResult]] | None] = \
            asyncio.Queue(MAX_IN_FLIGHT)

        async def one(req: events_pb2.StreamEventsRequest) -> events_pb2.EventResult:
            current_account.set(account)
            result = events_pb2.EventResult()
            try:
                self._d.limiter.take(account)
                event = await self._validate(req.event)
            except InvalidArgument as exc:
                _reject(result, exc.violations, "INVALID")
                return result
            except TooLarge as exc:
                _reject(result, [Violation("event", exc.message)], "TOO_LARGE")
                return result
            except Exception as exc:  # noqa: BLE001 - rate limit and the like, per event
                _reject(result, [Violation("event", str(exc))], type(exc).__name__.upper())
                return result
            (w,) = await self._d.writer.write([event])
            result.event_id, result.duplicate, result.status = w.event_id, w.duplicate, "ACCEPTED"
            return result

        async def read() -> None:
            try:
                async for req in request_iterator:
                    await acks.put((req.client_ref, asyncio.ensure_future(one(req))))
            finally:
                await acks.put(None)

        reader = asyncio.create_task(read())
        try:
            while (item := await acks.get()) is not None:
                ref, fut = item
                # The ack leaves only after the event's transaction committed.
                yield events_pb2.StreamEventsResponse(client_ref=ref, result=await fut)
        finally:
            reader.cancel()

    async def ListEventTypes(self, request: events_pb2.ListEventTypesRequest,
                             context: grpc.aio.ServicerContext[Any, Any]) -> events_pb2.ListEventTypesResponse:
        rows = await history.list_event_types(self._d.engine, account_id=current_account.get())
        out = events_pb2.ListEventTypesResponse()
        for r in rows:
            t = out.event_types.add(id=r.id, key=r.key, event_count=r.event_count)
            dt_to_ts(r.created_at, t.created_at)
        return out

    async def ListEvents(self, request: events_pb2.ListEventsRequest,
                         context: grpc.aio.ServicerContext[Any, Any]) -> events_pb2.ListEventsResponse:
        rows, token = await history.list_events(
            self._d.engine, account_id=current_account.get(),
            event_type_key=request.event_type_key, key_value=request.key_value,
            since=ts_to_dt(request.since), until=ts_to_dt(request.until),
            page_size=request.page_size, page_token=request.page_token)
        out = events_pb2.ListEventsResponse(next_page_token=token)
        for row in rows:
            _fill_stored(out.events.add(), row)
        return out

    async def GetEvent(self, request: events_pb2.GetEventRequest,
                       context: grpc.aio.ServicerContext[Any, Any]) -> events_pb2.StoredEvent:
        row = await history.get_event(self._d.engine, account_id=current_account.get(),
                                      event_id=request.id)
        out = events_pb2.StoredEvent()
        _fill_stored(out, row)
        return out


def _reject(result: events_pb2.EventResult, violations: list[Violation], status: str) -> None:
    result.status = status
    for v in violations:
        result.violations.add(field=v.field, description=v.message)


def _fill_stored(out: events_pb2.StoredEvent, row: history.StoredEventRow) -> None:
    doc = orjson.loads(row.body)
    out.id = row.id
    out.event_type_key = row.event_type_key
    out.key_value = row.key_value
    out.body_json = row.body
    if row.contact_id is not None:
        out.contact_id = row.contact_id
    for p in doc.get("params", []):
        param = out.params.add(name=p["name"])
        py_to_value(p["value"], param.value)
    dt_to_ts(row.received_at, out.received_at)
    dt_to_ts(row.occurred_at, out.occurred_at)

