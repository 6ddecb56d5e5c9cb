"""Segment routes: definitions (``/api/v1/segments``), their members and counts. eSputnik's
group reads (``/api/v1/groups``, ``/api/v1/group/{id}/contacts``), which list segments beside
static groups, are contact routes (``server/gateway/contacts.py``)."""

from __future__ import annotations

from typing import Any

import orjson
from google.protobuf import timestamp_pb2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventflow.v1 import segments_pb2, segments_pb2_grpc
from server.gateway.http import auth_metadata, endpoint, json_response, path_id, read_json
from server.gateway.params import only_query, page_of
from server.gateway.state import GatewayState

MAX_DEFINITION_BODY = 256 * 1024
PAGE_QUERY = ("startindex", "maxrows")


def _iso(ts: timestamp_pb2.Timestamp) -> str | None:
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return ts.ToDatetime().isoformat(timespec="milliseconds") + "Z"


def segment_json(s: segments_pb2.Segment) -> dict[str, Any]:
    return {"id": s.id, **orjson.loads(s.definition_json), "version": s.version,
            "status": s.status, "processed": s.build_processed, "total": s.build_total,
            "createdAt": _iso(s.created_at), "updatedAt": _iso(s.updated_at),
            "builtAt": _iso(s.built_at)}


def _member(m: segments_pb2.SegmentContact) -> dict[str, Any]:
    return {"id": m.contact_id, "email": m.email or None, "enteredAt": _iso(m.entered_at)}


def _one(request: Request
         ) -> tuple[segments_pb2.GetSegmentRequest, tuple[tuple[str, str], ...]]:
    """The segment a ``/api/v1/segments/{segment_id}`` call without a query names, with the
    caller's metadata (checked in that order: the key, the query, the id)."""
    meta = auth_metadata(request)
    only_query(request, ())
    return segments_pb2.GetSegmentRequest(id=path_id(request, "segment_id")), meta


async def _body(request: Request) -> str:
    return orjson.dumps(await read_json(request, limit=MAX_DEFINITION_BODY)).decode()


def routes(state: GatewayState) -> list[Route]:
    def stub() -> segments_pb2_grpc.SegmentServiceStub:
        return state.stub(segments_pb2_grpc.SegmentServiceStub)

    @endpoint
    async def create(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, ())
        reply = await stub().CreateSegment(segments_pb2.CreateSegmentRequest(
            definition_json=await _body(request)), metadata=meta)
        return json_response({"id": reply.id})

    @endpoint
    async def list_all(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, ())
        reply = await stub().ListSegments(segments_pb2.ListSegmentsRequest(), metadata=meta)
        return json_response([segment_json(s) for s in reply.segments])

    @endpoint
    async def get_one(request: Request) -> Response:
        one, meta = _one(request)
        reply = await stub().GetSegment(one, metadata=meta)
        return json_response(segment_json(reply))

    @endpoint
    async def replace(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, ())
        segment_id = path_id(request, "segment_id")
        reply = await stub().UpdateSegment(segments_pb2.UpdateSegmentRequest(
            id=segment_id, definition_json=await _body(request)), metadata=meta)
        return json_response({"id": reply.id, "version": reply.version})

    @endpoint
    async def remove(request: Request) -> Response:
        one, meta = _one(request)
        await stub().DeleteSegment(one, metadata=meta)
        return Response(status_code=200)

    async def _members(request: Request) -> Any:
        meta = auth_metadata(request)
        only_query(request, PAGE_QUERY)
        offset, limit = page_of(request)
        return await stub().ListSegmentContacts(segments_pb2.ListSegmentContactsRequest(
            segment_id=path_id(request, "segment_id"), offset=offset, limit=limit),
            metadata=meta)

    @endpoint
    async def members(request: Request) -> Response:
        reply = await _members(request)
        return json_response([_member(m) for m in reply.contacts],
                             headers={"TotalCount": str(reply.total_count)})

    @endpoint
    async def member(request: Request) -> Response:
        meta = auth_metadata(request)
        only_query(request, ())
        reply = await stub().GetSegmentContact(segments_pb2.GetSegmentContactRequest(
            segment_id=path_id(request, "segment_id"),
            contact_id=path_id(request, "contact_id")), metadata=meta)
        return json_response(_member(reply))

    @endpoint
    async def count(request: Request) -> Response:
        one, meta = _one(request)
        reply = await stub().CountSegment(one, metadata=meta)
        return json_response({"count": reply.count, "status": reply.status})

    return [
        Route("/api/v1/segments", create, methods=["POST"]),
        Route("/api/v1/segments", list_all, methods=["GET"]),
        Route("/api/v1/segments/{segment_id}", get_one, methods=["GET"]),
        Route("/api/v1/segments/{segment_id}", replace, methods=["PUT"]),
        Route("/api/v1/segments/{segment_id}", remove, methods=["DELETE"]),
        Route("/api/v1/segments/{segment_id}/contacts", members, methods=["GET"]),
        Route("/api/v1/segments/{segment_id}/contacts/{contact_id}", member, methods=["GET"]),
        Route("/api/v1/segments/{segment_id}/count", count, methods=["GET"]),
    ]
