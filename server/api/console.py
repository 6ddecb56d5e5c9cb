"""ConsoleService: thin servicer methods over ``server.stats`` (the console's read views)."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from eventflow.v1 import console_pb2, console_pb2_grpc, events_pb2, workflows_pb2
from server.api.errors import current_account
from server.api.events import _fill_stored as fill_stored
from server.api.workflows import _message as sent_message
from server.api.workflows import _run as run_message
from server.api.workflows import _workflow as workflow_message
from server.codec.values import dt_to_ts
from server.errors import InvalidArgument, Violation
from server.ingest import history
from server.stats import event_types, overview, workflows
from server.workflows import queries


def _stats(s: event_types.TypeStats, out: console_pb2.EventTypeStats) -> None:
    out.id, out.key, out.event_count = s.id, s.key, s.event_count
    out.create_contacts = s.create_contacts
    dt_to_ts(s.created_at, out.created_at)
    if s.first_seen is not None:
        dt_to_ts(s.first_seen, out.first_seen)
    if s.last_seen is not None:
        dt_to_ts(s.last_seen, out.last_seen)


class ConsoleService(console_pb2_grpc.ConsoleServiceServicer):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def GetOverview(self, request: Any, context: Any) -> console_pb2.Overview:
        o = await overview.overview(self._engine, account_id=current_account.get())
        out = console_pb2.Overview(
            events_total=o.events_total, events_pending=o.events_pending,
            events_failed=o.events_failed, runs_waiting=o.runs_waiting, runs_due=o.runs_due)
        dt_to_ts(o.since, out.since)
        for t in o.types:
            out.types.add(event_type_key=t.key, hourly=t.hourly, last_hour=t.last_hour,
                          today=t.today)
        for status, n in sorted(o.runs_by_status.items()):
            out.runs_by_status.add(status=status, count=n)
        for status, n in sorted(o.messages_by_status.items()):
            out.messages_by_status.add(status=status, count=n)
        return out

    async def ListEventTypeStats(self, request: Any, context: Any) -> Any:
        found = await event_types.type_stats(self._engine, account_id=current_account.get())
        out = console_pb2.ListEventTypeStatsResponse()
        for s in found:
            _stats(s, out.event_types.add())
        return out

    async def GetEventTypeDetail(self, request: Any, context: Any) -> console_pb2.EventTypeDetail:
        if not request.key:
            raise InvalidArgument.from_violations([Violation("key", "is required")])
        account_id = current_account.get()
        d = await event_types.type_detail(self._engine, account_id=account_id, key=request.key)
        out = console_pb2.EventTypeDetail(sampled=d.sampled)
        _stats(d.stats, out.stats)
        for p in d.params:
            out.params.add(path=p.path, types=p.types, seen=p.seen, example=p.example)
        for w in await workflows.triggered_by(self._engine, account_id=account_id,
                                              event_type_key=request.key):
            out.workflows.append(workflow_message(w))
        return out

    async def ListContactEvents(self, request: Any, context: Any) -> Any:
        if request.contact_id <= 0:
            raise InvalidArgument.from_violations([Violation("contactId", "must be a contact id")])
        rows, token = await history.list_events(
            self._engine, account_id=current_account.get(), contact_id=request.contact_id,
            page_size=request.page_size, page_token=request.page_token)
        out = events_pb2.ListEventsResponse(next_page_token=token)
        for row in rows:
            fill_stored(out.events.add(), row)
        return out

    async def ListEventRuns(self, request: Any, context: Any) -> workflows_pb2.ListRunsResponse:
        rows = await workflows.runs_of_event(self._engine, account_id=current_account.get(),
                                             event_id=request.event_id)
        return workflows_pb2.ListRunsResponse(runs=[run_message(r) for r in rows])

    async def GetSentMessage(self, request: Any, context: Any) -> console_pb2.SentMessage:
        async with self._engine.connect() as conn:
            row = await queries.get_message(conn, account_id=current_account.get(),
                                            message_id=request.id)
        kept = row.body_html is not None or row.body_text is not None
        return console_pb2.SentMessage(message=sent_message(row), html=row.body_html or "",
                                       text=row.body_text or "", kept=kept)

    async def ListWorkflowVersions(self, request: Any, context: Any) -> Any:
        current, found = await workflows.versions(
            self._engine, account_id=current_account.get(), workflow_id=request.id)
        out = workflows_pb2.ListWorkflowsResponse()
        for v in found:
            w = out.workflows.add(id=current.id, name=str(v.definition.get("name", "")),
                                  active=current.active and v.version == current.version,
                                  version=v.version, definition_json=orjson.dumps(
                                      v.definition).decode())
            dt_to_ts(v.created_at, w.created_at)
            dt_to_ts(v.created_at, w.updated_at)
        return out
