"""WorkflowService: thin servicer methods over ``server.workflows``."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from eventflow.v1 import workflows_pb2, workflows_pb2_grpc
from server.api.errors import current_account
from server.codec.jsondoc import load_document
from server.codec.values import dt_to_ts
from server.config import Settings
from server.consent.unsubscribed import unsubscribed_among
from server.contacts.contact_json import ContactJsonCheck
from server.db.models import as_utc
from server.errors import InvalidArgument, Violation
from server.ingest.accept import Acceptance, ParamRules
from server.templating.pool import RenderPool
from server.workflows import queries, store
from server.workflows.runtime import stored_template
from server.workflows.segments import in_segment
from server.workflows.simulator import simulate
from server.workflows.store import StoredWorkflow


def _json(text: str, field: str, default: Any = None) -> Any:
    if not text.strip():
        if default is not None:
            return default
        raise InvalidArgument.from_violations([Violation(field, "is required (JSON text)")])
    return load_document(text, name=field)


def _workflow(w: StoredWorkflow) -> workflows_pb2.Workflow:
    out = workflows_pb2.Workflow(id=w.id, name=w.name, active=w.active, version=w.version,
                                 definition_json=orjson.dumps(w.definition).decode())
    dt_to_ts(w.created_at, out.created_at)
    dt_to_ts(w.updated_at, out.updated_at)
    return out


def _ts(value: Any, out: Any) -> None:
    if value is not None:
        dt_to_ts(as_utc(value), out)


def _run(r: Any) -> workflows_pb2.Run:
    out = workflows_pb2.Run(id=r.id, workflow_id=r.workflow_id, version=r.version,
                            event_id=r.event_id, contact_id=r.contact_id or 0,
                            key_value=r.key_value, status=r.status,
                            current_block=r.current_block or "", error=r.error or "")
    for name in ("started_at", "updated_at", "finished_at", "due_at"):
        _ts(getattr(r, name), getattr(out, name))
    return out


def _message(m: Any) -> workflows_pb2.Message:
    out = workflows_pb2.Message(
        id=m.id, run_id=m.run_id, workflow_id=m.workflow_id, seq=m.seq, block_id=m.block_id,
        contact_id=m.contact_id or 0, channel=m.channel, recipient=m.recipient,
        subject=m.subject, message_id=m.message_id, status=m.status, reason=m.reason or "",
        attempts=m.attempts)
    _ts(m.created_at, out.created_at)
    _ts(m.sent_at, out.sent_at)
    return out


class WorkflowService(workflows_pb2_grpc.WorkflowServiceServicer):
    def __init__(self, engine: AsyncEngine, settings: Settings, renderer: RenderPool,
                 event_types: ParamRules) -> None:
        self._engine = engine
        self._settings = settings
        self._renderer = renderer
        self._acceptance = Acceptance(max_bytes=settings.max_event_bytes,
                                      contact_json=ContactJsonCheck(engine),
                                      event_types=event_types)

    async def CreateWorkflow(self, request: Any, context: Any) -> workflows_pb2.Workflow:
        doc = _json(request.definition_json, "definition")
        async with self._engine.begin() as conn:
            return _workflow(await store.create_workflow(conn, account_id=current_account.get(),
                                                         doc=doc))

    async def UpdateWorkflow(self, request: Any, context: Any) -> workflows_pb2.Workflow:
        doc = _json(request.definition_json, "definition")
        async with self._engine.begin() as conn:
            return _workflow(await store.update_workflow(
                conn, account_id=current_account.get(), workflow_id=request.id, doc=doc))

    async def GetWorkflow(self, request: Any, context: Any) -> workflows_pb2.Workflow:
        async with self._engine.connect() as conn:
            return _workflow(await store.get_workflow(conn, account_id=current_account.get(),
                                                      workflow_id=request.id))

    async def ListWorkflows(self, request: Any, context: Any) -> Any:
        async with self._engine.connect() as conn:
            found = await store.list_workflows(conn, account_id=current_account.get())
        return workflows_pb2.ListWorkflowsResponse(workflows=[_workflow(w) for w in found])

    async def _set_active(self, workflow_id: int, active: bool) -> workflows_pb2.Workflow:
        async with self._engine.begin() as conn:
            return _workflow(await store.set_active(conn, account_id=current_account.get(),
                                                    workflow_id=workflow_id, active=active))

    async def ActivateWorkflow(self, request: Any, context: Any) -> workflows_pb2.Workflow:
        return await self._set_active(request.id, True)

    async def DeactivateWorkflow(self, request: Any, context: Any) -> workflows_pb2.Workflow:
        return await self._set_active(request.id, False)

    async def SimulateWorkflow(self, request: Any, context: Any) -> Any:
        account = current_account.get()
        definition = _json(request.definition_json, "definition")
        events = _json(request.events_json, "events")
        contacts = _json(request.contacts_json, "contacts", default=[])

        async def templates(template_id: int) -> tuple[str, str, str]:
            async with self._engine.connect() as conn:
                return await stored_template(conn, account_id=account, template_id=template_id)

        async def listed(email: str) -> bool:
            async with self._engine.connect() as conn:
                return bool(await unsubscribed_among(conn, account_id=account, emails=[email]))

        async def member(segment_id: int, contact_id: int) -> bool:
            async with self._engine.connect() as conn:
                return await in_segment(conn, account_id=account, segment_id=segment_id,
                                        contact_id=contact_id)

        result = await simulate(definition=definition, events=events, contacts=contacts,
                                templates=templates, renderer=self._renderer,
                                sender=self._settings.mail_from, account_id=account,
                                acceptance=self._acceptance, listed=listed, member=member)
        return workflows_pb2.SimulateWorkflowResponse(result_json=orjson.dumps(result).decode())

    async def ListRuns(self, request: Any, context: Any) -> Any:
        async with self._engine.connect() as conn:
            rows = await queries.list_runs(
                conn, account_id=current_account.get(), workflow_id=request.workflow_id,
                contact_id=request.contact_id, status=request.status,
                page_size=request.page_size, before_id=request.before_id)
        return workflows_pb2.ListRunsResponse(runs=[_run(r) for r in rows])

    async def ListRunSteps(self, request: Any, context: Any) -> Any:
        account = current_account.get()
        async with self._engine.connect() as conn:
            run = await queries.get_run(conn, account_id=account, run_id=request.run_id)
            steps = await queries.list_steps(conn, account_id=account, run_id=request.run_id)
        out = workflows_pb2.ListRunStepsResponse(run=_run(run))
        for s in steps:
            step = out.steps.add(seq=s.seq, block_id=s.block_id, block_type=s.block_type,
                                 status=s.status, next_block=s.outcome or "",
                                 detail_json=s.detail, worker=s.worker)
            _ts(s.finished_at, step.finished_at)
        return out

    async def ListMessages(self, request: Any, context: Any) -> Any:
        async with self._engine.connect() as conn:
            rows = await queries.list_messages(
                conn, account_id=current_account.get(), run_id=request.run_id,
                contact_id=request.contact_id, workflow_id=request.workflow_id,
                page_size=request.page_size, before_id=request.before_id)
        return workflows_pb2.ListMessagesResponse(messages=[_message(m) for m in rows])
