"""Workflow routes: definitions (`/api/v1/workflows`), the simulator, runs and messages."""

from __future__ import annotations

from typing import Any

import orjson
from google.protobuf import timestamp_pb2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventflow.v1 import workflows_pb2, workflows_pb2_grpc
from server.gateway.http import (
    INT32_MAX,
    auth_metadata,
    endpoint,
    json_object,
    json_response,
    path_id,
    query_number,
    read_json,
)
from server.gateway.state import GatewayState

MAX_DEFINITION_BODY = 1024 * 1024
_SERVER_FIELDS = ("id", "version", "createdAt", "updatedAt")


def _iso(ts: timestamp_pb2.Timestamp) -> str | None:
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return ts.ToDatetime().isoformat(timespec="milliseconds") + "Z"


def _workflow(w: workflows_pb2.Workflow) -> dict[str, Any]:
    doc = orjson.loads(w.definition_json)
    return {"id": w.id, "version": w.version, **doc, "active": w.active,
            "createdAt": _iso(w.created_at), "updatedAt": _iso(w.updated_at)}


def _run(r: workflows_pb2.Run) -> dict[str, Any]:
    return {"id": r.id, "workflowId": r.workflow_id, "version": r.version, "eventId": r.event_id,
            "contactId": r.contact_id or None, "keyValue": r.key_value, "status": r.status,
            "currentBlock": r.current_block or None, "error": r.error or None,
            "startedAt": _iso(r.started_at), "updatedAt": _iso(r.updated_at),
            "finishedAt": _iso(r.finished_at), "dueAt": _iso(r.due_at)}


def _message(m: workflows_pb2.Message) -> dict[str, Any]:
    return {"id": m.id, "runId": m.run_id, "workflowId": m.workflow_id, "seq": m.seq,
            "blockId": m.block_id, "contactId": m.contact_id or None, "channel": m.channel,
            "recipient": m.recipient, "subject": m.subject, "messageId": m.message_id,
            "status": m.status, "reason": m.reason or None, "attempts": m.attempts,
            "createdAt": _iso(m.created_at), "sentAt": _iso(m.sent_at)}


def _scope(request: Request, path: str, query: str) -> int:
    """The id a listing is scoped to: the path's (``/workflows/{id}/runs``) or the query's."""
    if path in request.path_params:
        return path_id(request, path)
    return query_number(request, query)


async def _definition(request: Request) -> str:
    doc = await read_json(request, limit=MAX_DEFINITION_BODY)
    if isinstance(doc, dict):
        doc = {k: v for k, v in doc.items() if k not in _SERVER_FIELDS}
    return orjson.dumps(doc).decode()


def routes(state: GatewayState) -> list[Route]:
    def stub() -> workflows_pb2_grpc.WorkflowServiceStub:
        return state.stub(workflows_pb2_grpc.WorkflowServiceStub)

    @endpoint
    async def create(request: Request) -> Response:
        meta = auth_metadata(request)
        reply = await stub().CreateWorkflow(workflows_pb2.CreateWorkflowRequest(
            definition_json=await _definition(request)), metadata=meta)
        return json_response({"id": reply.id, "version": reply.version})

    @endpoint
    async def list_all(request: Request) -> Response:
        reply = await stub().ListWorkflows(workflows_pb2.ListWorkflowsRequest(),
                                           metadata=auth_metadata(request))
        return json_response([_workflow(w) for w in reply.workflows])

    @endpoint
    async def get_one(request: Request) -> Response:
        reply = await stub().GetWorkflow(workflows_pb2.GetWorkflowRequest(
            id=path_id(request, "workflow_id")), metadata=auth_metadata(request))
        return json_response(_workflow(reply))

    @endpoint
    async def replace(request: Request) -> Response:
        meta = auth_metadata(request)
        reply = await stub().UpdateWorkflow(workflows_pb2.UpdateWorkflowRequest(
            id=path_id(request, "workflow_id"),
            definition_json=await _definition(request)), metadata=meta)
        return json_response({"id": reply.id, "version": reply.version})

    @endpoint
    async def activate(request: Request) -> Response:
        method = (stub().ActivateWorkflow if request.url.path.endswith("/activate")
                  else stub().DeactivateWorkflow)
        reply = await method(workflows_pb2.GetWorkflowRequest(
            id=path_id(request, "workflow_id")), metadata=auth_metadata(request))
        return json_response(_workflow(reply))

    @endpoint
    async def simulate(request: Request) -> Response:
        meta = auth_metadata(request)
        doc = await read_json(request, limit=MAX_DEFINITION_BODY * 4)
        doc = json_object(doc)
        req = workflows_pb2.SimulateWorkflowRequest(
            definition_json=orjson.dumps(doc.get("definition")).decode(),
            events_json=orjson.dumps(doc.get("events")).decode(),
            contacts_json=orjson.dumps(doc.get("contacts") or []).decode())
        reply = await stub().SimulateWorkflow(req, metadata=meta)
        return Response(reply.result_json, media_type="application/json")

    @endpoint
    async def runs(request: Request) -> Response:
        reply = await stub().ListRuns(workflows_pb2.ListRunsRequest(
            workflow_id=_scope(request, "workflow_id", "workflowId"),
            contact_id=query_number(request, "contactId"),
            status=request.query_params.get("status", ""),
            page_size=query_number(request, "pageSize", most=INT32_MAX),
            before_id=query_number(request, "beforeId")), metadata=auth_metadata(request))
        return json_response({"runs": [_run(r) for r in reply.runs]})

    @endpoint
    async def run_steps(request: Request) -> Response:
        reply = await stub().ListRunSteps(workflows_pb2.ListRunStepsRequest(
            run_id=path_id(request, "run_id")), metadata=auth_metadata(request))
        steps = [{"seq": s.seq, "blockId": s.block_id, "type": s.block_type, "status": s.status,
                  "next": s.next_block or None, "detail": orjson.loads(s.detail_json or "{}"),
                  "worker": s.worker, "finishedAt": _iso(s.finished_at)} for s in reply.steps]
        return json_response({**_run(reply.run), "steps": steps})

    @endpoint
    async def messages(request: Request) -> Response:
        reply = await stub().ListMessages(workflows_pb2.ListMessagesRequest(
            run_id=_scope(request, "run_id", "runId"),
            contact_id=query_number(request, "contactId"),
            workflow_id=query_number(request, "workflowId"),
            page_size=query_number(request, "pageSize", most=INT32_MAX),
            before_id=query_number(request, "beforeId")), metadata=auth_metadata(request))
        return json_response({"messages": [_message(m) for m in reply.messages]})

    return [
        Route("/api/v1/workflows", create, methods=["POST"]),
        Route("/api/v1/workflows", list_all, methods=["GET"]),
        Route("/api/v1/workflows/simulate", simulate, methods=["POST"]),
        Route("/api/v1/workflows/{workflow_id}", get_one, methods=["GET"]),
        Route("/api/v1/workflows/{workflow_id}", replace, methods=["PUT"]),
        Route("/api/v1/workflows/{workflow_id}/activate", activate, methods=["POST"]),
        Route("/api/v1/workflows/{workflow_id}/deactivate", activate, methods=["POST"]),
        Route("/api/v1/workflows/{workflow_id}/runs", runs, methods=["GET"]),
        Route("/api/v1/workflow-runs", runs, methods=["GET"]),
        Route("/api/v1/workflow-runs/{run_id}", run_steps, methods=["GET"]),
        Route("/api/v1/workflow-runs/{run_id}/messages", messages, methods=["GET"]),
        Route("/api/v1/workflow-messages", messages, methods=["GET"]),
    ]
